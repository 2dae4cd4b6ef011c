#include <doctest/doctest.h>

#include <string>

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
