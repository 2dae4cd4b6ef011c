#include "proxy/core/histogram.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>

using namespace std::chrono_literals;
using pgsidecar::proxy::HistogramSnapshot;
using pgsidecar::proxy::kLatencyBoundsNs;
using pgsidecar::proxy::kLatencyBuckets;
using pgsidecar::proxy::latency_bucket;
using pgsidecar::proxy::LatencyHistogram;
using pgsidecar::proxy::quantile;

namespace {

LatencyHistogram record_n(std::chrono::nanoseconds d, int n) {
  LatencyHistogram h;
  for (int i = 0; i < n; ++i) h.record(d);
  return h;
}

}  // namespace

TEST_CASE("the bounds run from 50 µs to 30 s, strictly increasing, three or more per decade") {
  CHECK(kLatencyBoundsNs.front() == 50'000);
  CHECK(kLatencyBoundsNs.back() == 30'000'000'000);
  for (std::size_t i = 1; i < kLatencyBoundsNs.size(); ++i) CHECK(kLatencyBoundsNs[i - 1] < kLatencyBoundsNs[i]);
  // Every whole decade between 100 µs and 10 s holds at least three bounds.
  for (int64_t decade = 100'000; decade < 10'000'000'000; decade *= 10) {
    CAPTURE(decade);
    int in_decade = 0;
    for (const int64_t b : kLatencyBoundsNs) in_decade += b > decade && b <= decade * 10 ? 1 : 0;
    CHECK(in_decade >= 3);
  }
}

TEST_CASE("a duration equal to a bound lands in that bound's bucket, one nanosecond more in the next") {
  for (std::size_t i = 0; i < kLatencyBoundsNs.size(); ++i) {
    CAPTURE(i);
    CHECK(latency_bucket(std::chrono::nanoseconds(kLatencyBoundsNs[i])) == i);
    CHECK(latency_bucket(std::chrono::nanoseconds(kLatencyBoundsNs[i] + 1)) == i + 1);
    CHECK(latency_bucket(std::chrono::nanoseconds(kLatencyBoundsNs[i] - 1)) == i);
  }
  CHECK(latency_bucket(0ns) == 0);
  CHECK(latency_bucket(1ns) == 0);
  CHECK(latency_bucket(-5ms) == 0);
  CHECK(latency_bucket(31s) == kLatencyBuckets - 1);
  CHECK(latency_bucket(std::chrono::hours(24 * 365)) == kLatencyBuckets - 1);
}

TEST_CASE("recording counts the bucket and adds the duration to the sum; a negative one adds nothing") {
  LatencyHistogram h;
  h.record(100us);
  h.record(100us);
  h.record(3ms);
  h.record(-1ms);
  h.record(1min);
  const HistogramSnapshot& s = h.snapshot();
  CHECK(s.count() == 5);
  CHECK(s.buckets[0] == 1);  // the negative one, as 0
  CHECK(s.buckets[1] == 2);  // (50 µs, 100 µs]
  CHECK(s.buckets[6] == 1);  // (2.5 ms, 5 ms]
  CHECK(s.buckets[kLatencyBuckets - 1] == 1);
  CHECK(s.sum_ns == 200'000 + 3'000'000 + 60'000'000'000ULL);
  CHECK(s.sum_seconds() == doctest::Approx(60.0032));
}

TEST_CASE("snapshots of per-worker histograms add up to one histogram of every observation") {
  LatencyHistogram a;
  LatencyHistogram b;
  LatencyHistogram all;
  for (int i = 0; i < 1000; ++i) {
    const auto d = std::chrono::nanoseconds(int64_t{37'000} * i * i);  // 0 .. ~37 s
    (i % 3 == 0 ? a : b).record(d);
    all.record(d);
  }
  const HistogramSnapshot merged = a.snapshot() + b.snapshot();
  CHECK(merged == all.snapshot());
  CHECK(merged == b.snapshot() + a.snapshot());
  CHECK(merged.count() == 1000);

  HistogramSnapshot total;
  total += a.snapshot();
  total += b.snapshot();
  CHECK(total == all.snapshot());
  CHECK(HistogramSnapshot{} + a.snapshot() == a.snapshot());
}

TEST_CASE("an empty snapshot has no quantile") {
  CHECK_FALSE(quantile(HistogramSnapshot{}, 0.5).has_value());
}

TEST_CASE("quantiles interpolate linearly inside the bucket that holds the rank") {
  // 50 observations in (50 µs, 100 µs], 50 in (2.5 ms, 5 ms].
  HistogramSnapshot s = record_n(75us, 50).snapshot() + record_n(3ms, 50).snapshot();
  CHECK(quantile(s, 0.25) == 75us);     // rank 25 of 50 in the first: 50 + 50 * 25/50
  CHECK(quantile(s, 0.5) == 100us);     // rank 50 closes the first bucket
  CHECK(quantile(s, 0.75) == 3750us);   // rank 25 of 50 in the second: 2.5 + 2.5 * 0.5 ms
  CHECK(quantile(s, 0.99) == 4950us);   // 2.5 + 2.5 * 49/50 ms
  CHECK(quantile(s, 1.0) == 5ms);
  CHECK(quantile(s, 0.0) == 50us);      // the start of the first non-empty bucket
  CHECK(quantile(s, 2.0) == 5ms);       // clamped
  CHECK(quantile(s, -1.0) == 50us);
  CHECK(quantile(s, std::nan("")) == 50us);
}

TEST_CASE("the first bucket starts at zero") {
  const HistogramSnapshot s = record_n(10us, 10).snapshot();
  CHECK(quantile(s, 0.5) == 25us);
  CHECK(quantile(s, 1.0) == 50us);
}

TEST_CASE("a rank above the highest bound answers the highest bound") {
  const HistogramSnapshot s = record_n(1ms, 1).snapshot() + record_n(45s, 9).snapshot();
  CHECK(quantile(s, 0.99) == 30s);
  CHECK(quantile(s, 0.1) == 1ms);
}

TEST_CASE("p50, p95 and p99 of evenly spread latencies land within one bucket of the truth") {
  LatencyHistogram h;
  for (int us = 1; us <= 10'000; ++us) h.record(std::chrono::microseconds(us));  // 1 µs .. 10 ms
  const auto p50 = quantile(h.snapshot(), 0.50);
  const auto p95 = quantile(h.snapshot(), 0.95);
  const auto p99 = quantile(h.snapshot(), 0.99);
  REQUIRE(p50.has_value());
  REQUIRE(p95.has_value());
  REQUIRE(p99.has_value());
  // Uniform inside each bucket, so interpolation is exact up to a rounding nanosecond.
  CHECK(std::abs((*p50 - 5ms).count()) <= 1'000);
  CHECK(std::abs((*p95 - 9500us).count()) <= 1'000);
  CHECK(std::abs((*p99 - 9900us).count()) <= 1'000);
}
