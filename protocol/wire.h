#pragma once

// Big-endian primitives of the PostgreSQL wire format: Int8/Int16/Int32, String
// (NUL-terminated) and Byten. The Reader never reads past the end of its span: every
// read reports failure instead, so peer bytes cannot drive it out of bounds.

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

namespace pgsidecar::protocol {

inline uint32_t load_be32(const std::byte* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

inline uint16_t load_be16(const std::byte* p) {
  return static_cast<uint16_t>((static_cast<uint32_t>(p[0]) << 8) | static_cast<uint32_t>(p[1]));
}

inline void store_be32(std::byte* p, uint32_t v) {
  p[0] = static_cast<std::byte>(v >> 24);
  p[1] = static_cast<std::byte>(v >> 16);
  p[2] = static_cast<std::byte>(v >> 8);
  p[3] = static_cast<std::byte>(v);
}

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}

  bool read_u8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = static_cast<uint8_t>(in_[pos_]);
    pos_ += 1;
    return true;
  }

  bool read_i16(int16_t& v) {
    if (remaining() < 2) return false;
    v = static_cast<int16_t>(load_be16(in_.data() + pos_));
    pos_ += 2;
    return true;
  }

  bool read_i32(int32_t& v) {
    if (remaining() < 4) return false;
    v = static_cast<int32_t>(load_be32(in_.data() + pos_));
    pos_ += 4;
    return true;
  }

  // String: the bytes up to the NUL, which is consumed but not returned. False (and
  // nothing consumed) when no NUL remains.
  bool read_cstring(std::string_view& s) {
    const std::byte* begin = in_.data() + pos_;
    const void* nul = remaining() == 0 ? nullptr : std::memchr(begin, 0, remaining());
    if (nul == nullptr) return false;
    const auto len = static_cast<std::size_t>(static_cast<const std::byte*>(nul) - begin);
    s = std::string_view(reinterpret_cast<const char*>(begin), len);
    pos_ += len + 1;
    return true;
  }

  bool read_bytes(std::size_t n, std::span<const std::byte>& out) {
    if (remaining() < n) return false;
    out = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }

  std::size_t remaining() const { return in_.size() - pos_; }
  std::span<const std::byte> rest() const { return in_.subspan(pos_); }

 private:
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
};

inline std::string_view as_string_view(std::span<const std::byte> bytes) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

inline std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

inline void put_u8(std::vector<std::byte>& out, uint8_t v) { out.push_back(static_cast<std::byte>(v)); }

inline void put_i16(std::vector<std::byte>& out, int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  out.push_back(static_cast<std::byte>(u >> 8));
  out.push_back(static_cast<std::byte>(u));
}

inline void put_i32(std::vector<std::byte>& out, int32_t v) {
  const std::size_t at = out.size();
  out.resize(at + 4);
  store_be32(out.data() + at, static_cast<uint32_t>(v));
}

inline void put_bytes(std::vector<std::byte>& out, std::span<const std::byte> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// String: appends s and its NUL. s must not contain a NUL itself.
inline void put_cstring(std::vector<std::byte>& out, std::string_view s) {
  put_bytes(out, as_bytes(s));
  out.push_back(std::byte{0});
}

// Appends Byte1(tag) Int32(placeholder); returns where the length goes, for end_message.
inline std::size_t begin_message(std::vector<std::byte>& out, char tag) {
  out.push_back(static_cast<std::byte>(tag));
  const std::size_t at = out.size();
  put_i32(out, 0);
  return at;
}

// Startup-phase packets (StartupMessage, SSLRequest, CancelRequest) have no tag byte.
inline std::size_t begin_untyped(std::vector<std::byte>& out) {
  const std::size_t at = out.size();
  put_i32(out, 0);
  return at;
}

// The length counts itself and the body, not the tag.
inline void end_message(std::vector<std::byte>& out, std::size_t length_offset) {
  assert(length_offset + 4 <= out.size());
  const std::size_t length = out.size() - length_offset;
  assert(length <= static_cast<std::size_t>(std::numeric_limits<int32_t>::max()));
  store_be32(out.data() + length_offset, static_cast<uint32_t>(length));
}

}  // namespace pgsidecar::protocol
