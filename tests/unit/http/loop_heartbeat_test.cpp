#include "proxy/http/loop_heartbeat.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

using namespace std::chrono_literals;
using pgsidecar::http::LoopHeartbeats;

TEST_CASE("no loop is stale until a second has passed since the start") {
  const auto t0 = LoopHeartbeats::Clock::time_point(100s);
  LoopHeartbeats beats(3, t0);
  CHECK(beats.size() == 3);
  CHECK(beats.stale_loops(t0).empty());
  CHECK(beats.stale_loops(t0 + 1s).empty());  // exactly the limit is not yet stale
  CHECK(beats.stale_loops(t0 + 1s + 1ns) == std::vector<std::size_t>{0, 1, 2});
}

TEST_CASE("a loop that stops beating is named; the others are not") {
  const auto t0 = LoopHeartbeats::Clock::time_point(100s);
  LoopHeartbeats beats(3, t0);
  beats.beat(0, t0 + 900ms);
  beats.beat(2, t0 + 900ms);
  CHECK(beats.stale_loops(t0 + 1500ms) == std::vector<std::size_t>{1});
  CHECK(beats.last_beat(0) == t0 + 900ms);
  CHECK(beats.last_beat(1) == t0);

  beats.beat(1, t0 + 1600ms);
  CHECK(beats.stale_loops(t0 + 1700ms).empty());
  CHECK(beats.stale_loops(t0 + 2s, 500ms) == std::vector<std::size_t>{0, 2});
}

TEST_CASE("beats from loop threads are seen by the probing thread") {
  const auto t0 = LoopHeartbeats::Clock::now();
  LoopHeartbeats beats(2, t0 - 10s);  // both stale at first
  std::atomic<bool> done{false};
  std::thread loop0([&] {
    while (!done.load()) {
      beats.beat(0, LoopHeartbeats::Clock::now());
      std::this_thread::sleep_for(1ms);
    }
  });
  std::vector<std::size_t> stale;
  for (int i = 0; i < 5000; ++i) {
    stale = beats.stale_loops(LoopHeartbeats::Clock::now());
    if (stale.size() == 1) break;
    std::this_thread::sleep_for(1ms);
  }
  done = true;
  loop0.join();
  CHECK(stale == std::vector<std::size_t>{1});
}
