#include "protocol/framer.h"

#include "protocol/wire.h"

namespace pgsidecar::protocol {
namespace {

constexpr std::size_t kTypedHeaderSize = 5;    // Byte1(tag) Int32(length)
constexpr uint32_t kMinStartupLength = 8;      // Int32(length) Int32(code)

void set_error(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
}

// Shared by typed and startup packets: a length below `min` cannot frame anything, and
// one above `max` would let a peer make us buffer without bound.
bool length_ok(uint32_t length, uint32_t min, uint32_t max, std::string* error) {
  if (length < min) {
    set_error(error, "message length " + std::to_string(length) + " is invalid");
    return false;
  }
  if (length > max) {
    set_error(error, "message of " + std::to_string(length) + " bytes exceeds the maximum of " + std::to_string(max));
    return false;
  }
  return true;
}

}  // namespace

FrameStatus peek_header(std::span<const std::byte> in, FrameHeader& out, uint32_t max_length, std::string* error) {
  if (in.size() < kTypedHeaderSize) return FrameStatus::NeedMore;
  const uint32_t length = load_be32(in.data() + 1);
  if (!length_ok(length, 4, max_length, error)) return FrameStatus::Invalid;
  out.tag = static_cast<char>(in[0]);
  out.length = length;
  return FrameStatus::Ready;
}

FrameStatus next_frame(std::span<const std::byte> in, Frame& out, std::size_t& used, uint32_t max_length,
                       std::string* error) {
  used = 0;
  FrameHeader header;
  const FrameStatus status = peek_header(in, header, max_length, error);
  if (status != FrameStatus::Ready) return status;
  if (in.size() < header.total_size()) return FrameStatus::NeedMore;
  out.tag = header.tag;
  out.body = in.subspan(kTypedHeaderSize, header.body_size());
  used = header.total_size();
  return FrameStatus::Ready;
}

FrameStatus next_startup_packet(std::span<const std::byte> in, Frame& out, std::size_t& used, uint32_t max_length,
                                std::string* error) {
  used = 0;
  if (in.size() < 4) return FrameStatus::NeedMore;
  const uint32_t length = load_be32(in.data());
  if (!length_ok(length, kMinStartupLength, max_length, error)) return FrameStatus::Invalid;
  if (in.size() < length) return FrameStatus::NeedMore;
  out.tag = 0;
  out.body = in.subspan(4, length - 4);
  used = length;
  return FrameStatus::Ready;
}

}  // namespace pgsidecar::protocol
