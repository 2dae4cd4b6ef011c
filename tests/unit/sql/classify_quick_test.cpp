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

TEST_CASE("a DO statement may set a session setting; ON CONFLICT DO does not make a statement one") {
  using pgsidecar::sql::may_set_session_config;
  CHECK(may_set_session_config("DO $$BEGIN SET work_mem = '8MB'; END$$"));
  CHECK(may_set_session_config("-- a migration\ndo 'begin null; end'"));
  CHECK(may_set_session_config("DO LANGUAGE plpgsql $x$BEGIN NULL; END$x$"));
  CHECK(may_set_session_config("SELECT 1; DO E'begin null; end'"));
  CHECK_FALSE(may_set_session_config("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING"));
  CHECK_FALSE(may_set_session_config("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2"));
  CHECK_FALSE(may_set_session_config("SELECT todo, undo FROM done"));
}

TEST_CASE("a PL/pgSQL body may set a session setting when a statement or a string starts with SET or RESET") {
  using pgsidecar::sql::plpgsql_may_set;
  CHECK(plpgsql_may_set("BEGIN SET enable_seqscan = 0; END"));
  CHECK(plpgsql_may_set("begin\n  if x then\n    reset work_mem;\n  end if;\nend"));
  CHECK(plpgsql_may_set("BEGIN UPDATE t SET a = 1; SET search_path = s; END"));
  CHECK(plpgsql_may_set("BEGIN EXECUTE 'SET statement_timeout = 5'; END"));
  CHECK(plpgsql_may_set("BEGIN PERFORM set_config('a.b', 'c', false); END"));
  CHECK(plpgsql_may_set("BEGIN FOR r IN SELECT 1 LOOP SET work_mem = '1MB'; END LOOP; END"));
  CHECK_FALSE(plpgsql_may_set("BEGIN UPDATE t SET a = 1 WHERE b; END"));
  CHECK_FALSE(plpgsql_may_set("BEGIN ALTER TABLE t ALTER COLUMN c SET DEFAULT 0; END"));
  CHECK_FALSE(plpgsql_may_set("BEGIN INSERT INTO t VALUES (1) ON CONFLICT DO UPDATE SET a = 2; END"));
  CHECK_FALSE(plpgsql_may_set("BEGIN RAISE NOTICE 'offset'; END"));
}
