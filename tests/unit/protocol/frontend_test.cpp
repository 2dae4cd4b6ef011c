#include "protocol/frontend.h"

#include <doctest/doctest.h>

#include "protocol/wire.h"
#include "unit/protocol/frame_sink.h"
#include "unit/protocol/message_builder.h"

using namespace pgsidecar::protocol;
using namespace pgsidecar::protocol::testing;

namespace {

// Frames `bytes` every way (whole, bytewise, every split) and returns the bodies.
std::vector<RecordedFrame> frames_of(const std::vector<std::byte>& bytes, std::size_t expected) {
  auto frames = frame_every_way(bytes);
  REQUIRE(frames.size() == expected);
  return frames;
}

}  // namespace

TEST_CASE("Parse with parameter types parses from any delivery") {
  const auto frames = frames_of(MessageBuilder{}.parse("s1", "select $1, $2", {23, 25}).parse("", "select 1").build(), 2);
  ParseMessage p;
  REQUIRE(parse_parse(frames[0].body, p));
  CHECK(frames[0].tag == 'P');
  CHECK(p.name == "s1");
  CHECK(p.query == "select $1, $2");
  CHECK(p.param_count == 2);
  REQUIRE(p.param_types_raw.size() == 8);
  CHECK(load_be32(p.param_types_raw.data()) == 23);
  CHECK(load_be32(p.param_types_raw.data() + 4) == 25);

  ParseMessage unnamed;
  REQUIRE(parse_parse(frames[1].body, unnamed));
  CHECK(unnamed.name.empty());
  CHECK(unnamed.query == "select 1");
  CHECK(unnamed.param_count == 0);
  CHECK(unnamed.param_types_raw.empty());
}

TEST_CASE("Parse with a missing NUL, a short count or a wrong count is malformed") {
  ParseMessage p;
  CHECK_FALSE(parse_parse(bytes_of("s1"), p));                                             // name unterminated
  CHECK_FALSE(parse_parse(MessageBuilder{}.cstring("s1").raw("select").build(), p));      // query unterminated
  CHECK_FALSE(parse_parse(MessageBuilder{}.cstring("s1").cstring("q").build(), p));       // no count
  CHECK_FALSE(parse_parse(MessageBuilder{}.cstring("s1").cstring("q").raw({0}).build(), p));  // half a count
  CHECK_FALSE(parse_parse(MessageBuilder{}.cstring("").cstring("q").i16(2).i32(23).build(), p));  // one oid short
  CHECK_FALSE(parse_parse(MessageBuilder{}.cstring("").cstring("q").i16(1).i32(23).raw({0}).build(), p));  // trailing
  CHECK_FALSE(parse_parse(MessageBuilder{}.cstring("").cstring("q").i16(-1).build(), p));  // negative count
  CHECK_FALSE(parse_parse(MessageBuilder{}.cstring("").cstring("q").i16(1).raw({0, 0, 0}).build(), p));  // truncated oid
  CHECK(parse_parse(MessageBuilder{}.cstring("").cstring("q").i16(1).i32(0).build(), p));
}

TEST_CASE("Bind names are read from the whole body") {
  const auto frames = frames_of(MessageBuilder{}.bind("p1", "s1", {"1", std::nullopt}).sync().build(), 2);
  CHECK(frames[0].tag == 'B');
  std::string_view portal, statement;
  REQUIRE(peek_bind_names(frames[0].body, frames[0].body.size(), portal, statement) == PeekStatus::Ok);
  CHECK(portal == "p1");
  CHECK(statement == "s1");
}

TEST_CASE("Bind names are read from a prefix of a huge body") {
  const std::string big(100000, 'x');
  // Framed whole only: splitting 100 kB at every offset would copy gigabytes.
  const auto frames = frame_whole(MessageBuilder{}.bind("", "stmt", {big}).build());
  REQUIRE(frames.size() == 1);
  const auto body = std::span<const std::byte>(frames[0].body);
  std::string_view portal, statement;
  // "\0stmt\0" is 6 bytes: every shorter prefix needs more, 6 or more is enough.
  for (std::size_t n = 0; n < 6; ++n) {
    CAPTURE(n);
    CHECK(peek_bind_names(body.first(n), body.size(), portal, statement) == PeekStatus::NeedMore);
  }
  for (std::size_t n : {6, 7, 100, 5000}) {
    CAPTURE(n);
    REQUIRE(peek_bind_names(body.first(n), body.size(), portal, statement) == PeekStatus::Ok);
    CHECK(portal.empty());
    CHECK(statement == "stmt");
  }
}

