#include "protocol/messages.h"

#include <limits>

#include "protocol/backend.h"
#include "protocol/startup.h"
#include "protocol/tags.h"
#include "protocol/wire.h"

namespace pgsidecar::protocol {
namespace {

// Messages with no body: Byte1(tag) Int32(4).
void append_empty(std::vector<std::byte>& out, char t) {
  out.push_back(static_cast<std::byte>(t));
  put_i32(out, 4);
}

void append_authentication(std::vector<std::byte>& out, int32_t code, std::span<const std::byte> data) {
  const std::size_t at = begin_message(out, tag(BackendTag::Authentication));
  put_i32(out, code);
  put_bytes(out, data);
  end_message(out, at);
}

int32_t checked_i32(std::size_t n) {
  assert(n <= static_cast<std::size_t>(std::numeric_limits<int32_t>::max()));
  return static_cast<int32_t>(n);
}

int16_t checked_i16(std::size_t n) {
  assert(n <= static_cast<std::size_t>(std::numeric_limits<int16_t>::max()));
  return static_cast<int16_t>(n);
}

void put_close_or_describe(std::vector<std::byte>& out, char t, char kind, std::string_view name) {
  const std::size_t at = begin_message(out, t);
  put_u8(out, static_cast<uint8_t>(kind));
  put_cstring(out, name);
  end_message(out, at);
}

}  // namespace

void append_ready_for_query(std::vector<std::byte>& out, char status) {
  const std::size_t at = begin_message(out, tag(BackendTag::ReadyForQuery));
  put_u8(out, static_cast<uint8_t>(status));
  end_message(out, at);
}

void append_authentication_ok(std::vector<std::byte>& out) { append_authentication(out, kAuthOk, {}); }

void append_authentication_cleartext_password(std::vector<std::byte>& out) { append_authentication(out, kAuthCleartextPassword, {}); }

void append_authentication_md5_password(std::vector<std::byte>& out, std::span<const std::byte, 4> salt) {
  append_authentication(out, kAuthMd5Password, salt);
}

void append_authentication_sasl(std::vector<std::byte>& out, std::span<const std::string_view> mechanisms) {
  const std::size_t at = begin_message(out, tag(BackendTag::Authentication));
  put_i32(out, kAuthSasl);
  for (std::string_view m : mechanisms) put_cstring(out, m);
  put_u8(out, 0);
  end_message(out, at);
}

void append_authentication_sasl_continue(std::vector<std::byte>& out, std::string_view data) {
  append_authentication(out, kAuthSaslContinue, as_bytes(data));
}

void append_authentication_sasl_final(std::vector<std::byte>& out, std::string_view data) {
  append_authentication(out, kAuthSaslFinal, as_bytes(data));
}

void append_parameter_status(std::vector<std::byte>& out, std::string_view name, std::string_view value) {
  const std::size_t at = begin_message(out, tag(BackendTag::ParameterStatus));
  put_cstring(out, name);
  put_cstring(out, value);
  end_message(out, at);
}

void append_backend_key_data(std::vector<std::byte>& out, int32_t pid, int32_t secret) {
  const std::size_t at = begin_message(out, tag(BackendTag::BackendKeyData));
  put_i32(out, pid);
  put_i32(out, secret);
  end_message(out, at);
}

void append_negotiate_protocol_version(std::vector<std::byte>& out, int32_t newest_minor,
                                       std::span<const std::string_view> unrecognized_options) {
  const std::size_t at = begin_message(out, tag(BackendTag::NegotiateProtocolVersion));
  put_i32(out, newest_minor);
  put_i32(out, checked_i32(unrecognized_options.size()));
  for (std::string_view o : unrecognized_options) put_cstring(out, o);
  end_message(out, at);
}

void append_command_complete(std::vector<std::byte>& out, std::string_view command_tag) {
  const std::size_t at = begin_message(out, tag(BackendTag::CommandComplete));
  put_cstring(out, command_tag);
  end_message(out, at);
}

void append_row_description(std::vector<std::byte>& out, std::span<const std::string_view> column_names) {
  constexpr int32_t kTextOid = 25;
  const std::size_t at = begin_message(out, tag(BackendTag::RowDescription));
  put_i16(out, checked_i16(column_names.size()));
  for (std::string_view name : column_names) {
    put_cstring(out, name);
    put_i32(out, 0);         // table oid: not a table column
    put_i16(out, 0);         // column attribute number
    put_i32(out, kTextOid);  // type oid
    put_i16(out, -1);        // typlen: variable
    put_i32(out, -1);        // typmod: none
    put_i16(out, 0);         // format: text
  }
  end_message(out, at);
}

void append_data_row(std::vector<std::byte>& out, std::span<const std::optional<std::string_view>> values) {
  const std::size_t at = begin_message(out, tag(BackendTag::DataRow));
  put_i16(out, checked_i16(values.size()));
  for (const auto& v : values) {
    if (!v) {
      put_i32(out, -1);
      continue;
    }
    put_i32(out, checked_i32(v->size()));
    put_bytes(out, as_bytes(*v));
  }
  end_message(out, at);
}

void append_empty_query_response(std::vector<std::byte>& out) { append_empty(out, tag(BackendTag::EmptyQueryResponse)); }
void append_parse_complete(std::vector<std::byte>& out) { append_empty(out, tag(BackendTag::ParseComplete)); }
void append_bind_complete(std::vector<std::byte>& out) { append_empty(out, tag(BackendTag::BindComplete)); }
void append_close_complete(std::vector<std::byte>& out) { append_empty(out, tag(BackendTag::CloseComplete)); }
void append_no_data(std::vector<std::byte>& out) { append_empty(out, tag(BackendTag::NoData)); }

void append_query(std::vector<std::byte>& out, std::string_view sql) {
  const std::size_t at = begin_message(out, tag(FrontendTag::Query));
  put_cstring(out, sql);
  end_message(out, at);
}

void append_parse(std::vector<std::byte>& out, std::string_view name, std::string_view query,
                  std::span<const int32_t> param_type_oids) {
  const std::size_t at = begin_message(out, tag(FrontendTag::Parse));
  put_cstring(out, name);
  put_cstring(out, query);
  put_i16(out, checked_i16(param_type_oids.size()));
  for (int32_t oid : param_type_oids) put_i32(out, oid);
  end_message(out, at);
}

void append_bind(std::vector<std::byte>& out, std::string_view portal, std::string_view statement,
                 std::span<const std::optional<std::string_view>> params) {
  const std::size_t at = begin_message(out, tag(FrontendTag::Bind));
  put_cstring(out, portal);
  put_cstring(out, statement);
  put_i16(out, 0);  // no parameter format codes: all text
  put_i16(out, checked_i16(params.size()));
  for (const auto& p : params) {
    if (!p) {
      put_i32(out, -1);
      continue;
    }
    put_i32(out, checked_i32(p->size()));
    put_bytes(out, as_bytes(*p));
  }
  put_i16(out, 0);  // no result format codes: all text
  end_message(out, at);
}

void append_describe(std::vector<std::byte>& out, char kind, std::string_view name) {
  put_close_or_describe(out, tag(FrontendTag::Describe), kind, name);
}

void append_execute(std::vector<std::byte>& out, std::string_view portal, int32_t max_rows) {
  const std::size_t at = begin_message(out, tag(FrontendTag::Execute));
  put_cstring(out, portal);
  put_i32(out, max_rows);
  end_message(out, at);
}

void append_close(std::vector<std::byte>& out, char kind, std::string_view name) {
  put_close_or_describe(out, tag(FrontendTag::Close), kind, name);
}

void append_sync(std::vector<std::byte>& out) { append_empty(out, tag(FrontendTag::Sync)); }
void append_flush(std::vector<std::byte>& out) { append_empty(out, tag(FrontendTag::Flush)); }
void append_terminate(std::vector<std::byte>& out) { append_empty(out, tag(FrontendTag::Terminate)); }

void append_startup_message(std::vector<std::byte>& out, std::span<const std::pair<std::string, std::string>> params) {
  const std::size_t at = begin_untyped(out);
  put_i32(out, kProtocolVersion3);
  for (const auto& [name, value] : params) {
    put_cstring(out, name);
    put_cstring(out, value);
  }
  put_u8(out, 0);
  end_message(out, at);
}

void append_ssl_request(std::vector<std::byte>& out) {
  put_i32(out, 8);
  put_i32(out, kSSLRequestCode);
}

void append_gssenc_request(std::vector<std::byte>& out) {
  put_i32(out, 8);
  put_i32(out, kGSSENCRequestCode);
}

void append_cancel_request(std::vector<std::byte>& out, int32_t pid, int32_t secret) {
  put_i32(out, 16);
  put_i32(out, kCancelRequestCode);
  put_i32(out, pid);
  put_i32(out, secret);
}

void append_password_message(std::vector<std::byte>& out, std::string_view password) {
  const std::size_t at = begin_message(out, tag(FrontendTag::PasswordMessage));
  put_cstring(out, password);
  end_message(out, at);
}

void append_sasl_initial_response(std::vector<std::byte>& out, std::string_view mechanism, std::string_view data) {
  const std::size_t at = begin_message(out, tag(FrontendTag::PasswordMessage));
  put_cstring(out, mechanism);
  put_i32(out, checked_i32(data.size()));
  put_bytes(out, as_bytes(data));
  end_message(out, at);
}

void append_sasl_response(std::vector<std::byte>& out, std::string_view data) {
  const std::size_t at = begin_message(out, tag(FrontendTag::PasswordMessage));
  put_bytes(out, as_bytes(data));
  end_message(out, at);
}

}  // namespace pgsidecar::protocol
