#include "protocol/error_response.h"

#include <doctest/doctest.h>

#include "protocol/sqlstate.h"
#include "unit/protocol/frame_sink.h"
#include "unit/protocol/message_builder.h"

using namespace pgsidecar::protocol;
using namespace pgsidecar::protocol::testing;

TEST_CASE("an ErrorResponse round-trips with detail and hint") {
  ErrorFields e = make_error(sqlstate::kReadOnlySqlTransaction, "primary for database \"app\" is unavailable");
  e.detail = "writes wait up to 10s";
  e.hint = "retry later";
  const auto frames = frame_every_way(MessageBuilder{}.error(e).ready_for_query('I').build());
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].tag == 'E');
  ErrorFields parsed;
  REQUIRE(parse_error_response(frames[0].body, parsed));
  CHECK(parsed.severity == "ERROR");
  CHECK(parsed.sqlstate == "25006");
  CHECK(parsed.message == "primary for database \"app\" is unavailable");
  CHECK(parsed.detail == "writes wait up to 10s");
  CHECK(parsed.hint == "retry later");
}

TEST_CASE("an ErrorResponse has S, V, C and M in order and no empty D or H") {
  std::vector<std::byte> bytes;
  append_error_response(bytes, make_fatal(sqlstate::kProtocolViolation, "bad"));
  const auto expected = MessageBuilder{}
                            .message('E', MessageBuilder{}
                                              .raw("S").cstring("FATAL")
                                              .raw("V").cstring("FATAL")
                                              .raw("C").cstring("08P01")
                                              .raw("M").cstring("bad")
                                              .raw({0})
                                              .build())
                            .build();
  CHECK(bytes == expected);
}

TEST_CASE("a NoticeResponse has tag N and parses the same way") {
  ErrorFields n;
  n.severity = "WARNING";
  n.sqlstate = "01000";
  n.message = "careful";
  const auto frames = frame_every_way(MessageBuilder{}.notice(n).build());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].tag == 'N');
  ErrorFields parsed;
  REQUIRE(parse_notice_response(frames[0].body, parsed));
  CHECK(parsed.severity == "WARNING");
  CHECK(parsed.message == "careful");
  CHECK(parsed.detail.empty());
}

TEST_CASE("the untranslated V severity wins over a localized S, in either order") {
  ErrorFields parsed;
  REQUIRE(parse_error_response(
      MessageBuilder{}.raw("S").cstring("FEHLER").raw("V").cstring("ERROR").raw("M").cstring("m").raw({0}).build(), parsed));
  CHECK(parsed.severity == "ERROR");
  REQUIRE(parse_error_response(
      MessageBuilder{}.raw("V").cstring("FATAL").raw("S").cstring("FATAL-LOCAL").raw({0}).build(), parsed));
  CHECK(parsed.severity == "FATAL");
  REQUIRE(parse_error_response(MessageBuilder{}.raw("S").cstring("ERREUR").raw({0}).build(), parsed));
  CHECK(parsed.severity == "ERREUR");
}

TEST_CASE("unknown error fields are skipped") {
  ErrorFields parsed;
  REQUIRE(parse_error_response(MessageBuilder{}
                                   .raw("V").cstring("ERROR")
                                   .raw("C").cstring("42601")
                                   .raw("M").cstring("syntax error")
                                   .raw("P").cstring("8")
                                   .raw("F").cstring("scan.l")
                                   .raw("L").cstring("1176")
                                   .raw({0})
                                   .build(),
                               parsed));
  CHECK(parsed.sqlstate == sqlstate::kSyntaxError);
  CHECK(parsed.message == "syntax error");
}

TEST_CASE("an ErrorResponse without its terminator, with an unterminated field or trailing bytes is malformed") {
  ErrorFields parsed;
  CHECK_FALSE(parse_error_response({}, parsed));
  CHECK_FALSE(parse_error_response(MessageBuilder{}.raw("M").cstring("m").build(), parsed));
  CHECK_FALSE(parse_error_response(MessageBuilder{}.raw("Mmessage").build(), parsed));
  CHECK_FALSE(parse_error_response(MessageBuilder{}.raw("M").cstring("m").raw({0}).raw("x").build(), parsed));
  CHECK_FALSE(parse_error_response(bytes_of("M"), parsed));
  CHECK(parse_error_response(MessageBuilder{}.raw({0}).build(), parsed));
}
