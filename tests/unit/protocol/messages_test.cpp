#include "protocol/messages.h"

#include <doctest/doctest.h>

#include <array>

#include "protocol/backend.h"
#include "protocol/frontend.h"
#include "protocol/startup.h"
#include "protocol/tags.h"
#include "unit/protocol/frame_sink.h"
#include "unit/protocol/message_builder.h"

using namespace pgsidecar::protocol;
using namespace pgsidecar::protocol::testing;

namespace {

std::vector<std::byte> hex(std::initializer_list<uint8_t> bytes) { return MessageBuilder{}.raw(bytes).build(); }

template <typename F>
std::vector<std::byte> built(F&& f) {
  std::vector<std::byte> out;
  f(out);
  return out;
}

RecordedFrame only_frame(const std::vector<std::byte>& bytes) {
  const auto frames = frame_every_way(bytes);
  REQUIRE(frames.size() == 1);
  return frames[0];
}

}  // namespace

TEST_CASE("bodiless messages are their tag and a length of 4") {
  CHECK(built([](auto& o) { append_sync(o); }) == hex({'S', 0, 0, 0, 4}));
  CHECK(built([](auto& o) { append_flush(o); }) == hex({'H', 0, 0, 0, 4}));
  CHECK(built([](auto& o) { append_terminate(o); }) == hex({'X', 0, 0, 0, 4}));
  CHECK(built([](auto& o) { append_empty_query_response(o); }) == hex({'I', 0, 0, 0, 4}));
  CHECK(built([](auto& o) { append_parse_complete(o); }) == hex({'1', 0, 0, 0, 4}));
  CHECK(built([](auto& o) { append_bind_complete(o); }) == hex({'2', 0, 0, 0, 4}));
  CHECK(built([](auto& o) { append_close_complete(o); }) == hex({'3', 0, 0, 0, 4}));
  CHECK(built([](auto& o) { append_no_data(o); }) == hex({'n', 0, 0, 0, 4}));
}

TEST_CASE("builders append after what is already in the buffer") {
  std::vector<std::byte> out = hex({0xaa});
  append_ready_for_query(out, 'T');
  CHECK(out == hex({0xaa, 'Z', 0, 0, 0, 5, 'T'}));
}

TEST_CASE("startup-phase requests match the documented bytes") {
  CHECK(built([](auto& o) { append_ssl_request(o); }) == hex({0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}));
  CHECK(built([](auto& o) { append_gssenc_request(o); }) == hex({0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}));
  CHECK(built([](auto& o) { append_cancel_request(o, 1, -1); }) ==
        hex({0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}));
}

TEST_CASE("a StartupMessage matches the documented bytes") {
  const std::vector<std::pair<std::string, std::string>> params{{"user", "u"}, {"database", "d"}};
  const auto expected = MessageBuilder{}
                            .i32(4 + 4 + 5 + 2 + 9 + 2 + 1)
                            .raw({0, 3, 0, 0})
                            .cstring("user").cstring("u")
                            .cstring("database").cstring("d")
                            .raw({0})
                            .build();
  CHECK(built([&](auto& o) { append_startup_message(o, params); }) == expected);
}

TEST_CASE("a StartupMessage round-trips through the startup parser") {
  const std::vector<std::pair<std::string, std::string>> params{
      {"user", "app"}, {"application_name", "x"}, {"database", "db"}, {"options", "-c a=b"}};
  Frame f;
  std::size_t used = 0;
  const auto bytes = built([&](auto& o) { append_startup_message(o, params); });
  REQUIRE(next_startup_packet(bytes, f, used) == FrameStatus::Ready);
  StartupPacket p;
  std::string error;
  REQUIRE(parse_startup_packet(f.body, p, error));
  CHECK(p.startup.user == "app");
  CHECK(p.startup.database == "db");
  CHECK(p.startup.options == "-c a=b");
  CHECK(p.startup.parameters.size() == 2);
}

