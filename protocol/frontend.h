#pragma once

// Parsers of frontend (client) message bodies, as framed by next_frame: the tag and
// length are already gone. Each returns false on a malformed body and leaves views
// into `body`, valid as long as the caller's buffer is.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace pgsidecar::protocol {

// Parse (F): String(name) String(query) Int16(n) Int32(oid)*n
struct ParseMessage {
  std::string_view name;                    // "" is the unnamed statement
  std::string_view query;
  std::span<const std::byte> param_types_raw;  // n big-endian Int32 oids, as on the wire
  int16_t param_count = 0;
};
bool parse_parse(std::span<const std::byte> body, ParseMessage& out);

enum class PeekStatus { Ok, NeedMore, Invalid };

// Bind (F): String(portal) String(statement) ... A Bind can carry huge parameter
// values, so this reads only the two names from a prefix of the body. NeedMore when
// the names are not complete within the prefix but could be (the prefix is shorter
// than body_size); Invalid when the body ends without them.
PeekStatus peek_bind_names(std::span<const std::byte> body_prefix, std::size_t body_size, std::string_view& portal,
                           std::string_view& statement);

// One parameter value of a whole Bind body: String(portal) String(statement) Int16(nf)
// Int16(format)*nf Int16(n) (Int32(len) Byte(len))*n ...; a length of -1 is NULL. `index`
// is 0-based. False when the body is malformed up to that value or has no such parameter.
struct BindParameter {
  bool null = false;
  int16_t format = 0;  // 0 text, 1 binary
  std::span<const std::byte> value;
};
bool read_bind_parameter(std::span<const std::byte> body, std::size_t index, BindParameter& out);

// Describe (F) and Close (F): Byte1(kind) String(name); kind 'S' or 'P', else false.
bool parse_describe(std::span<const std::byte> body, char& kind, std::string_view& name);
bool parse_close(std::span<const std::byte> body, char& kind, std::string_view& name);

// Execute (F): String(portal) Int32(max rows, 0 = no limit)
bool parse_execute(std::span<const std::byte> body, std::string_view& portal, int32_t& max_rows);

// Query (F): String(sql). The body must end with its NUL, with no bytes after.
bool parse_query(std::span<const std::byte> body, std::string_view& sql);

// The 'p' message means what the authentication request asked for; the caller knows
// which of these to use.
bool parse_password_message(std::span<const std::byte> body, std::string_view& password);
// SASLInitialResponse (F): String(mechanism) Int32(n) Byte(n); n == -1 means no data.
bool parse_sasl_initial_response(std::span<const std::byte> body, std::string_view& mechanism,
                                 std::span<const std::byte>& data);
// SASLResponse (F): the whole body is the data.
bool parse_sasl_response(std::span<const std::byte> body, std::span<const std::byte>& data);

}  // namespace pgsidecar::protocol
