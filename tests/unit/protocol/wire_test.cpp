#include "protocol/wire.h"

#include <doctest/doctest.h>

#include "unit/protocol/message_builder.h"

using namespace pgsidecar::protocol;
using namespace pgsidecar::protocol::testing;

TEST_CASE("the Reader reads big-endian integers") {
  const auto bytes = MessageBuilder{}.raw({0x7f, 0xff, 0xfe, 0x80, 0x00, 0x00, 0x01, 0xff}).build();
  Reader r(bytes);
  uint8_t u8 = 0;
  int16_t i16 = 0;
  int32_t i32 = 0;
  REQUIRE(r.read_u8(u8));
  CHECK(u8 == 0x7f);
  REQUIRE(r.read_i16(i16));
  CHECK(i16 == -2);  // 0xfffe
  REQUIRE(r.read_i32(i32));
  CHECK(i32 == static_cast<int32_t>(0x80000001u));
  CHECK(r.remaining() == 1);
  REQUIRE(r.read_u8(u8));
  CHECK(u8 == 0xff);
  CHECK(r.remaining() == 0);
  CHECK_FALSE(r.read_u8(u8));
}

TEST_CASE("the Reader refuses to read past the end and consumes nothing then") {
  const auto bytes = MessageBuilder{}.raw({1, 2, 3}).build();
  Reader r(bytes);
  int32_t i32 = 42;
  CHECK_FALSE(r.read_i32(i32));
  CHECK(i32 == 42);
  CHECK(r.remaining() == 3);
  std::span<const std::byte> out;
  CHECK_FALSE(r.read_bytes(4, out));
  CHECK(r.read_bytes(3, out));
  CHECK(out.size() == 3);
  int16_t i16 = 0;
  CHECK_FALSE(r.read_i16(i16));
  CHECK(r.read_bytes(0, out));
  CHECK(out.empty());
  CHECK_FALSE(r.read_bytes(SIZE_MAX, out));
}

TEST_CASE("read_cstring stops at the NUL and fails without one") {
  const auto bytes = MessageBuilder{}.cstring("ab").cstring("").raw("cd").build();
  Reader r(bytes);
  std::string_view s;
  REQUIRE(r.read_cstring(s));
  CHECK(s == "ab");
  REQUIRE(r.read_cstring(s));
  CHECK(s.empty());
  CHECK_FALSE(r.read_cstring(s));
  CHECK(r.remaining() == 2);
  CHECK(as_string_view(r.rest()) == "cd");
  Reader empty(std::span<const std::byte>{});
  CHECK_FALSE(empty.read_cstring(s));
}

TEST_CASE("writers emit big-endian and a length that counts itself") {
  std::vector<std::byte> out;
  const std::size_t at = begin_message(out, 'Q');
  put_i16(out, -2);
  put_i32(out, 0x01020304);
  put_cstring(out, "x");
  end_message(out, at);
  CHECK(out == MessageBuilder{}.raw({'Q', 0, 0, 0, 12, 0xff, 0xfe, 1, 2, 3, 4, 'x', 0}).build());

  std::vector<std::byte> untyped;
  const std::size_t u = begin_untyped(untyped);
  put_u8(untyped, 9);
  end_message(untyped, u);
  CHECK(untyped == MessageBuilder{}.raw({0, 0, 0, 5, 9}).build());
}

TEST_CASE("load_be32 and store_be32 agree") {
  std::byte b[4];
  store_be32(b, 0xdeadbeef);
  CHECK(static_cast<int>(b[0]) == 0xde);
  CHECK(static_cast<int>(b[3]) == 0xef);
  CHECK(load_be32(b) == 0xdeadbeefu);
}
