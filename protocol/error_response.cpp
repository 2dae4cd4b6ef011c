#include "protocol/error_response.h"

#include "protocol/tags.h"
#include "protocol/wire.h"

namespace pgsidecar::protocol {
namespace {

void put_field(std::vector<std::byte>& out, char code, std::string_view value) {
  put_u8(out, static_cast<uint8_t>(code));
  put_cstring(out, value);
}

void append_fields(std::vector<std::byte>& out, char tag, const ErrorFields& fields) {
  const std::size_t at = begin_message(out, tag);
  put_field(out, 'S', fields.severity);
  put_field(out, 'V', fields.severity);
  put_field(out, 'C', fields.sqlstate);
  put_field(out, 'M', fields.message);
  if (!fields.detail.empty()) put_field(out, 'D', fields.detail);
  if (!fields.hint.empty()) put_field(out, 'H', fields.hint);
  put_u8(out, 0);
  end_message(out, at);
}

}  // namespace

void append_error_response(std::vector<std::byte>& out, const ErrorFields& fields) {
  append_fields(out, tag(BackendTag::ErrorResponse), fields);
}

void append_notice_response(std::vector<std::byte>& out, const ErrorFields& fields) {
  append_fields(out, tag(BackendTag::NoticeResponse), fields);
}

bool parse_error_response(std::span<const std::byte> body, ErrorFields& out) {
  out = ErrorFields{};
  out.severity.clear();
  Reader r(body);
  std::string_view localized_severity;
  bool have_v = false;
  for (;;) {
    uint8_t code = 0;
    if (!r.read_u8(code)) return false;  // no terminator
    if (code == 0) break;
    std::string_view value;
    if (!r.read_cstring(value)) return false;
    switch (static_cast<char>(code)) {
      case 'S': localized_severity = value; break;
      case 'V': out.severity = value; have_v = true; break;
      case 'C': out.sqlstate = value; break;
      case 'M': out.message = value; break;
      case 'D': out.detail = value; break;
      case 'H': out.hint = value; break;
      default: break;  // position, where, schema, file, line... not needed here
    }
  }
  // Servers before 9.6 send only S, which may be translated.
  if (!have_v) out.severity = localized_severity;
  return r.remaining() == 0;
}

}  // namespace pgsidecar::protocol
