#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "sql/classify.h"
#include "sql/session_effects.h"

using pgsidecar::sql::classify_sql;
using pgsidecar::sql::EffectKind;
using pgsidecar::sql::SessionEffect;
using pgsidecar::sql::StatementEffects;

namespace {

// The effects of a one-statement text.
StatementEffects effects_of(const std::string& sql) {
  const auto c = classify_sql(sql);
  if (c.session_effects.empty()) return {};
  REQUIRE(c.session_effects.size() == 1);
  return c.session_effects.front();
}

SessionEffect one(const std::string& sql) {
  const StatementEffects e = effects_of(sql);
  REQUIRE(e.size() == 1);
  return e.front();
}

}  // namespace

TEST_CASE("session SETs are read with their value as set_config takes it") {
  CHECK(one("SET statement_timeout = 5000") == SessionEffect{EffectKind::Set, "statement_timeout", "5000"});
  CHECK(one("set Statement_Timeout to '5s'") == SessionEffect{EffectKind::Set, "statement_timeout", "5s"});
  CHECK(one("SET SESSION work_mem TO '8MB'") == SessionEffect{EffectKind::Set, "work_mem", "8MB"});
  CHECK(one("SET search_path = public, \"My S\", \"$user\"") ==
        SessionEffect{EffectKind::Set, "search_path", "public, \"My S\", $user"});
  CHECK(one("SET app.x = 1.5") == SessionEffect{EffectKind::Set, "app.x", "1.5"});
  CHECK(one("SET app.x = 0") == SessionEffect{EffectKind::Set, "app.x", "0"});
  CHECK(one("SET extra_float_digits = -1") == SessionEffect{EffectKind::Set, "extra_float_digits", "-1"});
  CHECK(one("SET extra_float_digits TO -3") == SessionEffect{EffectKind::Set, "extra_float_digits", "-3"});
  CHECK(one("SET app.x = -1.5") == SessionEffect{EffectKind::Set, "app.x", "-1.5"});
  CHECK(one("SET ROLE bob") == SessionEffect{EffectKind::Set, "role", "bob"});
  CHECK(one("SET SESSION AUTHORIZATION 'bob'") == SessionEffect{EffectKind::Set, "session_authorization", "bob"});
  CHECK(one("SET SESSION AUTHORIZATION DEFAULT") == SessionEffect{EffectKind::Reset, "session_authorization", ""});
  CHECK(one("RESET ROLE") == SessionEffect{EffectKind::Reset, "role", ""});
  CHECK(one("SET work_mem TO DEFAULT") == SessionEffect{EffectKind::Reset, "work_mem", ""});
  CHECK(one("RESET ALL").kind == EffectKind::ResetAll);
  CHECK(one("select set_config('app.user', '42', false)") == SessionEffect{EffectKind::Set, "app.user", "42"});
  CHECK(effects_of("SET LOCAL statement_timeout = 5").empty());
  CHECK(effects_of("select set_config('a', 'b', true)").empty());
  CHECK(effects_of("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").empty());
  const StatementEffects chars =
      effects_of("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY");
  REQUIRE(chars.size() == 2);
  CHECK(chars[0] == SessionEffect{EffectKind::Set, "default_transaction_isolation", "serializable"});
  CHECK(chars[1] == SessionEffect{EffectKind::Set, "default_transaction_read_only", "on"});
}

TEST_CASE("set_config of statement parameters names them, to be read from the Bind") {
  CHECK(one("select set_config('App.User', $1, false)") ==
        SessionEffect{EffectKind::SetFromParams, "app.user", "", 0, 1});
  CHECK(one("SELECT set_config($1, $2, false)") == SessionEffect{EffectKind::SetFromParams, "", "", 1, 2});
  CHECK(one("SELECT pg_catalog.set_config($2::text, 'on', false)") ==
        SessionEffect{EffectKind::SetFromParams, "", "on", 2, 0});
  CHECK(one("SELECT set_config('app.x', $3::varchar, false)") ==
        SessionEffect{EffectKind::SetFromParams, "app.x", "", 0, 3});
  CHECK(one("SELECT set_config('app.x', $1::pg_catalog.varchar, 'f')") ==
        SessionEffect{EffectKind::SetFromParams, "app.x", "", 0, 1});
  CHECK(one("SELECT set_config('app.x', $1::character varying, false)") ==
        SessionEffect{EffectKind::SetFromParams, "app.x", "", 0, 1});
  CHECK(effects_of("SELECT set_config('app.x', $1, true)").empty());
  // What the server alone knows stays untracked: is_local a parameter, a cast that may
  // change the text (name, char, varchar(n)), an expression, named arguments.
  for (const char* sql : {"SELECT set_config('app.x', $1, $2)", "SELECT set_config('app.x', $1::name, false)",
                          "SELECT set_config('app.x', $1::char(3), false)",
                          "SELECT set_config('app.x', $1::varchar(3), false)",
                          "SELECT set_config('app.x', $1 || 'a', false)", "SELECT set_config('app.x', upper($1), false)",
                          "SELECT set_config(setting_name => 'app.x', new_value => $1, is_local => false)"}) {
    CAPTURE(sql);
    CHECK(one(sql) == SessionEffect{EffectKind::UntrackedSetting, "set_config", ""});
  }
  CHECK_FALSE(pgsidecar::sql::creates_pinned_state(EffectKind::SetFromParams));
}

