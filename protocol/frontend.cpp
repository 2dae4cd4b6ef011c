#include "protocol/frontend.h"

#include "protocol/wire.h"

namespace pgsidecar::protocol {

bool parse_parse(std::span<const std::byte> body, ParseMessage& out) {
  Reader r(body);
  if (!r.read_cstring(out.name) || !r.read_cstring(out.query) || !r.read_i16(out.param_count)) return false;
  if (out.param_count < 0) return false;
  if (!r.read_bytes(static_cast<std::size_t>(out.param_count) * 4, out.param_types_raw)) return false;
  return r.remaining() == 0;
}

PeekStatus peek_bind_names(std::span<const std::byte> body_prefix, std::size_t body_size, std::string_view& portal,
                           std::string_view& statement) {
  const bool whole = body_prefix.size() >= body_size;
  Reader r(body_prefix.first(whole ? body_size : body_prefix.size()));
  if (!r.read_cstring(portal) || !r.read_cstring(statement)) {
    return whole ? PeekStatus::Invalid : PeekStatus::NeedMore;
  }
  return PeekStatus::Ok;
}

bool read_bind_parameter(std::span<const std::byte> body, std::size_t index, BindParameter& out) {
  Reader r(body);
  std::string_view name;
  int16_t formats = 0, params = 0;
  std::span<const std::byte> format_codes;
  if (!r.read_cstring(name) || !r.read_cstring(name) || !r.read_i16(formats) || formats < 0 ||
      !r.read_bytes(static_cast<std::size_t>(formats) * 2, format_codes) || !r.read_i16(params) || params < 0)
    return false;
  if (index >= static_cast<std::size_t>(params) || (formats > 1 && formats != params)) return false;
  const std::size_t code = formats == 1 ? 0 : index;
  out.format = formats == 0 ? 0 : static_cast<int16_t>(load_be16(format_codes.data() + code * 2));
  for (std::size_t i = 0;; ++i) {
    int32_t len = 0;
    if (!r.read_i32(len) || len < -1) return false;
    out.null = len == -1;
    std::span<const std::byte> value;
    if (!out.null && !r.read_bytes(static_cast<std::size_t>(len), value)) return false;
    if (i == index) {
      out.value = value;
      return true;
    }
  }
}

namespace {

bool parse_kind_and_name(std::span<const std::byte> body, char& kind, std::string_view& name) {
  Reader r(body);
  uint8_t k = 0;
  if (!r.read_u8(k) || (k != 'S' && k != 'P')) return false;
  if (!r.read_cstring(name) || r.remaining() != 0) return false;
  kind = static_cast<char>(k);
  return true;
}

}  // namespace

bool parse_describe(std::span<const std::byte> body, char& kind, std::string_view& name) {
  return parse_kind_and_name(body, kind, name);
}

bool parse_close(std::span<const std::byte> body, char& kind, std::string_view& name) {
  return parse_kind_and_name(body, kind, name);
}

bool parse_execute(std::span<const std::byte> body, std::string_view& portal, int32_t& max_rows) {
  Reader r(body);
  return r.read_cstring(portal) && r.read_i32(max_rows) && r.remaining() == 0;
}

bool parse_query(std::span<const std::byte> body, std::string_view& sql) {
  Reader r(body);
  return r.read_cstring(sql) && r.remaining() == 0;
}

bool parse_password_message(std::span<const std::byte> body, std::string_view& password) {
  Reader r(body);
  return r.read_cstring(password) && r.remaining() == 0;
}

bool parse_sasl_initial_response(std::span<const std::byte> body, std::string_view& mechanism,
                                 std::span<const std::byte>& data) {
  Reader r(body);
  int32_t length = 0;
  if (!r.read_cstring(mechanism) || !r.read_i32(length)) return false;
  if (length == -1) {
    data = {};
    return r.remaining() == 0;
  }
  if (length < 0 || !r.read_bytes(static_cast<std::size_t>(length), data)) return false;
  return r.remaining() == 0;
}

bool parse_sasl_response(std::span<const std::byte> body, std::span<const std::byte>& data) {
  data = body;
  return true;
}

}  // namespace pgsidecar::protocol
