#pragma once

// Parsers of backend (server) message bodies, as framed by next_frame: the tag and
// length are already gone. Each returns false on a malformed body (missing NUL,
// truncated integer, wrong count, trailing bytes) and leaves views into `body`.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "protocol/error_response.h"  // ErrorFields, parse_error_response

namespace pgsidecar::protocol {

bool parse_parameter_status(std::span<const std::byte> body, std::string_view& name, std::string_view& value);
bool parse_backend_key_data(std::span<const std::byte> body, int32_t& pid, int32_t& secret);
// Status is 'I' (idle), 'T' (in a transaction block) or 'E' (failed transaction block).
bool parse_ready_for_query(std::span<const std::byte> body, char& status);
bool parse_command_complete(std::span<const std::byte> body, std::string_view& tag);

constexpr int32_t kAuthOk = 0;
constexpr int32_t kAuthCleartextPassword = 3;
constexpr int32_t kAuthMd5Password = 5;
constexpr int32_t kAuthSasl = 10;
constexpr int32_t kAuthSaslContinue = 11;
constexpr int32_t kAuthSaslFinal = 12;

struct AuthenticationRequest {
  int32_t code = 0;                 // kAuth*; other codes parse, the caller rejects them
  std::span<const std::byte> data;  // after the code: salt, mechanism list or SASL data
};

// Checks the data size for the codes it knows: none for Ok and CleartextPassword,
// 4 bytes for MD5Password, and at least the list terminator for SASL.
bool parse_authentication(std::span<const std::byte> body, AuthenticationRequest& out);
// AuthenticationSASL data: String(mechanism)* Byte1(0). Rejects an empty list.
bool parse_sasl_mechanisms(std::span<const std::byte> data, std::vector<std::string_view>& out);

// NegotiateProtocolVersion (B): Int32(newest minor) Int32(count) String(option)*count
bool parse_negotiate_protocol_version(std::span<const std::byte> body, int32_t& newest_minor,
                                      std::vector<std::string_view>& unrecognized_options);

// RowDescription (B): the column names only (other field data is checked for size).
bool parse_row_description(std::span<const std::byte> body, std::vector<std::string_view>& column_names);
// DataRow (B): Int16(n) { Int32(len) Byte(len) }*n, len -1 meaning NULL (nullopt).
bool parse_data_row(std::span<const std::byte> body, std::vector<std::optional<std::string_view>>& values);

}  // namespace pgsidecar::protocol
