#include "protocol/backend.h"

#include <doctest/doctest.h>

#include <array>

#include "protocol/messages.h"
#include "protocol/wire.h"
#include "unit/protocol/frame_sink.h"
#include "unit/protocol/message_builder.h"

using namespace pgsidecar::protocol;
using namespace pgsidecar::protocol::testing;

namespace {

std::vector<RecordedFrame> frames_of(const std::vector<std::byte>& bytes, std::size_t expected) {
  auto frames = frame_every_way(bytes);
  REQUIRE(frames.size() == expected);
  return frames;
}

}  // namespace

TEST_CASE("a server greeting frames every way and each message parses") {
  const auto bytes = MessageBuilder{}
                         .authentication_ok()
                         .parameter_status("server_version", "15.4")
                         .parameter_status("client_encoding", "UTF8")
                         .backend_key_data(1234, -559038737)
                         .ready_for_query('I')
                         .build();
  const auto frames = frames_of(bytes, 5);

  CHECK(frames[0].tag == 'R');
  AuthenticationRequest auth;
  REQUIRE(parse_authentication(frames[0].body, auth));
  CHECK(auth.code == kAuthOk);
  CHECK(auth.data.empty());

  std::string_view name, value;
  CHECK(frames[1].tag == 'S');
  REQUIRE(parse_parameter_status(frames[1].body, name, value));
  CHECK(name == "server_version");
  CHECK(value == "15.4");
  REQUIRE(parse_parameter_status(frames[2].body, name, value));
  CHECK(name == "client_encoding");
  CHECK(value == "UTF8");

  CHECK(frames[3].tag == 'K');
  int32_t pid = 0, secret = 0;
  REQUIRE(parse_backend_key_data(frames[3].body, pid, secret));
  CHECK(pid == 1234);
  CHECK(secret == -559038737);

  CHECK(frames[4].tag == 'Z');
  char status = 0;
  REQUIRE(parse_ready_for_query(frames[4].body, status));
  CHECK(status == 'I');
}

TEST_CASE("ParameterStatus with a missing NUL or trailing bytes is malformed") {
  std::string_view name, value;
  CHECK_FALSE(parse_parameter_status(bytes_of("TimeZone"), name, value));
  CHECK_FALSE(parse_parameter_status(MessageBuilder{}.cstring("TimeZone").raw("UTC").build(), name, value));
  CHECK_FALSE(parse_parameter_status(MessageBuilder{}.cstring("a").cstring("b").raw("c").build(), name, value));
  CHECK_FALSE(parse_parameter_status({}, name, value));
  const auto empty_value = MessageBuilder{}.cstring("a").cstring("").build();
  CHECK(parse_parameter_status(empty_value, name, value));
  CHECK(value.empty());
}

TEST_CASE("BackendKeyData must be exactly two Int32") {
  int32_t pid = 0, secret = 0;
  CHECK_FALSE(parse_backend_key_data(MessageBuilder{}.i32(1).build(), pid, secret));
  CHECK_FALSE(parse_backend_key_data(MessageBuilder{}.i32(1).raw({0, 0, 0}).build(), pid, secret));
  CHECK_FALSE(parse_backend_key_data(MessageBuilder{}.i32(1).i32(2).raw({0}).build(), pid, secret));
  CHECK(parse_backend_key_data(MessageBuilder{}.i32(1).i32(2).build(), pid, secret));
}

TEST_CASE("ReadyForQuery accepts I, T and E only") {
  char status = 0;
  for (char s : {'I', 'T', 'E'}) {
    const auto frames = frames_of(MessageBuilder{}.ready_for_query(s).build(), 1);
    REQUIRE(parse_ready_for_query(frames[0].body, status));
    CHECK(status == s);
  }
  CHECK_FALSE(parse_ready_for_query(bytes_of("X"), status));
  CHECK_FALSE(parse_ready_for_query(bytes_of("i"), status));
  CHECK_FALSE(parse_ready_for_query({}, status));
  CHECK_FALSE(parse_ready_for_query(bytes_of("II"), status));
}

TEST_CASE("CommandComplete parses its tag") {
  const auto frames = frames_of(MessageBuilder{}.command_complete("INSERT 0 1").command_complete("SELECT 5").build(), 2);
  std::string_view t;
  CHECK(frames[0].tag == 'C');
  REQUIRE(parse_command_complete(frames[0].body, t));
  CHECK(t == "INSERT 0 1");
  REQUIRE(parse_command_complete(frames[1].body, t));
  CHECK(t == "SELECT 5");
  CHECK_FALSE(parse_command_complete(bytes_of("SELECT 5"), t));
  CHECK_FALSE(parse_command_complete(MessageBuilder{}.cstring("BEGIN").raw("x").build(), t));
}

