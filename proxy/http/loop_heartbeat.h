// Liveness of the event loops, for GET /healthz. Each loop stamps its slot as it turns;
// the HTTP thread reads the stamps. A loop stuck in a callback (an endless loop, a
// blocking call) stops stamping, and stale_loops() names it.
//
// A loop idle in epoll_wait does not turn either, so stamp from a repeating uv_timer
// (say every 250 ms, well under the staleness limit) rather than from a uv_prepare alone:
// the timer keeps an idle loop turning, and only a stuck one goes quiet.
#pragma once

#include "proxy/http/layer.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pgsidecar::http {

class LoopHeartbeats {
 public:
  using Clock = std::chrono::steady_clock;

  // Every loop counts as having turned at `start`: one that never runs goes stale after
  // max_silence, like one that stopped.
  LoopHeartbeats(std::size_t loops, Clock::time_point start) : slots_(loops) {
    for (Slot& s : slots_) s.last.store(start.time_since_epoch().count(), std::memory_order_relaxed);
  }
  LoopHeartbeats(const LoopHeartbeats&) = delete;
  LoopHeartbeats& operator=(const LoopHeartbeats&) = delete;

  std::size_t size() const noexcept { return slots_.size(); }

  // From loop `loop`'s own thread, once per turn.
  void beat(std::size_t loop, Clock::time_point now) noexcept {
    slots_[loop].last.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  }

  // From any thread.
  Clock::time_point last_beat(std::size_t loop) const noexcept {
    return Clock::time_point(Clock::duration(slots_[loop].last.load(std::memory_order_relaxed)));
  }

  // The loops whose last beat is older than max_silence at `now`, in index order.
  std::vector<std::size_t> stale_loops(Clock::time_point now,
                                       Clock::duration max_silence = std::chrono::seconds(1)) const {
    std::vector<std::size_t> stale;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (now - last_beat(i) > max_silence) stale.push_back(i);
    }
    return stale;
  }

 private:
  // One cache line per loop: each loop writes its slot every turn, and slots sharing a
  // line would bounce it between the loops' cores.
  struct alignas(64) Slot {
    std::atomic<Clock::rep> last{0};
  };
  std::vector<Slot> slots_;
};

}  // namespace pgsidecar::http
