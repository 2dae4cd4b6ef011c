#include "protocol/startup.h"

#include <doctest/doctest.h>

#include "protocol/framer.h"
#include "unit/protocol/frame_sink.h"
#include "unit/protocol/message_builder.h"

using namespace pgsidecar::protocol;
using namespace pgsidecar::protocol::testing;

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

// The body after the length word of a packet built by hand: Int32(len) Int32(code) ...
std::vector<std::byte> body_of(const std::vector<std::byte>& packet) {
  Frame f;
  std::size_t used = 0;
  REQUIRE(next_startup_packet(packet, f, used) == FrameStatus::Ready);
  REQUIRE(used == packet.size());
  return {f.body.begin(), f.body.end()};
}

// An untyped packet with a correct length around `content`.
std::vector<std::byte> packet(const std::vector<std::byte>& content) {
  return MessageBuilder{}.i32(static_cast<int32_t>(content.size() + 4)).raw(content).build();
}

StartupPacket parse_ok(const std::vector<std::byte>& bytes) {
  StartupPacket p;
  std::string error;
  const bool ok = parse_startup_packet(body_of(bytes), p, error);
  CAPTURE(error);
  REQUIRE(ok);
  return p;
}

std::string parse_error(const std::vector<std::byte>& bytes) {
  StartupPacket p;
  std::string error;
  CHECK_FALSE(parse_startup_packet(body_of(bytes), p, error));
  CHECK_FALSE(error.empty());
  return error;
}

}  // namespace

TEST_CASE("a StartupMessage with parameters and options parses from any delivery") {
  const auto bytes = MessageBuilder{}
                         .startup({{"user", "app"},
                                   {"database", "appdb"},
                                   {"application_name", "psql"},
                                   {"options", "-c search_path=s1"},
                                   {"client_encoding", "UTF8"}})
                         .build();
  const auto frames = frame_every_way(bytes, /*startup_first=*/true);
  REQUIRE(frames.size() == 1);
  StartupPacket p;
  std::string error;
  REQUIRE(parse_startup_packet(frames[0].body, p, error));
  CHECK(p.kind == StartupKind::StartupMessage);
  CHECK(p.startup.protocol_version == kProtocolVersion3);
  CHECK(p.startup.minor() == 0);
  CHECK(p.startup.user == "app");
  CHECK(p.startup.database == "appdb");
  CHECK(p.startup.options == "-c search_path=s1");
  CHECK(p.startup.parameters == Params{{"application_name", "psql"},
                                       {"options", "-c search_path=s1"},
                                       {"client_encoding", "UTF8"}});
  REQUIRE(p.startup.find("client_encoding") != nullptr);
  CHECK(*p.startup.find("client_encoding") == "UTF8");
  CHECK(p.startup.find("user") == nullptr);
  CHECK(p.startup.find("TimeZone") == nullptr);
}

TEST_CASE("the database defaults to the user") {
  const auto p = parse_ok(MessageBuilder{}.startup({{"user", "bob"}}).build());
  CHECK(p.startup.database == "bob");
  CHECK(p.startup.parameters.empty());
  CHECK(p.startup.options.empty());
  const auto q = parse_ok(MessageBuilder{}.startup({{"database", ""}, {"user", "bob"}}).build());
  CHECK(q.startup.database == "bob");
}

TEST_CASE("an SSLRequest, a GSSENCRequest and a CancelRequest are recognized") {
  CHECK(parse_ok(MessageBuilder{}.ssl_request().build()).kind == StartupKind::SSLRequest);
  CHECK(parse_ok(MessageBuilder{}.gssenc_request().build()).kind == StartupKind::GSSENCRequest);
  const auto c = parse_ok(MessageBuilder{}.cancel_request(4242, -7).build());
  CHECK(c.kind == StartupKind::CancelRequest);
  CHECK(c.cancel.process_id == 4242);
  CHECK(c.cancel.secret_key == -7);
}

