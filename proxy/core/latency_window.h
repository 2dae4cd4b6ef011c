// The last minute of a latency, for the admin console's SHOW LATENCY: six ten-second
// slots of a histogram, rotated by the loop's clock as observations come in. Written by
// one worker thread only, like LatencyHistogram.
#pragma once

#include "proxy/core/layer.h"

#include <array>
#include <chrono>
#include <cstdint>

#include "proxy/core/histogram.h"

namespace pgsidecar::proxy {

class LatencyWindow {
 public:
  static constexpr std::chrono::seconds kSlot{10};
  static constexpr std::size_t kSlots = 6;  // one minute

  void record(std::chrono::nanoseconds d, std::chrono::steady_clock::time_point now) noexcept {
    const int64_t epoch = epoch_of(now);
    Slot& slot = slots_[static_cast<std::size_t>(epoch) % kSlots];
    if (slot.epoch != epoch) slot = Slot{epoch, {}};
    slot.histogram.record(d);
  }
  // What was recorded in the minute up to `now` (in whole slots).
  HistogramSnapshot last_minute(std::chrono::steady_clock::time_point now) const noexcept {
    const int64_t epoch = epoch_of(now);
    HistogramSnapshot out;
    for (const Slot& s : slots_)
      if (s.epoch > epoch - static_cast<int64_t>(kSlots) && s.epoch <= epoch) out += s.histogram.snapshot();
    return out;
  }

 private:
  static int64_t epoch_of(std::chrono::steady_clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count() / kSlot.count();
  }
  struct Slot {
    int64_t epoch = -1;
    LatencyHistogram histogram;
  };
  std::array<Slot, kSlots> slots_{};
};

}  // namespace pgsidecar::proxy
