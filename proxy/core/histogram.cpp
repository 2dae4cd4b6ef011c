#include "proxy/core/histogram.h"

#include <algorithm>
#include <cmath>

namespace pgsidecar::proxy {

std::size_t latency_bucket(std::chrono::nanoseconds d) noexcept {
  // lower_bound: a duration equal to a bound belongs to that bound's bucket (le is <=).
  const auto it = std::lower_bound(kLatencyBoundsNs.begin(), kLatencyBoundsNs.end(), d.count());
  return static_cast<std::size_t>(it - kLatencyBoundsNs.begin());
}

uint64_t HistogramSnapshot::count() const noexcept {
  uint64_t n = 0;
  for (const uint64_t b : buckets) n += b;
  return n;
}

HistogramSnapshot& HistogramSnapshot::operator+=(const HistogramSnapshot& other) noexcept {
  for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
  sum_ns += other.sum_ns;
  return *this;
}

std::optional<std::chrono::nanoseconds> quantile(const HistogramSnapshot& s, double q) noexcept {
  const uint64_t total = s.count();
  if (total == 0) return std::nullopt;
  q = std::isnan(q) ? 0.0 : std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(total);

  // The first bucket whose cumulative count reaches the rank. A rank of 0 would match a
  // leading empty bucket and interpolate 0/0: it takes the first bucket with anything in it.
  std::size_t b = 0;
  uint64_t below = 0;  // cumulative count of the buckets before b
  for (; b < s.buckets.size(); ++b) {
    const uint64_t through = below + s.buckets[b];
    if (s.buckets[b] > 0 && static_cast<double>(through) >= rank) break;
    below = through;
  }
  if (b >= kLatencyBoundsNs.size()) return std::chrono::nanoseconds(kLatencyBoundsNs.back());

  const double lower = b == 0 ? 0.0 : static_cast<double>(kLatencyBoundsNs[b - 1]);
  const double upper = static_cast<double>(kLatencyBoundsNs[b]);
  const double into = (rank - static_cast<double>(below)) / static_cast<double>(s.buckets[b]);
  return std::chrono::nanoseconds(std::llround(lower + (upper - lower) * into));
}

}  // namespace pgsidecar::proxy
