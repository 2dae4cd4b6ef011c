#pragma once

// Builders: each appends one complete message to `out`, in the format of "Message
// Formats" in the PostgreSQL docs. Strings must not contain NUL (the wire cannot
// carry it inside a String); callers pass names and SQL that came from the wire or
// from config, which cannot.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/error_response.h"  // ErrorFields, append_error_response, append_notice_response

namespace pgsidecar::protocol {

// ---- Backend messages (we play the server to clients) ----

// ReadyForQuery (B): Byte1('Z') Int32(5) Byte1(status) with status 'I', 'T' or 'E'.
void append_ready_for_query(std::vector<std::byte>& out, char status);

// AuthenticationOk / CleartextPassword / MD5Password / SASL / SASLContinue / SASLFinal:
// Byte1('R') Int32(len) Int32(code) then the code's data.
void append_authentication_ok(std::vector<std::byte>& out);
void append_authentication_cleartext_password(std::vector<std::byte>& out);
void append_authentication_md5_password(std::vector<std::byte>& out, std::span<const std::byte, 4> salt);
void append_authentication_sasl(std::vector<std::byte>& out, std::span<const std::string_view> mechanisms);
void append_authentication_sasl_continue(std::vector<std::byte>& out, std::string_view data);
void append_authentication_sasl_final(std::vector<std::byte>& out, std::string_view data);

void append_parameter_status(std::vector<std::byte>& out, std::string_view name, std::string_view value);
void append_backend_key_data(std::vector<std::byte>& out, int32_t pid, int32_t secret);
// NegotiateProtocolVersion (B): Byte1('v') Int32(len) Int32(newest minor supported)
// Int32(count) String(option)*
void append_negotiate_protocol_version(std::vector<std::byte>& out, int32_t newest_minor,
                                       std::span<const std::string_view> unrecognized_options);

// For the admin console and for answering on a server's behalf.
void append_command_complete(std::vector<std::byte>& out, std::string_view tag);
// All columns text (type oid 25, typlen -1, typmod -1, format 0), no table.
void append_row_description(std::vector<std::byte>& out, std::span<const std::string_view> column_names);
// nullopt is SQL NULL (length -1).
void append_data_row(std::vector<std::byte>& out, std::span<const std::optional<std::string_view>> values);
void append_empty_query_response(std::vector<std::byte>& out);
void append_parse_complete(std::vector<std::byte>& out);
void append_bind_complete(std::vector<std::byte>& out);
void append_close_complete(std::vector<std::byte>& out);
void append_no_data(std::vector<std::byte>& out);

// ---- Frontend messages (we play the client to servers) ----

void append_query(std::vector<std::byte>& out, std::string_view sql);
// Parse (F): Byte1('P') Int32(len) String(name) String(query) Int16(n) Int32(oid)*n
void append_parse(std::vector<std::byte>& out, std::string_view name, std::string_view query,
                  std::span<const int32_t> param_type_oids);
// Bind (F) with text-format parameters and text-format results; nullopt is NULL.
void append_bind(std::vector<std::byte>& out, std::string_view portal, std::string_view statement,
                 std::span<const std::optional<std::string_view>> params);
// kind is 'S' (statement) or 'P' (portal).
void append_describe(std::vector<std::byte>& out, char kind, std::string_view name);
void append_execute(std::vector<std::byte>& out, std::string_view portal, int32_t max_rows = 0);
void append_close(std::vector<std::byte>& out, char kind, std::string_view name);
void append_sync(std::vector<std::byte>& out);
void append_flush(std::vector<std::byte>& out);
void append_terminate(std::vector<std::byte>& out);

// StartupMessage (F), protocol 3.0: Int32(len) Int32(196608) { String String }* Byte1(0).
// Writes params in order; user and database go wherever they appear in params.
void append_startup_message(std::vector<std::byte>& out, std::span<const std::pair<std::string, std::string>> params);
void append_ssl_request(std::vector<std::byte>& out);
void append_gssenc_request(std::vector<std::byte>& out);
void append_cancel_request(std::vector<std::byte>& out, int32_t pid, int32_t secret);

// PasswordMessage (F): Byte1('p') Int32(len) String(password); also carries an MD5 hash.
void append_password_message(std::vector<std::byte>& out, std::string_view password);
// SASLInitialResponse (F): Byte1('p') Int32(len) String(mechanism) Int32(n) Byte(n)
void append_sasl_initial_response(std::vector<std::byte>& out, std::string_view mechanism, std::string_view data);
// SASLResponse (F): Byte1('p') Int32(len) Byte(n)
void append_sasl_response(std::vector<std::byte>& out, std::string_view data);

}  // namespace pgsidecar::protocol