TEST_CASE("Bind names missing their NUL within the body are invalid") {
  std::string_view portal, statement;
  const auto no_nul = bytes_of("portal");
  CHECK(peek_bind_names(no_nul, no_nul.size(), portal, statement) == PeekStatus::Invalid);
  const auto one_name = MessageBuilder{}.cstring("portal").raw("stmt").build();
  CHECK(peek_bind_names(one_name, one_name.size(), portal, statement) == PeekStatus::Invalid);
  CHECK(peek_bind_names({}, 0, portal, statement) == PeekStatus::Invalid);
  // A prefix longer than the body is cut to the body: a NUL past its end does not count.
  const auto spill = MessageBuilder{}.cstring("a").cstring("b").build();
  CHECK(peek_bind_names(spill, 3, portal, statement) == PeekStatus::Invalid);
  CHECK(peek_bind_names(spill, 4, portal, statement) == PeekStatus::Ok);
}

TEST_CASE("Bind parameter values are read by index, with their format and NULL") {
  const auto frames = frames_of(MessageBuilder{}.bind("p1", "s1", {"it's", std::nullopt, ""}).sync().build(), 2);
  BindParameter p;
  REQUIRE(read_bind_parameter(frames[0].body, 0, p));
  CHECK_FALSE(p.null);
  CHECK(p.format == 0);
  CHECK(string_of(p.value) == "it's");
  REQUIRE(read_bind_parameter(frames[0].body, 1, p));
  CHECK(p.null);
  REQUIRE(read_bind_parameter(frames[0].body, 2, p));
  CHECK_FALSE(p.null);
  CHECK(p.value.empty());
  CHECK_FALSE(read_bind_parameter(frames[0].body, 3, p));
  // One format code for all parameters, then one per parameter.
  const auto one_code = MessageBuilder{}.cstring("").cstring("s").i16(1).i16(1).i16(2).i32(1).raw("a").i32(1).raw("b").build();
  REQUIRE(read_bind_parameter(one_code, 1, p));
  CHECK(p.format == 1);
  CHECK(string_of(p.value) == "b");
  const auto codes = MessageBuilder{}.cstring("").cstring("s").i16(2).i16(1).i16(0).i16(2).i32(1).raw("a").i32(1).raw("b").build();
  REQUIRE(read_bind_parameter(codes, 1, p));
  CHECK(p.format == 0);
  REQUIRE(read_bind_parameter(codes, 0, p));
  CHECK(p.format == 1);
}

TEST_CASE("Bind parameters past the body's end, with a bad count or length, are not read") {
  BindParameter p;
  const auto cut = MessageBuilder{}.cstring("").cstring("s").i16(0).i16(2).i32(1).raw("a").i32(5).raw("bc").build();
  CHECK(read_bind_parameter(cut, 0, p));
  CHECK_FALSE(read_bind_parameter(cut, 1, p));
  const auto codes = MessageBuilder{}.cstring("").cstring("s").i16(2).i16(0).i16(0).i16(1).i32(1).raw("a").build();
  CHECK_FALSE(read_bind_parameter(codes, 0, p));  // two format codes for one parameter
  const auto negative = MessageBuilder{}.cstring("").cstring("s").i16(0).i16(1).i32(-2).build();
  CHECK_FALSE(read_bind_parameter(negative, 0, p));
  CHECK_FALSE(read_bind_parameter(MessageBuilder{}.cstring("").cstring("s").i16(-1).build(), 0, p));
  CHECK_FALSE(read_bind_parameter({}, 0, p));
}

TEST_CASE("Describe and Close parse their kind and name") {
  const auto frames = frames_of(
      MessageBuilder{}.describe('S', "s1").describe('P', "").close('S', "s1").close('P', "portal").build(), 4);
  char kind = 0;
  std::string_view name;
  CHECK(frames[0].tag == 'D');
  REQUIRE(parse_describe(frames[0].body, kind, name));
  CHECK(kind == 'S');
  CHECK(name == "s1");
  REQUIRE(parse_describe(frames[1].body, kind, name));
  CHECK(kind == 'P');
  CHECK(name.empty());
  CHECK(frames[2].tag == 'C');
  REQUIRE(parse_close(frames[2].body, kind, name));
  CHECK(kind == 'S');
  CHECK(name == "s1");
  REQUIRE(parse_close(frames[3].body, kind, name));
  CHECK(kind == 'P');
  CHECK(name == "portal");
}

TEST_CASE("Describe and Close reject a wrong kind, a missing NUL and trailing bytes") {
  char kind = 0;
  std::string_view name;
  for (auto parse : {parse_describe, parse_close}) {
    CHECK_FALSE(parse(MessageBuilder{}.raw("X").cstring("s1").build(), kind, name));
    CHECK_FALSE(parse(MessageBuilder{}.raw("s").cstring("s1").build(), kind, name));
    CHECK_FALSE(parse(bytes_of("Ss1"), kind, name));
    CHECK_FALSE(parse(MessageBuilder{}.raw("S").cstring("s1").raw("x").build(), kind, name));
    CHECK_FALSE(parse({}, kind, name));
    CHECK_FALSE(parse(bytes_of("S"), kind, name));
  }
}