TEST_CASE("Authentication requests match the documented bytes") {
  CHECK(built([](auto& o) { append_authentication_ok(o); }) == hex({'R', 0, 0, 0, 8, 0, 0, 0, 0}));
  CHECK(built([](auto& o) { append_authentication_cleartext_password(o); }) == hex({'R', 0, 0, 0, 8, 0, 0, 0, 3}));
  const std::array<std::byte, 4> salt{std::byte{9}, std::byte{8}, std::byte{7}, std::byte{6}};
  CHECK(built([&](auto& o) { append_authentication_md5_password(o, salt); }) ==
        hex({'R', 0, 0, 0, 12, 0, 0, 0, 5, 9, 8, 7, 6}));
  const std::array<std::string_view, 1> mechs{"SCRAM-SHA-256"};
  CHECK(built([&](auto& o) { append_authentication_sasl(o, mechs); }) ==
        MessageBuilder{}.raw("R").i32(4 + 4 + 14 + 1).i32(10).cstring("SCRAM-SHA-256").raw({0}).build());
  CHECK(built([](auto& o) { append_authentication_sasl_continue(o, "abc"); }) ==
        hex({'R', 0, 0, 0, 11, 0, 0, 0, 11, 'a', 'b', 'c'}));
  CHECK(built([](auto& o) { append_authentication_sasl_final(o, ""); }) == hex({'R', 0, 0, 0, 8, 0, 0, 0, 12}));
}

TEST_CASE("Parse and Bind match the documented bytes") {
  const std::array<int32_t, 1> oids{23};
  CHECK(built([&](auto& o) { append_parse(o, "s", "q", oids); }) ==
        hex({'P', 0, 0, 0, 14, 's', 0, 'q', 0, 0, 1, 0, 0, 0, 23}));
  const std::array<std::optional<std::string_view>, 2> params{std::string_view("ab"), std::nullopt};
  // portal "" statement "s" Int16(0 formats) Int16(2) Int32(2) "ab" Int32(-1) Int16(0 result formats)
  CHECK(built([&](auto& o) { append_bind(o, "", "s", params); }) ==
        hex({'B', 0, 0, 0, 23, 0, 's', 0, 0, 0, 0, 2, 0, 0, 0, 2, 'a', 'b', 0xff, 0xff, 0xff, 0xff, 0, 0}));
}

TEST_CASE("Describe, Execute and Close match the documented bytes") {
  CHECK(built([](auto& o) { append_describe(o, 'S', "s"); }) == hex({'D', 0, 0, 0, 7, 'S', 's', 0}));
  CHECK(built([](auto& o) { append_close(o, 'P', ""); }) == hex({'C', 0, 0, 0, 6, 'P', 0}));
  CHECK(built([](auto& o) { append_execute(o, "", 0); }) == hex({'E', 0, 0, 0, 9, 0, 0, 0, 0, 0}));
}

TEST_CASE("password messages match the documented bytes") {
  CHECK(built([](auto& o) { append_password_message(o, "pw"); }) == hex({'p', 0, 0, 0, 7, 'p', 'w', 0}));
  CHECK(built([](auto& o) { append_sasl_initial_response(o, "M", "xy"); }) ==
        hex({'p', 0, 0, 0, 12, 'M', 0, 0, 0, 0, 2, 'x', 'y'}));
  CHECK(built([](auto& o) { append_sasl_response(o, "xy"); }) == hex({'p', 0, 0, 0, 6, 'x', 'y'}));
}

