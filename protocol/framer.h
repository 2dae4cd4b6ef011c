#pragma once

// Incremental framing of the byte stream into messages. The framer only finds
// boundaries: it does not judge tags (an unknown tag is framed like any other, and the
// state machine decides), and it never copies: a Frame is a view into the caller's
// buffer. A length outside [4, max_length] means the boundaries are lost for good;
// the caller answers 08P01 and closes, it never resyncs.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace pgsidecar::protocol {

enum class FrameStatus {
  Ready,     // a complete header (peek_header) or message (next_frame) is present
  NeedMore,  // no error so far; read more bytes and call again
  Invalid,   // the length word is impossible; framing is lost
};

struct Frame {
  char tag = 0;                     // 0 for startup-phase packets
  std::span<const std::byte> body;  // excludes tag and length; view into the input
};

struct FrameHeader {
  char tag = 0;
  uint32_t length = 0;  // as on the wire: includes the 4 length bytes, not the tag
  std::size_t body_size() const { return length - 4; }
  std::size_t total_size() const { return static_cast<std::size_t>(length) + 1; }
};

// Byte1(tag) Int32(length). Ready once the 5 header bytes are present and
// 4 <= length <= max_length; never needs the body, so a DataRow larger than the
// buffer can be streamed through by counting body_size().
FrameStatus peek_header(std::span<const std::byte> in, FrameHeader& out, uint32_t max_length,
                        std::string* error = nullptr);

// A whole typed message at the start of `in`. On Ready, `used` is the bytes it took
// (tag + length + body); otherwise `used` is 0.
FrameStatus next_frame(std::span<const std::byte> in, Frame& out, std::size_t& used, uint32_t max_length,
                       std::string* error = nullptr);

// A startup-phase packet: Int32(length) then the body, no tag. The length counts
// itself and must be 8..max_length (10000 is PostgreSQL's MAX_STARTUP_PACKET_LENGTH).
// out.tag is 0 and out.body starts after the length word.
FrameStatus next_startup_packet(std::span<const std::byte> in, Frame& out, std::size_t& used,
                                uint32_t max_length = 10000, std::string* error = nullptr);

}  // namespace pgsidecar::protocol