TEST_CASE("state that pins a client is recognised, ON COMMIT DROP and xact locks excepted") {
  CHECK(one("CREATE TEMP TABLE t(a int)").kind == EffectKind::TempTable);
  CHECK(one("create temporary view v as select 1").kind == EffectKind::TempTable);
  CHECK(one("CREATE TABLE pg_temp.t(a int)").kind == EffectKind::TempTable);
  CHECK(one("SELECT 1 AS a INTO TEMP tt").kind == EffectKind::TempTable);
  CHECK(one("CREATE TEMP TABLE t AS SELECT 1").kind == EffectKind::TempTable);
  CHECK(effects_of("CREATE TEMP TABLE t(a int) ON COMMIT DROP").empty());
  CHECK(effects_of("CREATE TABLE t(a int)").empty());
  CHECK(one("SELECT pg_advisory_lock(1)").kind == EffectKind::AdvisoryLock);
  CHECK(one("select pg_catalog.pg_try_advisory_lock(1, 2)").kind == EffectKind::AdvisoryLock);
  CHECK(one("SELECT pg_advisory_lock(id) FROM jobs").kind == EffectKind::AdvisoryLockUncounted);
  CHECK(one("SELECT pg_advisory_unlock(1)").kind == EffectKind::AdvisoryUnlock);
  CHECK(one("SELECT pg_advisory_unlock_all()").kind == EffectKind::AdvisoryUnlockAll);
  CHECK(effects_of("SELECT pg_advisory_xact_lock(1)").empty());
  CHECK(one("DECLARE c CURSOR WITH HOLD FOR SELECT 1") == SessionEffect{EffectKind::HoldCursor, "c", "DECLARE ... WITH HOLD"});
  CHECK(effects_of("DECLARE c CURSOR FOR SELECT 1").empty());
  CHECK(one("CLOSE c") == SessionEffect{EffectKind::CloseCursor, "c", ""});
  CHECK(one("CLOSE ALL").kind == EffectKind::CloseAllCursors);
  CHECK(one("LISTEN ch") == SessionEffect{EffectKind::Listen, "ch", "LISTEN"});
  CHECK(one("UNLISTEN ch").kind == EffectKind::Unlisten);
  CHECK(one("UNLISTEN *").kind == EffectKind::UnlistenAll);
  CHECK(one("PREPARE p(int) AS SELECT $1") == SessionEffect{EffectKind::Prepare, "p", "PREPARE"});
  CHECK(one("DEALLOCATE p").kind == EffectKind::Deallocate);
  CHECK(one("DEALLOCATE ALL").kind == EffectKind::DeallocateAll);
  CHECK(one("DISCARD TEMP").kind == EffectKind::DiscardTemp);
  CHECK(one("DISCARD ALL").kind == EffectKind::DiscardAll);
}

TEST_CASE("a multi-statement string has one entry per statement, transaction control included") {
  const auto c = classify_sql("BEGIN; SET work_mem = '8MB'; SAVEPOINT s; SELECT 1; ROLLBACK TO s; COMMIT");
  REQUIRE(c.session_effects.size() == 6);
  CHECK(c.session_effects[0].empty());
  CHECK(c.session_effects[1].front().kind == EffectKind::Set);
  CHECK(c.session_effects[2].front() == SessionEffect{EffectKind::Savepoint, "s", ""});
  CHECK(c.session_effects[3].empty());
  CHECK(c.session_effects[4].front().kind == EffectKind::RollbackTo);
  CHECK(c.session_effects[5].front().kind == EffectKind::Commit);
  CHECK(classify_sql("SELECT 1; SELECT 2").session_effects.empty());
}

TEST_CASE("the quick look finds every keyword and little else") {
  CHECK(pgsidecar::sql::may_affect_session("ReSeT all"));
  CHECK(pgsidecar::sql::may_affect_session("create TEMPORARY table t()"));
  CHECK(pgsidecar::sql::may_affect_session("select pg_advisory_lock(1)"));
  CHECK_FALSE(pgsidecar::sql::may_affect_session("SELECT a FROM b WHERE c = 1"));
  CHECK_FALSE(pgsidecar::sql::may_affect_session("COMMIT"));
  CHECK(pgsidecar::sql::may_control_transaction("COMMIT"));
  // SET and the other statement words count only where a statement starts: an UPDATE's
  // SET, a CASE's END and a column named "closed" cost no parse.
  CHECK_FALSE(pgsidecar::sql::may_affect_session("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 2"));
  CHECK_FALSE(pgsidecar::sql::may_affect_session("SELECT closed, prepared_at FROM orders WHERE listener = 1"));
  CHECK_FALSE(pgsidecar::sql::may_control_transaction("SELECT CASE WHEN a THEN 1 END FROM t"));
  CHECK(pgsidecar::sql::may_affect_session("SELECT 1; set work_mem = '1MB'"));
  CHECK(pgsidecar::sql::may_affect_session("-- a comment\nSET work_mem = '1MB'"));
  CHECK(pgsidecar::sql::may_affect_session("/* a /* nested */ comment */ RESET work_mem"));
  CHECK(pgsidecar::sql::may_affect_session("DO $$BEGIN SET work_mem = '1MB'; END$$"));
  CHECK(pgsidecar::sql::may_affect_session("SELECT pg_catalog.set_config('a.b', 'c', false)"));
  CHECK(pgsidecar::sql::may_affect_session("DECLARE c CURSOR WITH HOLD FOR SELECT 1"));
  CHECK(pgsidecar::sql::may_affect_session("SELECT 1 INTO TEMP t"));
  CHECK(pgsidecar::sql::may_control_transaction("SELECT 1; COMMIT"));
}