TEST_CASE("AuthenticationMD5Password carries a four-byte salt") {
  const std::array<std::byte, 4> salt{std::byte{1}, std::byte{2}, std::byte{0}, std::byte{0xff}};
  std::vector<std::byte> bytes;
  append_authentication_md5_password(bytes, salt);
  const auto frames = frames_of(bytes, 1);
  AuthenticationRequest auth;
  REQUIRE(parse_authentication(frames[0].body, auth));
  CHECK(auth.code == kAuthMd5Password);
  REQUIRE(auth.data.size() == 4);
  CHECK(std::equal(auth.data.begin(), auth.data.end(), salt.begin()));

  CHECK_FALSE(parse_authentication(MessageBuilder{}.i32(kAuthMd5Password).raw({1, 2, 3}).build(), auth));
  CHECK_FALSE(parse_authentication(MessageBuilder{}.i32(kAuthMd5Password).raw({1, 2, 3, 4, 5}).build(), auth));
}

TEST_CASE("Authentication with a truncated code or stray data is malformed") {
  AuthenticationRequest auth;
  CHECK_FALSE(parse_authentication({}, auth));
  CHECK_FALSE(parse_authentication(MessageBuilder{}.raw({0, 0, 0}).build(), auth));
  CHECK_FALSE(parse_authentication(MessageBuilder{}.i32(kAuthOk).raw({0}).build(), auth));
  CHECK_FALSE(parse_authentication(MessageBuilder{}.i32(kAuthCleartextPassword).raw({0}).build(), auth));
  CHECK_FALSE(parse_authentication(MessageBuilder{}.i32(kAuthSasl).build(), auth));
  CHECK_FALSE(parse_authentication(MessageBuilder{}.i32(kAuthSasl).raw("SCRAM").build(), auth));
}

TEST_CASE("an unknown authentication code parses for the caller to refuse") {
  AuthenticationRequest auth;
  const auto body = MessageBuilder{}.i32(7).raw("gss").build();  // AuthenticationGSS
  REQUIRE(parse_authentication(body, auth));
  CHECK(auth.code == 7);
  CHECK(string_of(auth.data) == "gss");
}

