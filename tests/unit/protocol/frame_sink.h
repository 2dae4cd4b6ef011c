#pragma once

// A recording sink that frames bytes the way a connection does: chunks are appended
// to one buffer, whole frames are taken off the front, the rest waits for more. The
// first packet may be a startup packet (no tag). Used to check that every way of
// delivering the same bytes yields the same frames.

#include <doctest/doctest.h>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "protocol/framer.h"

namespace pgsidecar::protocol::testing {

struct RecordedFrame {
  char tag = 0;
  std::vector<std::byte> body;
  bool operator==(const RecordedFrame&) const = default;
};

class FrameSink {
 public:
  explicit FrameSink(uint32_t max_length = 1 << 20, bool startup_first = false)
      : max_length_(max_length), expect_startup_(startup_first) {}

  // Returns the status of the last framing attempt: NeedMore once the buffer holds
  // no complete frame, Invalid (sticky) once framing is lost.
  FrameStatus feed(std::span<const std::byte> chunk) {
    if (invalid_) return FrameStatus::Invalid;
    buffer_.insert(buffer_.end(), chunk.begin(), chunk.end());
    for (;;) {
      Frame frame;
      std::size_t used = 0;
      const FrameStatus status = expect_startup_ ? next_startup_packet(buffer_, frame, used, 10000, &error_)
                                                 : next_frame(buffer_, frame, used, max_length_, &error_);
      if (status == FrameStatus::Invalid) invalid_ = true;
      if (status != FrameStatus::Ready) return status;
      REQUIRE(used > 0);
      REQUIRE(used <= buffer_.size());
      frames_.push_back({frame.tag, {frame.body.begin(), frame.body.end()}});
      buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(used));
      expect_startup_ = false;
    }
  }

  const std::vector<RecordedFrame>& frames() const { return frames_; }
  std::size_t buffered() const { return buffer_.size(); }
  bool invalid() const { return invalid_; }
  const std::string& error() const { return error_; }

 private:
  uint32_t max_length_;
  bool expect_startup_;
  bool invalid_ = false;
  std::vector<std::byte> buffer_;
  std::vector<RecordedFrame> frames_;
  std::string error_;
};

inline std::vector<RecordedFrame> frame_whole(std::span<const std::byte> bytes, bool startup_first = false) {
  FrameSink sink(1 << 20, startup_first);
  sink.feed(bytes);
  return sink.frames();
}

// Frames `bytes` delivered whole, one byte at a time, and split in two at every
// offset; checks each delivery gives the same frames with nothing left over, and
// returns them.
inline std::vector<RecordedFrame> frame_every_way(std::span<const std::byte> bytes, bool startup_first = false) {
  FrameSink whole(1 << 20, startup_first);
  CHECK(whole.feed(bytes) == FrameStatus::NeedMore);
  CHECK(whole.buffered() == 0);

  FrameSink bytewise(1 << 20, startup_first);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const FrameStatus status = bytewise.feed(bytes.subspan(i, 1));
    CHECK(status == FrameStatus::NeedMore);
  }
  CHECK(bytewise.frames() == whole.frames());
  CHECK(bytewise.buffered() == 0);

  for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    FrameSink split(1 << 20, startup_first);
    split.feed(bytes.first(cut));
    split.feed(bytes.subspan(cut));
    CHECK(split.frames() == whole.frames());
    CHECK(split.buffered() == 0);
  }
  return whole.frames();
}

}  // namespace pgsidecar::protocol::testing
