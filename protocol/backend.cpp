#include "protocol/backend.h"

#include "protocol/wire.h"

namespace pgsidecar::protocol {

bool parse_parameter_status(std::span<const std::byte> body, std::string_view& name, std::string_view& value) {
  Reader r(body);
  return r.read_cstring(name) && r.read_cstring(value) && r.remaining() == 0;
}

bool parse_backend_key_data(std::span<const std::byte> body, int32_t& pid, int32_t& secret) {
  Reader r(body);
  return r.read_i32(pid) && r.read_i32(secret) && r.remaining() == 0;
}

bool parse_ready_for_query(std::span<const std::byte> body, char& status) {
  Reader r(body);
  uint8_t s = 0;
  if (!r.read_u8(s) || r.remaining() != 0) return false;
  if (s != 'I' && s != 'T' && s != 'E') return false;
  status = static_cast<char>(s);
  return true;
}

bool parse_command_complete(std::span<const std::byte> body, std::string_view& tag) {
  Reader r(body);
  return r.read_cstring(tag) && r.remaining() == 0;
}

bool parse_authentication(std::span<const std::byte> body, AuthenticationRequest& out) {
  Reader r(body);
  if (!r.read_i32(out.code)) return false;
  out.data = r.rest();
  switch (out.code) {
    case kAuthOk:
    case kAuthCleartextPassword:
      return out.data.empty();
    case kAuthMd5Password:
      return out.data.size() == 4;
    case kAuthSasl:
      return !out.data.empty() && out.data.back() == std::byte{0};
    default:
      return true;  // SASLContinue/Final carry opaque data; other codes are the caller's to refuse
  }
}

bool parse_sasl_mechanisms(std::span<const std::byte> data, std::vector<std::string_view>& out) {
  out.clear();
  Reader r(data);
  for (;;) {
    std::string_view mechanism;
    if (!r.read_cstring(mechanism)) return false;
    if (mechanism.empty()) break;
    out.push_back(mechanism);
  }
  return r.remaining() == 0 && !out.empty();
}

bool parse_negotiate_protocol_version(std::span<const std::byte> body, int32_t& newest_minor,
                                      std::vector<std::string_view>& unrecognized_options) {
  unrecognized_options.clear();
  Reader r(body);
  int32_t count = 0;
  if (!r.read_i32(newest_minor) || !r.read_i32(count) || count < 0) return false;
  // Each option takes at least its NUL, so a count above the bytes left is a lie; the
  // check also keeps a hostile count from reserving memory.
  if (static_cast<std::size_t>(count) > r.remaining()) return false;
  for (int32_t i = 0; i < count; ++i) {
    std::string_view option;
    if (!r.read_cstring(option)) return false;
    unrecognized_options.push_back(option);
  }
  return r.remaining() == 0;
}

bool parse_row_description(std::span<const std::byte> body, std::vector<std::string_view>& column_names) {
  column_names.clear();
  Reader r(body);
  int16_t count = 0;
  if (!r.read_i16(count) || count < 0) return false;
  constexpr std::size_t kFieldFixedSize = 4 + 2 + 4 + 2 + 4 + 2;  // table, attnum, type, typlen, typmod, format
  for (int16_t i = 0; i < count; ++i) {
    std::string_view name;
    std::span<const std::byte> fixed;
    if (!r.read_cstring(name) || !r.read_bytes(kFieldFixedSize, fixed)) return false;
    column_names.push_back(name);
  }
  return r.remaining() == 0;
}

bool parse_data_row(std::span<const std::byte> body, std::vector<std::optional<std::string_view>>& values) {
  values.clear();
  Reader r(body);
  int16_t count = 0;
  if (!r.read_i16(count) || count < 0) return false;
  for (int16_t i = 0; i < count; ++i) {
    int32_t length = 0;
    if (!r.read_i32(length)) return false;
    if (length == -1) {
      values.emplace_back(std::nullopt);
      continue;
    }
    std::span<const std::byte> value;
    if (length < 0 || !r.read_bytes(static_cast<std::size_t>(length), value)) return false;
    values.emplace_back(as_string_view(value));
  }
  return r.remaining() == 0;
}

}  // namespace pgsidecar::protocol