TEST_CASE("an SSLRequest then a StartupMessage in one read frame as two packets") {
  // After 'N' to the SSLRequest the client sends its StartupMessage; a fast client's
  // bytes can arrive together.
  const auto bytes = MessageBuilder{}.ssl_request().startup({{"user", "u"}}).build();
  Frame f;
  std::size_t used = 0;
  REQUIRE(next_startup_packet(bytes, f, used) == FrameStatus::Ready);
  CHECK(used == 8);
  const auto rest = std::span(bytes).subspan(used);
  REQUIRE(next_startup_packet(rest, f, used) == FrameStatus::Ready);
  CHECK(used == rest.size());
  StartupPacket p;
  std::string error;
  REQUIRE(parse_startup_packet(f.body, p, error));
  CHECK(p.startup.user == "u");
}

TEST_CASE("request packets of the wrong size are rejected") {
  CHECK(parse_error(packet(MessageBuilder{}.i32(kSSLRequestCode).i32(0).build())) == "invalid length of SSLRequest packet");
  CHECK(parse_error(packet(MessageBuilder{}.i32(kGSSENCRequestCode).raw({0}).build())) ==
        "invalid length of GSSENCRequest packet");
  CHECK(parse_error(packet(MessageBuilder{}.i32(kCancelRequestCode).i32(1).build())) ==
        "invalid length of CancelRequest packet");
  CHECK(parse_error(packet(MessageBuilder{}.i32(kCancelRequestCode).i32(1).i32(2).i32(3).build())) ==
        "invalid length of CancelRequest packet");
}

TEST_CASE("protocol 2.0 is rejected") {
  const auto bytes = packet(MessageBuilder{}.i32(2 << 16).cstring("user").cstring("u").raw({0}).build());
  CHECK(parse_error(bytes) == "unsupported frontend protocol 2.0: server supports 3.0 to 3.0");
  CHECK(parse_error(packet(MessageBuilder{}.i32(4 << 16).raw({0}).build())) ==
        "unsupported frontend protocol 4.0: server supports 3.0 to 3.0");
  CHECK(parse_error(packet(MessageBuilder{}.i32((1234 << 16) | 5681).raw({0}).build())) ==
        "unsupported frontend protocol 1234.5681: server supports 3.0 to 3.0");
}

TEST_CASE("protocol 3.1 is accepted with its minor version exposed") {
  const auto bytes =
      packet(MessageBuilder{}.i32((3 << 16) | 1).cstring("user").cstring("u").cstring("_pq_.x").cstring("1").raw({0}).build());
  const auto p = parse_ok(bytes);
  CHECK(p.kind == StartupKind::StartupMessage);
  CHECK(p.startup.minor() == 1);
  CHECK(protocol_major(p.startup.protocol_version) == 3);
  CHECK((p.startup.protocol_version & 0xffff) == 1);
  CHECK(p.startup.parameters == Params{{"_pq_.x", "1"}});
}

TEST_CASE("a StartupMessage without a user is rejected") {
  const auto msg = "no PostgreSQL user name specified in startup packet";
  CHECK(parse_error(MessageBuilder{}.startup({{"database", "db"}}).build()) == msg);
  CHECK(parse_error(MessageBuilder{}.startup({{"user", ""}}).build()) == msg);
  CHECK(parse_error(MessageBuilder{}.startup({}).build()) == msg);
}

TEST_CASE("a StartupMessage without its final NUL or with bytes after it is rejected") {
  const auto missing = packet(MessageBuilder{}.i32(kProtocolVersion3).cstring("user").cstring("u").build());
  CHECK(parse_error(missing) == "invalid startup packet layout: expected terminator as last byte");
  const auto trailing = packet(MessageBuilder{}.i32(kProtocolVersion3).cstring("user").cstring("u").raw({0}).raw("x").build());
  CHECK(parse_error(trailing) == "invalid startup packet layout: expected terminator as last byte");
}

TEST_CASE("unterminated names and values are rejected") {
  CHECK(parse_error(packet(MessageBuilder{}.i32(kProtocolVersion3).raw("user").build())) ==
        "invalid startup packet layout: unterminated parameter name");
  CHECK(parse_error(packet(MessageBuilder{}.i32(kProtocolVersion3).cstring("user").raw("bob").build())) ==
        "invalid startup packet layout: missing value for parameter \"user\"");
  CHECK(parse_error(packet(MessageBuilder{}.i32(kProtocolVersion3).cstring("user").build())) ==
        "invalid startup packet layout: missing value for parameter \"user\"");
}

