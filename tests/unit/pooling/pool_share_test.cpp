// How a pool's size is split between workers: every slot belongs to exactly one share.
#include <doctest/doctest.h>

#include "proxy/pooling/pool_limits.h"

using pgsidecar::proxy::PoolLimits;
using pgsidecar::proxy::worker_share;

TEST_CASE("the shares of all workers add up to the pool's size and differ by at most one") {
  for (int size = 0; size <= 41; ++size) {
    for (int workers = 1; workers <= 8; ++workers) {
      CAPTURE(size);
      CAPTURE(workers);
      int total = 0, smallest = size, largest = 0;
      for (int w = 0; w < workers; ++w) {
        const int share = worker_share(size, workers, w);
        total += share;
        smallest = std::min(smallest, share);
        largest = std::max(largest, share);
      }
      CHECK(total == size);
      CHECK(largest - smallest <= 1);
    }
  }
}

TEST_CASE("the first workers take the remainder") {
  CHECK(worker_share(5, 2, 0) == 3);
  CHECK(worker_share(5, 2, 1) == 2);
  CHECK(worker_share(1, 4, 0) == 1);
  CHECK(worker_share(1, 4, 3) == 0);
}

TEST_CASE("no workers counts as one") { CHECK(worker_share(7, 0, 0) == 7); }

TEST_CASE("PoolLimits reserves exactly size slots") {
  PoolLimits limits(3);
  CHECK(limits.try_reserve());
  CHECK(limits.try_reserve());
  CHECK(limits.try_reserve());
  CHECK_FALSE(limits.try_reserve());
  CHECK(limits.open() == 3);
  limits.release();
  CHECK(limits.try_reserve());
  CHECK_FALSE(limits.try_reserve());
}
