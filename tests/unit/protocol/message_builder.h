#pragma once

// Test bytes, built by the real append_* builders so tests read like a conversation:
//   MessageBuilder{}.parse("s1", "select $1", {23}).bind("", "s1", {"7"}).sync().build()
// raw() and message() write anything at all, for malformed input.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/messages.h"
#include "protocol/wire.h"

namespace pgsidecar::protocol::testing {

inline std::vector<std::byte> bytes_of(std::string_view s) {
  const auto b = as_bytes(s);
  return {b.begin(), b.end()};
}

inline std::string string_of(std::span<const std::byte> b) { return std::string(as_string_view(b)); }

class MessageBuilder {
 public:
  // ---- frontend ----
  MessageBuilder& query(std::string_view sql) { return add([&](auto& o) { append_query(o, sql); }); }
  MessageBuilder& parse(std::string_view name, std::string_view sql, std::vector<int32_t> oids = {}) {
    return add([&](auto& o) { append_parse(o, name, sql, oids); });
  }
  MessageBuilder& bind(std::string_view portal, std::string_view statement,
                       std::vector<std::optional<std::string_view>> params = {}) {
    return add([&](auto& o) { append_bind(o, portal, statement, params); });
  }
  MessageBuilder& describe(char kind, std::string_view name) {
    return add([&](auto& o) { append_describe(o, kind, name); });
  }
  MessageBuilder& execute(std::string_view portal = "", int32_t max_rows = 0) {
    return add([&](auto& o) { append_execute(o, portal, max_rows); });
  }
  MessageBuilder& close(char kind, std::string_view name) { return add([&](auto& o) { append_close(o, kind, name); }); }
  MessageBuilder& sync() { return add([](auto& o) { append_sync(o); }); }
  MessageBuilder& flush() { return add([](auto& o) { append_flush(o); }); }
  MessageBuilder& terminate() { return add([](auto& o) { append_terminate(o); }); }
  MessageBuilder& password(std::string_view p) { return add([&](auto& o) { append_password_message(o, p); }); }
  MessageBuilder& sasl_initial_response(std::string_view mechanism, std::string_view data) {
    return add([&](auto& o) { append_sasl_initial_response(o, mechanism, data); });
  }
  MessageBuilder& sasl_response(std::string_view data) { return add([&](auto& o) { append_sasl_response(o, data); }); }
  MessageBuilder& startup(std::vector<std::pair<std::string, std::string>> params) {
    return add([&](auto& o) { append_startup_message(o, params); });
  }
  MessageBuilder& ssl_request() { return add([](auto& o) { append_ssl_request(o); }); }
  MessageBuilder& gssenc_request() { return add([](auto& o) { append_gssenc_request(o); }); }
  MessageBuilder& cancel_request(int32_t pid, int32_t secret) {
    return add([&](auto& o) { append_cancel_request(o, pid, secret); });
  }

  // ---- backend ----
  MessageBuilder& ready_for_query(char status) { return add([&](auto& o) { append_ready_for_query(o, status); }); }
  MessageBuilder& error(const ErrorFields& f) { return add([&](auto& o) { append_error_response(o, f); }); }
  MessageBuilder& notice(const ErrorFields& f) { return add([&](auto& o) { append_notice_response(o, f); }); }
  MessageBuilder& parameter_status(std::string_view n, std::string_view v) {
    return add([&](auto& o) { append_parameter_status(o, n, v); });
  }
  MessageBuilder& backend_key_data(int32_t pid, int32_t secret) {
    return add([&](auto& o) { append_backend_key_data(o, pid, secret); });
  }
  MessageBuilder& authentication_ok() { return add([](auto& o) { append_authentication_ok(o); }); }
  MessageBuilder& command_complete(std::string_view t) { return add([&](auto& o) { append_command_complete(o, t); }); }
  MessageBuilder& row_description(std::vector<std::string_view> names) {
    return add([&](auto& o) { append_row_description(o, names); });
  }
  MessageBuilder& data_row(std::vector<std::optional<std::string_view>> values) {
    return add([&](auto& o) { append_data_row(o, values); });
  }

  // ---- anything ----
  // A typed message with a correct length around an arbitrary body.
  MessageBuilder& message(char tag, std::span<const std::byte> body) {
    const std::size_t at = begin_message(out_, tag);
    put_bytes(out_, body);
    end_message(out_, at);
    return *this;
  }
  MessageBuilder& message(char tag, std::string_view body) { return message(tag, as_bytes(body)); }
  // A typed header with any length word, for lengths that lie.
  MessageBuilder& header(char tag, uint32_t length) {
    put_u8(out_, static_cast<uint8_t>(tag));
    put_i32(out_, static_cast<int32_t>(length));
    return *this;
  }
  MessageBuilder& raw(std::span<const std::byte> bytes) {
    put_bytes(out_, bytes);
    return *this;
  }
  MessageBuilder& raw(std::string_view bytes) { return raw(as_bytes(bytes)); }
  MessageBuilder& raw(std::initializer_list<uint8_t> bytes) {
    for (uint8_t b : bytes) put_u8(out_, b);
    return *this;
  }
  MessageBuilder& i16(int16_t v) {
    put_i16(out_, v);
    return *this;
  }
  MessageBuilder& i32(int32_t v) {
    put_i32(out_, v);
    return *this;
  }
  MessageBuilder& cstring(std::string_view s) {
    put_cstring(out_, s);
    return *this;
  }

  std::vector<std::byte> build() const { return out_; }

 private:
  template <typename F>
  MessageBuilder& add(F&& f) {
    f(out_);
    return *this;
  }
  std::vector<std::byte> out_;
};

}  // namespace pgsidecar::protocol::testing
