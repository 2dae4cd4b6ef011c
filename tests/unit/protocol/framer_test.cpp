#include "protocol/framer.h"

#include <doctest/doctest.h>

#include "protocol/tags.h"
#include "unit/protocol/frame_sink.h"
#include "unit/protocol/message_builder.h"

using namespace pgsidecar::protocol;
using namespace pgsidecar::protocol::testing;

namespace {

constexpr uint32_t kMax = 1 << 20;

std::size_t count_frames(std::span<const std::byte> in) {
  std::size_t n = 0;
  for (;;) {
    Frame f;
    std::size_t used = 0;
    if (next_frame(in, f, used, kMax) != FrameStatus::Ready) return n;
    in = in.subspan(used);
    ++n;
  }
}

}  // namespace

TEST_CASE("a whole Query frames with its tag and body") {
  const auto bytes = MessageBuilder{}.query("select 1").build();
  Frame f;
  std::size_t used = 0;
  REQUIRE(next_frame(bytes, f, used, kMax) == FrameStatus::Ready);
  CHECK(f.tag == 'Q');
  CHECK(string_of(f.body) == std::string("select 1\0", 9));
  CHECK(used == bytes.size());
  CHECK(f.body.data() == bytes.data() + 5);  // a view, not a copy
}

TEST_CASE("a Query split at any offset frames only once complete") {
  const auto bytes = MessageBuilder{}.query("select 1").build();
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    Frame f;
    std::size_t used = 99;
    CHECK(next_frame(std::span(bytes).first(cut), f, used, kMax) == FrameStatus::NeedMore);
    CHECK(used == 0);
  }
  CHECK(count_frames(bytes) == 1);
}

TEST_CASE("bytes delivered one at a time or split anywhere give the same frames") {
  const auto bytes =
      MessageBuilder{}.parse("s1", "select $1", {23}).bind("", "s1", {"7"}).describe('P', "").execute().sync().build();
  const auto frames = frame_every_way(bytes);
  REQUIRE(frames.size() == 5);
  CHECK(frames[0].tag == 'P');
  CHECK(frames[1].tag == 'B');
  CHECK(frames[2].tag == 'D');
  CHECK(frames[3].tag == 'E');
  CHECK(frames[4].tag == 'S');
  CHECK(frames[4].body.empty());
}

TEST_CASE("two messages in one read frame one after the other") {
  const auto bytes = MessageBuilder{}.query("select 1").query("select 2").build();
  Frame f;
  std::size_t used = 0;
  REQUIRE(next_frame(bytes, f, used, kMax) == FrameStatus::Ready);
  CHECK(string_of(f.body) == std::string("select 1\0", 9));
  const auto rest = std::span(bytes).subspan(used);
  REQUIRE(next_frame(rest, f, used, kMax) == FrameStatus::Ready);
  CHECK(string_of(f.body) == std::string("select 2\0", 9));
  CHECK(used == rest.size());
}

TEST_CASE("a message with an empty body is exactly five bytes") {
  const auto bytes = MessageBuilder{}.sync().build();
  REQUIRE(bytes.size() == 5);
  Frame f;
  std::size_t used = 0;
  REQUIRE(next_frame(bytes, f, used, kMax) == FrameStatus::Ready);
  CHECK(f.tag == 'S');
  CHECK(f.body.empty());
  CHECK(used == 5);
}

TEST_CASE("lengths 0 and 3 are invalid because the length counts itself") {
  for (uint32_t length : {0u, 1u, 3u}) {
    CAPTURE(length);
    const auto bytes = MessageBuilder{}.header('Q', length).build();
    Frame f;
    std::size_t used = 0;
    std::string error;
    CHECK(next_frame(bytes, f, used, kMax, &error) == FrameStatus::Invalid);
    CHECK(error == "message length " + std::to_string(length) + " is invalid");
    FrameHeader h;
    CHECK(peek_header(bytes, h, kMax) == FrameStatus::Invalid);
  }
}

TEST_CASE("a length of 2^31 is rejected from the header alone") {
  const auto bytes = MessageBuilder{}.header('D', 0x80000000u).build();
  FrameHeader h;
  std::string error;
  CHECK(peek_header(bytes, h, kMax, &error) == FrameStatus::Invalid);
  CHECK(error == "message of 2147483648 bytes exceeds the maximum of 1048576");
  Frame f;
  std::size_t used = 0;
  CHECK(next_frame(bytes, f, used, kMax) == FrameStatus::Invalid);
}

TEST_CASE("a length of 0xffffffff does not wrap around") {
  const auto bytes = MessageBuilder{}.header('D', 0xffffffffu).build();
  FrameHeader h;
  CHECK(peek_header(bytes, h, 0xffffffffu) == FrameStatus::Ready);
  CHECK(h.total_size() == 0x100000000ull);
  Frame f;
  std::size_t used = 0;
  CHECK(next_frame(bytes, f, used, 0xffffffffu) == FrameStatus::NeedMore);
  CHECK(next_frame(bytes, f, used, kMax) == FrameStatus::Invalid);
}

TEST_CASE("a length one over the maximum is invalid and the maximum itself is fine") {
  const uint32_t max = 100;
  FrameHeader h;
  std::string error;
  CHECK(peek_header(MessageBuilder{}.header('Q', max + 1).build(), h, max, &error) == FrameStatus::Invalid);
  CHECK(error == "message of 101 bytes exceeds the maximum of 100");
  CHECK(peek_header(MessageBuilder{}.header('Q', max).build(), h, max) == FrameStatus::Ready);
  CHECK(h.length == max);
  CHECK(h.body_size() == 96);
  CHECK(h.total_size() == 101);
}