TEST_CASE("AuthenticationSASL lists its mechanisms") {
  const std::array<std::string_view, 2> mechs{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
  std::vector<std::byte> bytes;
  append_authentication_sasl(bytes, mechs);
  const auto frames = frames_of(bytes, 1);
  AuthenticationRequest auth;
  REQUIRE(parse_authentication(frames[0].body, auth));
  CHECK(auth.code == kAuthSasl);
  std::vector<std::string_view> out;
  REQUIRE(parse_sasl_mechanisms(auth.data, out));
  REQUIRE(out.size() == 2);
  CHECK(out[0] == "SCRAM-SHA-256-PLUS");
  CHECK(out[1] == "SCRAM-SHA-256");
}

TEST_CASE("a SASL mechanism list that is empty, unterminated or followed by bytes is malformed") {
  std::vector<std::string_view> out;
  CHECK_FALSE(parse_sasl_mechanisms({}, out));
  CHECK_FALSE(parse_sasl_mechanisms(MessageBuilder{}.raw({0}).build(), out));
  CHECK_FALSE(parse_sasl_mechanisms(bytes_of("SCRAM-SHA-256"), out));
  CHECK_FALSE(parse_sasl_mechanisms(MessageBuilder{}.cstring("SCRAM-SHA-256").build(), out));
  CHECK_FALSE(parse_sasl_mechanisms(MessageBuilder{}.cstring("SCRAM-SHA-256").raw({0}).raw("x").build(), out));
}

TEST_CASE("AuthenticationSASLContinue and SASLFinal carry opaque data") {
  std::vector<std::byte> bytes;
  append_authentication_sasl_continue(bytes, "r=abc,s=salt,i=4096");
  append_authentication_sasl_final(bytes, "v=proof");
  const auto frames = frames_of(bytes, 2);
  AuthenticationRequest auth;
  REQUIRE(parse_authentication(frames[0].body, auth));
  CHECK(auth.code == kAuthSaslContinue);
  CHECK(string_of(auth.data) == "r=abc,s=salt,i=4096");
  REQUIRE(parse_authentication(frames[1].body, auth));
  CHECK(auth.code == kAuthSaslFinal);
  CHECK(string_of(auth.data) == "v=proof");
}

TEST_CASE("NegotiateProtocolVersion round-trips and rejects lying counts") {
  const std::array<std::string_view, 2> unknown{"_pq_.a", "_pq_.b"};
  std::vector<std::byte> bytes;
  append_negotiate_protocol_version(bytes, 0, unknown);
  const auto frames = frames_of(bytes, 1);
  CHECK(frames[0].tag == 'v');
  int32_t minor = -1;
  std::vector<std::string_view> options;
  REQUIRE(parse_negotiate_protocol_version(frames[0].body, minor, options));
  CHECK(minor == 0);
  REQUIRE(options.size() == 2);
  CHECK(options[0] == "_pq_.a");
  CHECK(options[1] == "_pq_.b");

  CHECK_FALSE(parse_negotiate_protocol_version(MessageBuilder{}.i32(0).i32(2).cstring("a").build(), minor, options));
  CHECK_FALSE(parse_negotiate_protocol_version(MessageBuilder{}.i32(0).i32(-1).build(), minor, options));
  CHECK_FALSE(parse_negotiate_protocol_version(MessageBuilder{}.i32(0).i32(INT32_MAX).build(), minor, options));
  CHECK_FALSE(parse_negotiate_protocol_version(MessageBuilder{}.i32(0).i32(0).raw("x").build(), minor, options));
  CHECK_FALSE(parse_negotiate_protocol_version(MessageBuilder{}.i32(0).build(), minor, options));
  CHECK(parse_negotiate_protocol_version(MessageBuilder{}.i32(1).i32(0).build(), minor, options));
  CHECK(minor == 1);
  CHECK(options.empty());
}

TEST_CASE("RowDescription and DataRow round-trip, NULL included") {
  const auto frames =
      frames_of(MessageBuilder{}.row_description({"name", "value"}).data_row({"a", std::nullopt}).data_row({"", "b"}).build(), 3);
  std::vector<std::string_view> names;
  CHECK(frames[0].tag == 'T');
  REQUIRE(parse_row_description(frames[0].body, names));
  REQUIRE(names.size() == 2);
  CHECK(names[0] == "name");
  CHECK(names[1] == "value");

  std::vector<std::optional<std::string_view>> values;
  CHECK(frames[1].tag == 'D');
  REQUIRE(parse_data_row(frames[1].body, values));
  REQUIRE(values.size() == 2);
  CHECK(values[0] == "a");
  CHECK_FALSE(values[1].has_value());
  REQUIRE(parse_data_row(frames[2].body, values));
  REQUIRE(values.size() == 2);
  REQUIRE(values[0].has_value());
  CHECK(values[0]->empty());
  CHECK(values[1] == "b");
}

TEST_CASE("RowDescription fields are all text columns") {
  std::vector<std::byte> bytes;
  const std::array<std::string_view, 1> cols{"c"};
  append_row_description(bytes, cols);
  // Byte1('T') Int32 Int16(1) "c\0" Int32(0) Int16(0) Int32(25) Int16(-1) Int32(-1) Int16(0)
  const auto expected = MessageBuilder{}.raw("T").i32(4 + 2 + 2 + 18).i16(1).cstring("c").i32(0).i16(0).i32(25).i16(-1).i32(-1).i16(0).build();
  CHECK(bytes == expected);
}

TEST_CASE("RowDescription and DataRow with wrong counts or lengths are malformed") {
  std::vector<std::string_view> names;
  CHECK_FALSE(parse_row_description(MessageBuilder{}.i16(1).build(), names));
  CHECK_FALSE(parse_row_description(MessageBuilder{}.i16(1).cstring("a").i32(0).build(), names));
  CHECK_FALSE(parse_row_description(MessageBuilder{}.i16(-1).build(), names));
  CHECK_FALSE(parse_row_description(MessageBuilder{}.i16(0).raw("x").build(), names));
  CHECK_FALSE(parse_row_description({}, names));

  std::vector<std::optional<std::string_view>> values;
  CHECK_FALSE(parse_data_row(MessageBuilder{}.i16(1).build(), values));
  CHECK_FALSE(parse_data_row(MessageBuilder{}.i16(1).i32(5).raw("abcd").build(), values));
  CHECK_FALSE(parse_data_row(MessageBuilder{}.i16(1).i32(-2).build(), values));
  CHECK_FALSE(parse_data_row(MessageBuilder{}.i16(1).i32(INT32_MAX).raw("ab").build(), values));
  CHECK_FALSE(parse_data_row(MessageBuilder{}.i16(1).i32(1).raw("ab").build(), values));
  CHECK_FALSE(parse_data_row(MessageBuilder{}.i16(2).i32(-1).build(), values));
  CHECK_FALSE(parse_data_row(MessageBuilder{}.i16(-1).build(), values));
  CHECK_FALSE(parse_data_row(MessageBuilder{}.raw({0}).build(), values));
  CHECK(parse_data_row(MessageBuilder{}.i16(0).build(), values));
  CHECK(values.empty());
}