TEST_CASE("Execute parses its portal and row limit") {
  const auto frames = frames_of(MessageBuilder{}.execute("p1", 100).execute().build(), 2);
  std::string_view portal;
  int32_t max_rows = -1;
  REQUIRE(parse_execute(frames[0].body, portal, max_rows));
  CHECK(portal == "p1");
  CHECK(max_rows == 100);
  REQUIRE(parse_execute(frames[1].body, portal, max_rows));
  CHECK(portal.empty());
  CHECK(max_rows == 0);
  CHECK_FALSE(parse_execute(MessageBuilder{}.cstring("p").raw({0, 0, 0}).build(), portal, max_rows));
  CHECK_FALSE(parse_execute(MessageBuilder{}.cstring("p").i32(0).raw({0}).build(), portal, max_rows));
  CHECK_FALSE(parse_execute(bytes_of("p"), portal, max_rows));
}

TEST_CASE("Query parses from any delivery, two in one read") {
  const auto frames = frames_of(MessageBuilder{}.query("select 1").query("").build(), 2);
  std::string_view sql;
  REQUIRE(parse_query(frames[0].body, sql));
  CHECK(sql == "select 1");
  REQUIRE(parse_query(frames[1].body, sql));
  CHECK(sql.empty());
}

TEST_CASE("Query without its final NUL or with bytes after it is malformed") {
  std::string_view sql;
  CHECK_FALSE(parse_query(bytes_of("select 1"), sql));
  CHECK_FALSE(parse_query(MessageBuilder{}.cstring("select 1").raw("x").build(), sql));
  CHECK_FALSE(parse_query(MessageBuilder{}.cstring("select 1").cstring("select 2").build(), sql));
  CHECK_FALSE(parse_query({}, sql));
}

TEST_CASE("PasswordMessage parses and rejects a missing NUL") {
  const auto frames = frames_of(MessageBuilder{}.password("md5abc").build(), 1);
  CHECK(frames[0].tag == 'p');
  std::string_view password;
  REQUIRE(parse_password_message(frames[0].body, password));
  CHECK(password == "md5abc");
  CHECK_FALSE(parse_password_message(bytes_of("secret"), password));
  CHECK_FALSE(parse_password_message(MessageBuilder{}.cstring("a").raw("b").build(), password));
}

TEST_CASE("SASLInitialResponse parses mechanism and data") {
  const auto frames =
      frames_of(MessageBuilder{}.sasl_initial_response("SCRAM-SHA-256", "n,,n=,r=abc").sasl_response("c=biws").build(), 2);
  std::string_view mechanism;
  std::span<const std::byte> data;
  REQUIRE(parse_sasl_initial_response(frames[0].body, mechanism, data));
  CHECK(mechanism == "SCRAM-SHA-256");
  CHECK(string_of(data) == "n,,n=,r=abc");
  REQUIRE(parse_sasl_response(frames[1].body, data));
  CHECK(string_of(data) == "c=biws");
}

TEST_CASE("SASLInitialResponse with length -1 has empty data") {
  const auto body = MessageBuilder{}.cstring("SCRAM-SHA-256").i32(-1).build();
  std::string_view mechanism;
  std::span<const std::byte> data = body;
  REQUIRE(parse_sasl_initial_response(body, mechanism, data));
  CHECK(mechanism == "SCRAM-SHA-256");
  CHECK(data.empty());
}

TEST_CASE("SASLInitialResponse with a lying length is malformed") {
  std::string_view mechanism;
  std::span<const std::byte> data;
  CHECK_FALSE(parse_sasl_initial_response(MessageBuilder{}.cstring("M").i32(5).raw("abcd").build(), mechanism, data));
  CHECK_FALSE(parse_sasl_initial_response(MessageBuilder{}.cstring("M").i32(3).raw("abcd").build(), mechanism, data));
  CHECK_FALSE(parse_sasl_initial_response(MessageBuilder{}.cstring("M").i32(-2).build(), mechanism, data));
  CHECK_FALSE(parse_sasl_initial_response(MessageBuilder{}.cstring("M").i32(INT32_MIN).build(), mechanism, data));
  CHECK_FALSE(parse_sasl_initial_response(MessageBuilder{}.cstring("M").i32(-1).raw("x").build(), mechanism, data));
  CHECK_FALSE(parse_sasl_initial_response(MessageBuilder{}.cstring("M").raw({0, 0}).build(), mechanism, data));
  CHECK_FALSE(parse_sasl_initial_response(bytes_of("SCRAM"), mechanism, data));
}

TEST_CASE("SASLResponse takes the whole body, even an empty one") {
  std::span<const std::byte> data;
  CHECK(parse_sasl_response({}, data));
  CHECK(data.empty());
}