TEST_CASE("a duplicate parameter is rejected") {
  CHECK(parse_error(MessageBuilder{}.startup({{"user", "a"}, {"user", "b"}}).build()) ==
        "duplicate startup parameter \"user\"");
  CHECK(parse_error(MessageBuilder{}.startup({{"user", "a"}, {"database", "x"}, {"database", "y"}}).build()) ==
        "duplicate startup parameter \"database\"");
  CHECK(parse_error(MessageBuilder{}.startup({{"user", "a"}, {"TimeZone", "UTC"}, {"TimeZone", "CET"}}).build()) ==
        "duplicate startup parameter \"TimeZone\"");
}

TEST_CASE("a packet too short for its code is rejected") {
  StartupPacket p;
  std::string error;
  CHECK_FALSE(parse_startup_packet({}, p, error));
  CHECK(error == "invalid length of startup packet");
  CHECK_FALSE(parse_startup_packet(MessageBuilder{}.raw({0, 3, 0}).build(), p, error));
}

TEST_CASE("an oversized startup packet is refused before its body arrives") {
  std::string big(20000, 'x');
  const auto bytes = MessageBuilder{}.startup({{"user", "u"}, {"application_name", big}}).build();
  Frame f;
  std::size_t used = 0;
  std::string error;
  CHECK(next_startup_packet(std::span(bytes).first(4), f, used, 10000, &error) == FrameStatus::Invalid);
  CHECK(error == "message of " + std::to_string(bytes.size()) + " bytes exceeds the maximum of 10000");
  // A larger configured maximum lets it through.
  REQUIRE(next_startup_packet(bytes, f, used, 1 << 20) == FrameStatus::Ready);
  StartupPacket p;
  REQUIRE(parse_startup_packet(f.body, p, error));
  CHECK(p.startup.find("application_name")->size() == 20000);
}

TEST_CASE("options switches follow PostgreSQL's rules") {
  CHECK(parse_options_switches("-c a=b --c=d -c x=y\\ z") == Params{{"a", "b"}, {"c", "d"}, {"x", "y z"}});
}

TEST_CASE("options switches: attached arguments, dashes in names, tabs and escapes") {
  CHECK(parse_options_switches("-cstatement_timeout=5s") == Params{{"statement_timeout", "5s"}});
  CHECK(parse_options_switches("--search-path=a,b") == Params{{"search_path", "a,b"}});
  CHECK(parse_options_switches("-c\tsearch_path=x") == Params{{"search_path", "x"}});
  CHECK(parse_options_switches("  -c   a=1  ") == Params{{"a", "1"}});
  CHECK(parse_options_switches("-c a=back\\\\slash") == Params{{"a", "back\\slash"}});
  CHECK(parse_options_switches("-c a=b=c") == Params{{"a", "b=c"}});
  CHECK(parse_options_switches("-c a=") == Params{{"a", ""}});
  CHECK(parse_options_switches("-c a=x\\") == Params{{"a", "x"}});
  CHECK(parse_options_switches("-c my-ext.some-thing=on") == Params{{"my_ext.some_thing", "on"}});
}

TEST_CASE("options switches: unknown and malformed switches are skipped") {
  CHECK(parse_options_switches("").empty());
  CHECK(parse_options_switches("   ").empty());
  CHECK(parse_options_switches("-c").empty());
  CHECK(parse_options_switches("-c noequals").empty());
  CHECK(parse_options_switches("-c =value").empty());
  CHECK(parse_options_switches("--novalue").empty());
  CHECK(parse_options_switches("stray words -c a=1") == Params{{"a", "1"}});
  // -B and -S take an argument, which must not be read as a switch of its own.
  CHECK(parse_options_switches("-B -c=x -c a=1") == Params{{"a", "1"}});
  CHECK(parse_options_switches("-S 1024 -c a=1") == Params{{"a", "1"}});
  // Flags bundled with -c: "-ic a=1" is -i, then -c with the next word.
  CHECK(parse_options_switches("-ic a=1") == Params{{"a", "1"}});
  CHECK(parse_options_switches("-x -y -c a=1") == Params{{"a", "1"}});
  CHECK(parse_options_switches("-").empty());
}