TEST_CASE("each frontend builder round-trips through its parser") {
  SUBCASE("Query") {
    const auto f = only_frame(built([](auto& o) { append_query(o, "select 'é'"); }));
    CHECK(f.tag == tag(FrontendTag::Query));
    std::string_view sql;
    REQUIRE(parse_query(f.body, sql));
    CHECK(sql == "select 'é'");
  }
  SUBCASE("Parse") {
    const std::array<int32_t, 3> oids{0, 25, -1};
    const auto f = only_frame(built([&](auto& o) { append_parse(o, "stmt", "select $1,$2,$3", oids); }));
    CHECK(f.tag == tag(FrontendTag::Parse));
    ParseMessage p;
    REQUIRE(parse_parse(f.body, p));
    CHECK(p.name == "stmt");
    CHECK(p.param_count == 3);
    CHECK(static_cast<int32_t>(load_be32(p.param_types_raw.data() + 8)) == -1);
  }
  SUBCASE("Bind") {
    const auto f = only_frame(MessageBuilder{}.bind("portal", "stmt", {"1"}).build());
    CHECK(f.tag == tag(FrontendTag::Bind));
    std::string_view portal, statement;
    REQUIRE(peek_bind_names(f.body, f.body.size(), portal, statement) == PeekStatus::Ok);
    CHECK(portal == "portal");
    CHECK(statement == "stmt");
  }
  SUBCASE("Describe and Close") {
    char kind = 0;
    std::string_view name;
    const auto d = only_frame(built([](auto& o) { append_describe(o, 'P', "p"); }));
    CHECK(d.tag == tag(FrontendTag::Describe));
    REQUIRE(parse_describe(d.body, kind, name));
    CHECK(kind == 'P');
    const auto c = only_frame(built([](auto& o) { append_close(o, 'S', "s"); }));
    CHECK(c.tag == tag(FrontendTag::Close));
    REQUIRE(parse_close(c.body, kind, name));
    CHECK(kind == 'S');
    CHECK(name == "s");
  }
  SUBCASE("Execute") {
    const auto f = only_frame(built([](auto& o) { append_execute(o, "p", 5); }));
    CHECK(f.tag == tag(FrontendTag::Execute));
    std::string_view portal;
    int32_t rows = 0;
    REQUIRE(parse_execute(f.body, portal, rows));
    CHECK(rows == 5);
  }
  SUBCASE("PasswordMessage, SASLInitialResponse and SASLResponse") {
    std::string_view s;
    std::span<const std::byte> data;
    const auto p = only_frame(built([](auto& o) { append_password_message(o, "pw"); }));
    CHECK(p.tag == tag(FrontendTag::PasswordMessage));
    REQUIRE(parse_password_message(p.body, s));
    CHECK(s == "pw");
    const auto i = only_frame(built([](auto& o) { append_sasl_initial_response(o, "SCRAM-SHA-256", ""); }));
    REQUIRE(parse_sasl_initial_response(i.body, s, data));
    CHECK(s == "SCRAM-SHA-256");
    CHECK(data.empty());
    const auto r = only_frame(built([](auto& o) { append_sasl_response(o, "c=biws,r=x,p=y"); }));
    REQUIRE(parse_sasl_response(r.body, data));
    CHECK(string_of(data) == "c=biws,r=x,p=y");
  }
  SUBCASE("CancelRequest") {
    const auto bytes = built([](auto& o) { append_cancel_request(o, 77, 88); });
    Frame f;
    std::size_t used = 0;
    REQUIRE(next_startup_packet(bytes, f, used) == FrameStatus::Ready);
    StartupPacket p;
    std::string error;
    REQUIRE(parse_startup_packet(f.body, p, error));
    CHECK(p.kind == StartupKind::CancelRequest);
    CHECK(p.cancel.process_id == 77);
    CHECK(p.cancel.secret_key == 88);
  }
}

TEST_CASE("each backend builder round-trips through its parser") {
  SUBCASE("ErrorResponse") {
    ErrorFields e = make_error("FATAL", "57P01", "terminating connection due to administrator command");
    const auto f = only_frame(built([&](auto& o) { append_error_response(o, e); }));
    CHECK(f.tag == tag(BackendTag::ErrorResponse));
    ErrorFields parsed;
    REQUIRE(parse_error_response(f.body, parsed));
    CHECK(parsed.severity == "FATAL");
    CHECK(parsed.sqlstate == "57P01");
    CHECK(parsed.message == e.message);
  }
  SUBCASE("ParameterStatus and BackendKeyData") {
    const auto ps = only_frame(built([](auto& o) { append_parameter_status(o, "TimeZone", "UTC"); }));
    CHECK(ps.tag == tag(BackendTag::ParameterStatus));
    std::string_view n, v;
    REQUIRE(parse_parameter_status(ps.body, n, v));
    CHECK(v == "UTC");
    const auto k = only_frame(built([](auto& o) { append_backend_key_data(o, INT32_MIN, INT32_MAX); }));
    CHECK(k.tag == tag(BackendTag::BackendKeyData));
    int32_t pid = 0, secret = 0;
    REQUIRE(parse_backend_key_data(k.body, pid, secret));
    CHECK(pid == INT32_MIN);
    CHECK(secret == INT32_MAX);
  }
  SUBCASE("CommandComplete and EmptyQueryResponse") {
    const auto c = only_frame(built([](auto& o) { append_command_complete(o, "SHOW"); }));
    CHECK(c.tag == tag(BackendTag::CommandComplete));
    std::string_view t;
    REQUIRE(parse_command_complete(c.body, t));
    CHECK(t == "SHOW");
    const auto e = only_frame(built([](auto& o) { append_empty_query_response(o); }));
    CHECK(e.tag == tag(BackendTag::EmptyQueryResponse));
  }
  SUBCASE("NegotiateProtocolVersion with no options") {
    const auto f = only_frame(built([](auto& o) { append_negotiate_protocol_version(o, 0, {}); }));
    int32_t minor = -1;
    std::vector<std::string_view> options{"stale"};
    REQUIRE(parse_negotiate_protocol_version(f.body, minor, options));
    CHECK(minor == 0);
    CHECK(options.empty());
  }
}
