#pragma once

// ErrorResponse (B): Byte1('E') Int32(len) { Byte1(field) String(value) }* Byte1(0)
// NoticeResponse (B) is the same with Byte1('N'). We write and read only the fields
// in ErrorFields; others are skipped when parsing.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgsidecar::protocol {

struct ErrorFields {
  std::string severity = "ERROR";  // ERROR, FATAL, PANIC, WARNING, NOTICE, ...
  std::string sqlstate;            // field C, e.g. sqlstate::kProtocolViolation
  std::string message;             // field M
  std::string detail;              // field D, omitted when empty
  std::string hint;                // field H, omitted when empty
};

inline ErrorFields make_error(std::string_view severity, std::string_view sqlstate, std::string message) {
  ErrorFields e;
  e.severity = severity;
  e.sqlstate = sqlstate;
  e.message = std::move(message);
  return e;
}

inline ErrorFields make_error(std::string_view sqlstate, std::string message) {
  return make_error("ERROR", sqlstate, std::move(message));
}

inline ErrorFields make_fatal(std::string_view sqlstate, std::string message) {
  return make_error("FATAL", sqlstate, std::move(message));
}

// Writes S and V (the same severity: V is the untranslated one clients match on),
// C, M, then D and H when not empty. Values must not contain NUL.
void append_error_response(std::vector<std::byte>& out, const ErrorFields& fields);
void append_notice_response(std::vector<std::byte>& out, const ErrorFields& fields);

// Parses the body of an ErrorResponse or NoticeResponse. Severity prefers V over S
// (S may be localized). False when a field lacks its NUL or the terminator is missing
// or not last.
bool parse_error_response(std::span<const std::byte> body, ErrorFields& out);
inline bool parse_notice_response(std::span<const std::byte> body, ErrorFields& out) {
  return parse_error_response(body, out);
}

}  // namespace pgsidecar::protocol
