#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "protocol/messages.h"
#include "proxy/session/session_tracker.h"
#include "sql/classify.h"

using pgsidecar::proxy::ParamList;
using pgsidecar::proxy::SessionTracker;

namespace {

// Sends `sql` as a simple Query and answers it as the server does when every statement
// succeeds, outside a transaction.
void run(SessionTracker& t, const std::string& sql) {
  const auto c = pgsidecar::sql::classify_sql(sql);
  for (const auto& effects : c.session_effects) t.sent_statement(&effects);
  t.query_end();
  for (std::size_t i = 0; i < c.session_effects.size(); ++i) t.statement_done();
  t.ready('I');
}

std::string setting(const SessionTracker& t, const std::string& name) {
  for (const auto& [k, v] : t.settings())
    if (k == name) return v;
  return "(none)";
}

// A Bind body (no tag or length) of `statement` with text parameters; nullopt is NULL.
std::vector<std::byte> bind_body(std::vector<std::optional<std::string_view>> params, std::string_view statement = "s") {
  std::vector<std::byte> out;
  pgsidecar::protocol::append_bind(out, "", statement, params);
  out.erase(out.begin(), out.begin() + 5);
  return out;
}

std::vector<std::byte> oids(std::vector<int32_t> types) {
  std::vector<std::byte> out;
  for (int32_t t : types)
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<std::byte>((static_cast<uint32_t>(t) >> shift) & 0xff));
  return out;
}

void prepare(SessionTracker& t, const std::string& sql, std::vector<int32_t> types = {}) {
  const auto c = pgsidecar::sql::classify_sql(sql);
  REQUIRE(c.session_effects.size() == 1);
  t.statement_prepared("s", &c.session_effects.front(), oids(std::move(types)));
}

// Binds statement "s" to the unnamed portal and runs it, outside a transaction.
void execute(SessionTracker& t, std::span<const std::byte> bind) {
  t.portal_bound("", "s", bind);
  t.sent_statement(t.portal_effects(""));
  t.sent_sync();
  t.statement_done();
  t.ready('I');
}

}  // namespace

TEST_CASE("SET or RESET SESSION AUTHORIZATION puts the followed role back to NONE, as the server does") {
  SessionTracker t;
  t.set_startup(ParamList{}, ParamList{});
  run(t, "SET SESSION AUTHORIZATION alice; SET ROLE bob");
  CHECK(setting(t, "role") == "bob");
  CHECK(setting(t, "session_authorization") == "alice");
  run(t, "RESET SESSION AUTHORIZATION");
  CHECK(setting(t, "role") == "(none)");
  run(t, "SET ROLE bob; SET SESSION AUTHORIZATION carol");
  CHECK(setting(t, "role") == "(none)");
  CHECK(setting(t, "session_authorization") == "carol");
  run(t, "SET ROLE dave");
  CHECK(setting(t, "role") == "dave");
}

TEST_CASE("set_config of Bind parameters is followed like a constant one, a NULL value as RESET") {
  SessionTracker t;
  t.set_startup(ParamList{}, ParamList{});
  prepare(t, "SELECT set_config('app.tenant', $1, false)");
  CHECK(t.binds_settings("s"));
  CHECK_FALSE(t.binds_settings("other"));
  execute(t, bind_body({"it's \\ 7"}));
  CHECK(setting(t, "app.tenant") == "it's \\ 7");
  execute(t, bind_body({"acme"}));
  CHECK(setting(t, "app.tenant") == "acme");
  execute(t, bind_body({std::nullopt}));
  CHECK(setting(t, "app.tenant") == "(none)");
  CHECK(t.pin_reasons() == 0);

  prepare(t, "SELECT set_config($1, $2::text, false)", {25, 1043});
  execute(t, bind_body({"App.Region", "eu"}));
  CHECK(setting(t, "app.region") == "eu");
  CHECK(t.pin_reasons() == 0);
}

TEST_CASE("set_config of Bind parameters not readable here pins, as an untracked setting") {
  for (int kind = 0; kind < 4; ++kind) {
    CAPTURE(kind);
    SessionTracker t;
    t.set_startup(ParamList{}, ParamList{});
    // A parameter declared `name` reaches set_config cut to 63 bytes.
    prepare(t, "SELECT set_config('app.tenant', $1, false)", kind == 0 ? std::vector<int32_t>{19} : std::vector<int32_t>{});
    if (kind == 0) execute(t, bind_body({"acme"}));
    if (kind == 1) execute(t, {});  // the Bind was not read whole
    if (kind == 2) execute(t, bind_body({std::string_view("a\0b", 3)}));
    if (kind == 3) execute(t, bind_body({}));  // no such parameter: the server will say so
    CHECK(setting(t, "app.tenant") == "(none)");
    CHECK(t.pin_reasons() == pgsidecar::proxy::kPinUntrackedSetting);
  }
}
