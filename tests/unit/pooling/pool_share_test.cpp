// How a pool's size is split between workers, and a fleet budget between sidecars: every
// slot belongs to exactly one share.
#include <doctest/doctest.h>

#include <algorithm>

#include "proxy/pooling/pool_limits.h"

using pgsidecar::proxy::fleet_share;
using pgsidecar::proxy::PoolLimits;
using pgsidecar::proxy::worker_share;

namespace {

// Splitting `total` into `parts` with share(part): the shares add up to the total and
// differ by at most one.
template <typename Share>
void check_even_split(int max_total, int max_parts, Share share) {
  for (int total = 0; total <= max_total; ++total) {
    for (int parts = 1; parts <= max_parts; ++parts) {
      CAPTURE(total);
      CAPTURE(parts);
      int sum = 0, smallest = total, largest = 0;
      for (int part = 0; part < parts; ++part) {
        const int n = share(total, parts, part);
        sum += n;
        smallest = std::min(smallest, n);
        largest = std::max(largest, n);
      }
      CHECK(sum == total);
      CHECK(largest - smallest <= 1);
    }
  }
}

}  // namespace

TEST_CASE("the shares of all workers add up to the pool's size and differ by at most one") {
  check_even_split(41, 8, [](int size, int workers, int w) { return worker_share(size, workers, w); });
}

TEST_CASE("the first workers take the remainder") {
  CHECK(worker_share(5, 2, 0) == 3);
  CHECK(worker_share(5, 2, 1) == 2);
  CHECK(worker_share(1, 4, 0) == 1);
  CHECK(worker_share(1, 4, 3) == 0);
}

TEST_CASE("no workers counts as one") { CHECK(worker_share(7, 0, 0) == 7); }

TEST_CASE("PoolLimits reserves exactly size slots") {
  const PoolLimits::TimePoint now{};
  PoolLimits limits(3);
  CHECK(limits.try_reserve(now));
  CHECK(limits.try_reserve(now));
  CHECK(limits.try_reserve(now));
  CHECK_FALSE(limits.try_reserve(now));
  CHECK(limits.open() == 3);
  limits.release();
  CHECK(limits.try_reserve(now));
  CHECK_FALSE(limits.try_reserve(now));
}

TEST_CASE("fleet shares add up to the budget and differ by at most one") {
  check_even_split(61, 9, [](int budget, int sidecars, int rank) { return fleet_share(budget, sidecars, rank, 0); });
}

TEST_CASE("a fleet share never goes below min_size, and an uncounted fleet counts as one sidecar") {
  CHECK(fleet_share(30, 4, 0, 1) == 8);
  CHECK(fleet_share(30, 4, 1, 1) == 8);
  CHECK(fleet_share(30, 4, 2, 1) == 7);
  CHECK(fleet_share(30, 4, 3, 1) == 7);
  CHECK(fleet_share(30, 2, 1, 1) == 15);
  CHECK(fleet_share(4, 10, 9, 1) == 1);
  CHECK(fleet_share(4, 10, 0, 1) == 1);
  CHECK(fleet_share(30, 100, 50, 2) == 2);
  CHECK(fleet_share(30, 0, 0, 1) == 30);
}