TEST_CASE("an invalid length is reported before the body arrives") {
  // The header alone decides: waiting for 2 GB of body would be the attack.
  const auto bytes = MessageBuilder{}.header('Q', 2000000000u).build();
  Frame f;
  std::size_t used = 0;
  std::string error;
  CHECK(next_frame(bytes, f, used, kMax, &error) == FrameStatus::Invalid);
  CHECK(error == "message of 2000000000 bytes exceeds the maximum of 1048576");
}

TEST_CASE("peek_header needs five bytes but never the body") {
  const auto bytes = MessageBuilder{}.message('D', std::string(1000, 'x')).build();
  FrameHeader h;
  for (std::size_t n = 0; n < 5; ++n) {
    CAPTURE(n);
    CHECK(peek_header(std::span(bytes).first(n), h, kMax) == FrameStatus::NeedMore);
  }
  REQUIRE(peek_header(std::span(bytes).first(5), h, kMax) == FrameStatus::Ready);
  CHECK(h.tag == 'D');
  CHECK(h.length == 1004);
  CHECK(h.body_size() == 1000);
  CHECK(h.total_size() == bytes.size());
}

TEST_CASE("an unknown tag is framed like any other") {
  const auto bytes = MessageBuilder{}.message('~', "abc").message('\0', "").build();
  const auto frames = frame_every_way(bytes);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].tag == '~');
  CHECK(string_of(frames[0].body) == "abc");
  CHECK(frames[1].tag == '\0');
  CHECK(frames[1].body.empty());
}

TEST_CASE("an invalid header after a good message stops framing there") {
  const auto bytes = MessageBuilder{}.query("select 1").header('Q', 2).raw("garbage").build();
  FrameSink sink(kMax);
  CHECK(sink.feed(bytes) == FrameStatus::Invalid);
  CHECK(sink.frames().size() == 1);
  CHECK(sink.error() == "message length 2 is invalid");
}

TEST_CASE("the error pointer may be null") {
  const auto bytes = MessageBuilder{}.header('Q', 3).build();
  Frame f;
  std::size_t used = 0;
  CHECK(next_frame(bytes, f, used, kMax) == FrameStatus::Invalid);
  CHECK(next_startup_packet(MessageBuilder{}.i32(3).build(), f, used) == FrameStatus::Invalid);
}

TEST_CASE("an empty input needs more") {
  Frame f;
  std::size_t used = 0;
  FrameHeader h;
  CHECK(next_frame({}, f, used, kMax) == FrameStatus::NeedMore);
  CHECK(peek_header({}, h, kMax) == FrameStatus::NeedMore);
  CHECK(next_startup_packet({}, f, used) == FrameStatus::NeedMore);
}

TEST_CASE("a startup packet frames without a tag") {
  const auto bytes = MessageBuilder{}.startup({{"user", "app"}}).build();
  Frame f;
  std::size_t used = 0;
  REQUIRE(next_startup_packet(bytes, f, used) == FrameStatus::Ready);
  CHECK(f.tag == 0);
  CHECK(used == bytes.size());
  CHECK(f.body.size() == bytes.size() - 4);
  CHECK(f.body.data() == bytes.data() + 4);
}

TEST_CASE("a startup packet followed by a typed message frames every way") {
  const auto bytes = MessageBuilder{}.startup({{"user", "app"}, {"database", "db"}}).password("secret").build();
  const auto frames = frame_every_way(bytes, /*startup_first=*/true);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].tag == 0);
  CHECK(frames[1].tag == 'p');
  CHECK(string_of(frames[1].body) == std::string("secret\0", 7));
}

TEST_CASE("startup packet lengths below 8 or above the maximum are invalid") {
  Frame f;
  std::size_t used = 0;
  std::string error;
  for (int32_t length : {0, 3, 4, 7}) {
    CAPTURE(length);
    CHECK(next_startup_packet(MessageBuilder{}.i32(length).i32(0).build(), f, used, 10000, &error) ==
          FrameStatus::Invalid);
    CHECK(error == "message length " + std::to_string(length) + " is invalid");
  }
  CHECK(next_startup_packet(MessageBuilder{}.i32(10001).build(), f, used, 10000, &error) == FrameStatus::Invalid);
  CHECK(error == "message of 10001 bytes exceeds the maximum of 10000");
  CHECK(next_startup_packet(MessageBuilder{}.i32(INT32_MIN).build(), f, used, 10000, &error) == FrameStatus::Invalid);
  CHECK(next_startup_packet(MessageBuilder{}.i32(10000).build(), f, used) == FrameStatus::NeedMore);
  CHECK(next_startup_packet(MessageBuilder{}.i32(8).build(), f, used) == FrameStatus::NeedMore);
}

TEST_CASE("an SSLRequest split at any offset frames only once complete") {
  const auto bytes = MessageBuilder{}.ssl_request().build();
  REQUIRE(bytes.size() == 8);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    Frame f;
    std::size_t used = 0;
    CHECK(next_startup_packet(std::span(bytes).first(cut), f, used) == FrameStatus::NeedMore);
  }
  const auto frames = frame_every_way(bytes, true);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].body.size() == 4);
}
