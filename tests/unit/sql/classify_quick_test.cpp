#include <doctest/doctest.h>

#include <string_view>

#include "sql/classify.h"
#include "sql/classify_quick.h"

using pgsidecar::sql::QuickVerdict;
using pgsidecar::sql::quick_classify;

TEST_CASE("plain SELECTs with literals are reads without the parser") {
  CHECK(quick_classify("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;") == QuickVerdict::Read);
  CHECK(quick_classify("  select a, b from t where name = 'it''s' and x > 2.5") == QuickVerdict::Read);
  CHECK(quick_classify("/* c /* nested */ */ SELECT \"Col\" FROM \"T\" WHERE a = $1") == QuickVerdict::Read);
  CHECK(quick_classify("-- comment\nSELECT 1") == QuickVerdict::Read);
}

TEST_CASE("statements that always write are decided by their first keyword") {
  for (std::string_view sql : {"INSERT INTO t VALUES (1)", "update t set a = 1", "DELETE FROM t", "copy t to stdout",
                               "SET statement_timeout = 0", "call p()", "do $$ begin end $$", "TRUNCATE t"}) {
    CAPTURE(sql);
    CHECK(quick_classify(sql) == QuickVerdict::Write);
  }
}

TEST_CASE("anything that could hide a write is left to the parser") {
  for (std::string_view sql :
       {"SELECT nextval('s')", "SELECT * FROM t FOR UPDATE", "select a into b from t", "SELECT 1; DELETE FROM t",
        "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "SELECT (SELECT 1)", "SELECT E'\\''",
        "SELECT $$x$$", "BEGIN READ ONLY", "SELECT 1 /* unterminated", "SELECT 'unterminated", "", "   ",
        "EXPLAIN SELECT 1", "SHOW work_mem", "values (1)", "SELECT * FROM t for share"}) {
    CAPTURE(sql);
    CHECK(quick_classify(sql) == QuickVerdict::Unsure);
  }
}

TEST_CASE("a quick verdict never disagrees with the parser") {
  for (std::string_view sql :
       {"SELECT abalance FROM pgbench_accounts WHERE aid = 1", "select a, b from t where name = 'x'",
        "INSERT INTO t VALUES (1)", "UPDATE t SET a = 2", "DELETE FROM t", "SELECT 1", "select * from t; "}) {
    CAPTURE(sql);
    const QuickVerdict quick = quick_classify(sql);
    REQUIRE(quick != QuickVerdict::Unsure);
    const auto full = pgsidecar::sql::classify_sql(sql);
    CHECK((quick == QuickVerdict::Read) == (full.kind == pgsidecar::sql::StatementKind::Read));
  }
}

TEST_CASE("only text that names set_config, or could spell it, may set a session setting") {
  using pgsidecar::sql::may_set_session_config;
  CHECK(may_set_session_config("SELECT set_config('a.b', 'c', false)"));
  CHECK(may_set_session_config("select PG_CATALOG.SET_CONFIG('a.b', 'c', false)"));
  CHECK(may_set_session_config("SELECT \"set_config\"('a.b', 'c', false)"));
  CHECK(may_set_session_config("SELECT U&\"\\0073et_config\"('a.b', 'c', false)"));
  CHECK(may_set_session_config("select u&\"x\"()"));
  CHECK_FALSE(may_set_session_config("SELECT current_setting('statement_timeout')"));
  CHECK_FALSE(may_set_session_config("SELECT config FROM settings WHERE name = $1"));
  CHECK_FALSE(may_set_session_config("SELECT set_confi"));
  CHECK_FALSE(may_set_session_config(""));
}
