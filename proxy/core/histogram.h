// Latency histograms for Prometheus and SHOW LATENCY. A LatencyHistogram belongs to one
// worker thread and is written only by it: plain integers, no atomics, no allocation.
// At scrape time each worker copies its histograms into HistogramSnapshots on its own
// loop (a mailbox task), and the snapshots, plain values, are added up elsewhere.
#pragma once

#include "proxy/core/layer.h"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace pgsidecar::proxy {

// Upper bounds of the finite buckets, inclusive as Prometheus's `le` is: 1-2.5-5 steps
// from 50 µs to 10 s, then 30 s. Proxy overhead lives in the first buckets, a query
// that waited for a restarting primary in the last ones.
inline constexpr std::array<int64_t, 18> kLatencyBoundsNs = {
    50'000,          100'000,        250'000,        500'000,                     // µs
    1'000'000,       2'500'000,      5'000'000,      10'000'000,                  // ms
    25'000'000,      50'000'000,     100'000'000,    250'000'000,   500'000'000,  //
    1'000'000'000,   2'500'000'000,  5'000'000'000,  10'000'000'000,              // s
    30'000'000'000,
};
// One bucket per bound, and a last one for everything above 30 s (`le="+Inf"`).
inline constexpr std::size_t kLatencyBuckets = kLatencyBoundsNs.size() + 1;

// The bucket a duration falls into: the first whose bound is >= it. A negative duration
// (a clock that stepped) counts as 0.
std::size_t latency_bucket(std::chrono::nanoseconds d) noexcept;

// A copy of one or more histograms. Counts are per bucket, not cumulative; cumulative
// counts are the exposition's business.
struct HistogramSnapshot {
  std::array<uint64_t, kLatencyBuckets> buckets{};
  uint64_t sum_ns = 0;

  uint64_t count() const noexcept;  // every observation, the +Inf bucket's cumulative count
  double sum_seconds() const noexcept { return static_cast<double>(sum_ns) / 1e9; }

  HistogramSnapshot& operator+=(const HistogramSnapshot& other) noexcept;
  friend HistogramSnapshot operator+(HistogramSnapshot a, const HistogramSnapshot& b) noexcept {
    return a += b;
  }
  friend bool operator==(const HistogramSnapshot&, const HistogramSnapshot&) = default;
};

class LatencyHistogram {
 public:
  void record(std::chrono::nanoseconds d) noexcept {
    ++snapshot_.buckets[latency_bucket(d)];
    snapshot_.sum_ns += d.count() > 0 ? static_cast<uint64_t>(d.count()) : 0;
  }
  // On the owning thread only: another thread would race with record().
  const HistogramSnapshot& snapshot() const noexcept { return snapshot_; }

 private:
  HistogramSnapshot snapshot_;
};

// The q-quantile (0 <= q <= 1, clamped) estimated as Prometheus's histogram_quantile
// does: find the bucket holding the rank q * count and interpolate linearly between its
// bounds (the first bucket starts at 0). A rank in the +Inf bucket answers the highest
// finite bound, 30 s. nullopt when the snapshot holds no observation.
std::optional<std::chrono::nanoseconds> quantile(const HistogramSnapshot& s, double q) noexcept;

}  // namespace pgsidecar::proxy
