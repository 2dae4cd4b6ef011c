#include <doctest/doctest.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "sql/classify.h"

using pgsidecar::sql::Classification;
using pgsidecar::sql::classify_sql;
using pgsidecar::sql::StatementKind;

namespace {

constexpr StatementKind R = StatementKind::Read;
constexpr StatementKind W = StatementKind::Write;

struct Case {
  std::string_view sql;
  StatementKind kind;
  std::string_view reason;  // empty: not checked
};

// Each statement with its verdict. Reasons are checked where they name the rule.
constexpr Case kCases[] = {
    // Plain reads.
    {"select 1", R, "SELECT"},
    {"SELECT * FROM users WHERE id = $1", R, "SELECT"},
    {"select id, name from users where email = $1 and deleted_at is null limit $2", R, ""},
    {"values (1, 'a'), (2, 'b')", R, "SELECT"},
    {"table users", R, "SELECT"},
    {"select 1 union select 2", R, ""},
    {"select a from t intersect select a from u except all select a from v", R, ""},
    {"with recent as (select * from events where at > now() - interval '1 day') "
     "select count(*) from recent", R, ""},
    {"select now(), current_timestamp, lower(name), coalesce(x, 0), greatest(a, b), "
     "nullif(a, b) from t", R, ""},
    {"select pg_catalog.now(), pg_catalog.lower('A')", R, ""},
    {"select extract(year from created_at), date_trunc('day', created_at), "
     "substring(name from 2), trim(both from name), position('a' in name) from t", R, ""},
    {"select pg_is_in_recovery(), pg_last_wal_replay_lsn(), version()", R, ""},
    {"select jsonb_build_object('a', 1) ->> 'a', to_char(now(), 'YYYY')", R, ""},
    {"select row_number() over (order by id), lag(x) over w from t window w as (order by id)",
     R, ""},
    {"select g from generate_series(1, 10) g join unnest($1::int[]) u on u = g", R, ""},
    {"select exists (select 1 from t where id = $1)", R, ""},
    {"select count(*) filter (where x > 0), string_agg(name, ',') from t", R, ""},
    {"select * from t1 join lateral (select * from t2 where t2.id = t1.id limit 1) s on true",
     R, ""},
    {"select md5(random()::text), gen_random_uuid(), pg_sleep(0)", R, ""},
    {"select 'nextval(1) for update; insert' as just_text", R, "SELECT"},
    {"select * from t tablesample bernoulli (10)", R, ""},
    {"select 1 from t for read only", R, "SELECT"},  // no lock: the SQL-standard no-op
    {"select 1 OPERATOR(pg_catalog.+) 2", R, ""},
    // Odd case, whitespace, comments, unicode.
    {"SeLeCt   1\n\t", R, "SELECT"},
    {"\n\n   select\n1\n;\n", R, "SELECT"},
    {"-- leading comment\nselect 1 -- trailing comment", R, "SELECT"},
    {"/* block /* nested */ still a comment */ select 1", R, "SELECT"},
    {"select \"名前\" from \"ユーザー\" where \"ñ\" = 'é'", R, "SELECT"},
    // Several statements: Read only if each is.
    {"select 1; select 2", R, "SELECT"},
    {"select 1;;; select 2;", R, "SELECT"},
    // SHOW, EXPLAIN.
    {"show search_path", R, "SHOW"},
    {"SHOW ALL", R, "SHOW"},
    {"explain select * from t", R, "EXPLAIN"},
    {"explain (analyze false) select 1", R, "EXPLAIN"},
    {"explain (analyze off, verbose) select 1", R, "EXPLAIN"},
    {"explain (analyze 0) select 1", R, "EXPLAIN"},
    {"explain insert into t values (1)", R, "EXPLAIN"},  // planned, not run
    // Nothing to run.
    {"", R, "empty query"},
    {"   -- only a comment", R, "empty query"},
    {";", R, "empty query"},
    // Transaction control does not write by itself.
    {"begin", R, "BEGIN"},
    {"commit", R, "COMMIT"},
    {"rollback", R, "ROLLBACK"},

    // Locking clauses, at any depth.
    {"select * from t for update", W, "SELECT ... FOR UPDATE"},
    {"select * from t for share", W, "SELECT ... FOR SHARE"},
    {"select * from t for no key update skip locked", W, "SELECT ... FOR NO KEY UPDATE"},
    {"select * from t for key share nowait", W, "SELECT ... FOR KEY SHARE"},
    {"select * from t for update of t", W, "SELECT ... FOR UPDATE"},
    {"select * from (select * from t for update) s", W, "SELECT ... FOR UPDATE"},
    {"select * from t where id in (select id from u for share)", W, "SELECT ... FOR SHARE"},
    {"with x as (select * from t for update) select * from x", W, "SELECT ... FOR UPDATE"},
    {"select 1 union all (select 2 from t for update)", W, "SELECT ... FOR UPDATE"},
    // SELECT INTO creates a table.
    {"select * into new_t from t", W, "SELECT INTO"},
    {"select 1 into temp t", W, "SELECT INTO"},
    // Data-modifying CTEs.
    {"with ins as (insert into t values (1) returning id) select * from ins", W,
     "WITH ... INSERT"},
    {"with u as (update t set x = 1 returning *) select count(*) from u", W, "WITH ... UPDATE"},
    {"with d as (delete from t returning *) select * from d", W, "WITH ... DELETE"},
    {"with a as (select 1), b as (with c as (delete from t returning 1) select * from c) "
     "select * from b", W, "WITH ... DELETE"},
    // Writing functions anywhere in the tree.
    {"select nextval('s')", W, "nextval() writes"},
    {"SELECT NEXTVAL('s')", W, "nextval() writes"},
    {"select 1 + nextval('s') as n", W, "nextval() writes"},
    {"select * from t where id = (select nextval('s'))", W, "nextval() writes"},
    {"select * from t order by nextval('s')", W, "nextval() writes"},
    {"with s as (select setval('s', 10)) select * from s", W, "setval() writes"},
    {"select pg_catalog.nextval('s')", W, "nextval() writes"},
    {"select pg_advisory_lock(1)", W, "pg_advisory_lock() writes"},
    {"select pg_try_advisory_xact_lock(42)", W, "pg_try_advisory_xact_lock() writes"},
    {"select case when x then pg_advisory_unlock(1) end from t", W, "pg_advisory_unlock() writes"},
    {"select * from t where exists (select pg_advisory_lock_shared(t.id))", W, ""},
    {"select lo_create(0)", W, "lo_create() writes"},
    {"select lowrite(0, 'x')", W, "lowrite() writes"},
    {"select pg_notify('c', 'x')", W, "pg_notify() writes"},
    {"select set_config('a.b', 'c', false)", W, "set_config() writes"},
    {"select txid_current()", W, "txid_current() writes"},
    {"select pg_current_xact_id()", W, "pg_current_xact_id() writes"},
    // Functions that work on the primary only.
    {"select currval('s')", W, "currval() runs on the primary only"},
    {"select lastval()", W, "lastval() runs on the primary only"},
    {"select pg_current_wal_lsn()", W, "pg_current_wal_lsn() runs on the primary only"},
    {"select pg_terminate_backend(123)", W, "pg_terminate_backend() writes"},
    {"select pg_stat_reset()", W, "pg_stat_reset() writes"},
    {"select count(*) filter (where nextval('s') > 0) from t", W, "nextval() writes"},
    {"select sum(x) over (partition by nextval('s')) from t", W, "nextval() writes"},
    {"values (nextval('s'))", W, "nextval() writes"},
    // Unknown or user-defined functions and operators may write.
    {"select my_function(1)", W, "my_function() is not known to be read-only"},
    {"select app.now()", W, "app.now() is not known to be read-only"},
    {"select \"NOW\"()", W, "NOW() is not known to be read-only"},
    {"select * from my_srf()", W, "my_srf() is not known to be read-only"},
    {"select db.app.f()", W, "db.app.f() is not known to be read-only"},
    {"select 1 OPERATOR(app.+) 2", W, "operator app.+ is not known to be read-only"},
    // EXPLAIN ANALYZE runs the statement.
    {"explain analyze select 1", W, "EXPLAIN ANALYZE"},
    {"EXPLAIN ANALYSE select 1", W, "EXPLAIN ANALYZE"},
    {"explain (analyze) select 1", W, "EXPLAIN ANALYZE"},
    {"explain (analyze true, buffers) select 1", W, "EXPLAIN ANALYZE"},
    {"explain (analyze maybe) select 1", W, "EXPLAIN ANALYZE"},
    {"explain (analyze off, analyze on) select 1", W, "EXPLAIN ANALYZE"},
    {"explain execute q(1)", W, "EXPLAIN EXECUTE"},
    // Data modification.
    {"insert into t values ($1, $2)", W, "INSERT"},
    {"insert into t select * from u", W, "INSERT"},
    {"update t set x = 1 where id = $1", W, "UPDATE"},
    {"delete from t", W, "DELETE"},
    {"merge into t using s on t.id = s.id when matched then update set x = s.x", W, "MERGE"},
    {"with x as (select 1) insert into t select * from x", W, "INSERT"},
    // Session state and everything else.
    {"set search_path = app", W, "SET"},
    {"set local statement_timeout = '1s'", W, "SET"},
    {"reset search_path", W, "RESET"},
    {"reset all", W, "RESET ALL"},
    {"call proc(1)", W, "CALL"},
    {"do $$ begin perform 1; end $$", W, "DO"},
    {"copy t to stdout", W, "COPY"},
    {"copy t from stdin", W, "COPY"},
    {"copy (select 1) to stdout with (format csv)", W, "COPY"},
    {"create table t (id int)", W, "CreateStmt"},
    {"drop table t", W, "DropStmt"},
    {"alter table t add column x int", W, "AlterTableStmt"},
    {"create index on t (x)", W, "IndexStmt"},
    {"create table t2 as select * from t", W, "CREATE TABLE AS"},
    {"truncate t", W, "TRUNCATE"},
    {"lock table t in access exclusive mode", W, "LOCK"},
    {"listen chan", W, "LISTEN"},
    {"unlisten *", W, "UNLISTEN"},
    {"notify chan, 'x'", W, "NOTIFY"},
    {"prepare q as select 1", W, "PREPARE"},
    {"execute q(1)", W, "EXECUTE"},
    {"deallocate all", W, "DEALLOCATE"},
    {"vacuum t", W, "VACUUM"},
    {"analyze t", W, "ANALYZE"},
    {"discard all", W, "DISCARD"},
    {"declare c cursor for select 1", W, "DECLARE CURSOR"},
    {"fetch 10 from c", W, "FETCH"},
    {"close c", W, "CLOSE"},
    {"checkpoint", W, "CHECKPOINT"},
    {"refresh materialized view mv", W, "REFRESH MATERIALIZED VIEW"},
    {"grant select on t to u", W, "GRANT/REVOKE"},
    {"prepare transaction 'x'", W, "PREPARE TRANSACTION"},
    {"commit prepared 'x'", W, "COMMIT PREPARED"},
    // One write makes the string a write; the reason names it.
    {"select 1; insert into t values (1)", W, "INSERT"},
    {"insert into t values (1); select 1", W, "INSERT"},
    {"select 1; select nextval('s'); delete from t", W, "nextval() writes"},
    {"begin; update t set x = 1; commit", W, "UPDATE"},
    // Anything PostgreSQL would reject.
    {"selec 1", W, "parse error: treated as write"},
    {"select * from", W, "parse error: treated as write"},
    {"select 'unterminated", W, "parse error: treated as write"},
    {"select 1 /* unterminated comment", W, "parse error: treated as write"},
    {"select 1; selec 2", W, "parse error: treated as write"},
    {"select $", W, "parse error: treated as write"},
};

}  // namespace

TEST_CASE("each statement in the table gets its verdict") {
  for (const Case& c : kCases) {
    const std::string sql(c.sql);
    CAPTURE(sql);
    const Classification got = classify_sql(c.sql);
    CHECK(got.kind == c.kind);
    if (!c.reason.empty()) CHECK(got.reason == std::string(c.reason));
    CHECK_FALSE(got.reason.empty());
  }
}

TEST_CASE("text after a NUL byte cannot make a string read") {
  constexpr std::string_view sql("select 1\0; delete from t", 24);
  const Classification got = classify_sql(sql);
  CHECK(got.kind == W);
  CHECK(got.reason == "NUL byte in query: treated as write");
  CHECK(classify_sql(std::string_view("\0", 1)).kind == W);
}

TEST_CASE("a plain SELECT sets no flags") {
  const Classification got = classify_sql("select 1");
  CHECK_FALSE(got.transaction_control);
  CHECK_FALSE(got.begins_read_only);
  CHECK_FALSE(got.sets_transaction_read_only);
  CHECK_FALSE(got.sets_default_read_only.has_value());
  CHECK_FALSE(got.resets_default_read_only);
  CHECK_FALSE(classify_sql("show default_transaction_read_only").sets_default_read_only);
}

TEST_CASE("BEGIN and START TRANSACTION report READ ONLY, the last mode winning") {
  struct Begin {
    std::string_view sql;
    StatementKind kind;
    bool read_only;
    std::string_view reason;
  };
  // A hot standby refuses READ WRITE and SERIALIZABLE (even READ ONLY SERIALIZABLE):
  // those transactions need the primary, so they are Write. begins_read_only still
  // reports the transaction's mode.
  constexpr Begin kBegins[] = {
      {"BEGIN READ ONLY", R, true, "BEGIN"},
      {"begin transaction read only", R, true, "BEGIN"},
      {"start transaction isolation level repeatable read, read only", R, true,
       "START TRANSACTION"},
      {"START TRANSACTION READ ONLY DEFERRABLE", R, true, "START TRANSACTION"},
      {"begin", R, false, "BEGIN"},
      {"begin isolation level read committed", R, false, "BEGIN"},
      {"begin read write", W, false, "BEGIN READ WRITE"},
      {"start transaction read write", W, false, "START TRANSACTION READ WRITE"},
      {"begin read only, read write", W, false, "BEGIN READ WRITE"},
      {"begin isolation level serializable", W, false, "BEGIN ISOLATION LEVEL SERIALIZABLE"},
      {"begin isolation level serializable, read only, deferrable", W, true,
       "BEGIN ISOLATION LEVEL SERIALIZABLE"},
      // The server applies each mode in turn: a later one does not undo the refusal.
      {"begin read write, read only", W, true, "BEGIN READ WRITE"},
      {"begin isolation level serializable, isolation level repeatable read, read only", W,
       true, "BEGIN ISOLATION LEVEL SERIALIZABLE"},
  };
  for (const Begin& b : kBegins) {
    const std::string sql(b.sql);
    CAPTURE(sql);
    const Classification got = classify_sql(b.sql);
    CHECK(got.kind == b.kind);
    CHECK(got.reason == std::string(b.reason));
    CHECK(got.transaction_control);
    CHECK(got.begins_read_only == b.read_only);
  }
}

TEST_CASE("the other transaction statements are transaction control") {
  for (std::string_view sql : {"commit", "end", "rollback", "abort", "commit and chain",
                               "savepoint a", "release savepoint a", "rollback to savepoint a"}) {
    CAPTURE(std::string(sql));
    const Classification got = classify_sql(sql);
    CHECK(got.kind == R);
    CHECK(got.transaction_control);
    CHECK_FALSE(got.begins_read_only);
  }
  for (std::string_view sql : {"prepare transaction 'g'", "commit prepared 'g'",
                               "rollback prepared 'g'"}) {
    CAPTURE(std::string(sql));
    const Classification got = classify_sql(sql);
    CHECK(got.kind == W);  // two-phase commit cannot run on a standby
    CHECK(got.transaction_control);
  }
}

TEST_CASE("SET TRANSACTION and transaction_read_only shape the current transaction") {
  Classification got = classify_sql("SET TRANSACTION READ ONLY");
  CHECK(got.kind == R);
  CHECK(got.transaction_control);
  CHECK(got.sets_transaction_read_only);
  CHECK(got.reason == "SET TRANSACTION");
  CHECK_FALSE(got.sets_default_read_only.has_value());

  got = classify_sql("set transaction isolation level repeatable read");
  CHECK(got.kind == R);
  CHECK(got.transaction_control);
  CHECK_FALSE(got.sets_transaction_read_only);

  // Modes a hot standby refuses.
  got = classify_sql("set transaction read write");
  CHECK(got.kind == W);
  CHECK(got.reason == "SET TRANSACTION READ WRITE");
  CHECK(got.transaction_control);
  CHECK_FALSE(got.sets_transaction_read_only);
  got = classify_sql("set transaction isolation level serializable, read only");
  CHECK(got.kind == W);
  CHECK(got.reason == "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
  CHECK(got.sets_transaction_read_only);

  got = classify_sql("set transaction_read_only = on");
  CHECK(got.kind == R);
  CHECK(got.transaction_control);
  CHECK(got.sets_transaction_read_only);
  CHECK(classify_sql("SET LOCAL transaction_read_only TO true").sets_transaction_read_only);
  got = classify_sql("set local transaction_read_only to off");
  CHECK(got.kind == W);
  CHECK(got.reason == "SET transaction_read_only = off");
  CHECK(got.transaction_control);
  CHECK_FALSE(got.sets_transaction_read_only);
  got = classify_sql("set transaction_read_only = maybe");
  CHECK(got.kind == W);
  CHECK_FALSE(got.sets_transaction_read_only);
}

TEST_CASE("SET default_transaction_read_only reports the value it sets") {
  struct Set {
    std::string_view sql;
    std::optional<bool> value;
  };
  const Set kSets[] = {
      {"set default_transaction_read_only = on", true},
      {"SET default_transaction_read_only TO off", false},
      {"set default_transaction_read_only = true", true},
      {"set default_transaction_read_only = 'false'", false},
      {"set default_transaction_read_only = yes", true},
      {"set default_transaction_read_only = n", false},
      {"set default_transaction_read_only = 1", true},
      {"set default_transaction_read_only = 0", false},
      {"set default_transaction_read_only = 'T'", true},
      {"set default_transaction_read_only = 'OFF'", false},
      {"set default_transaction_read_only = TRUE", true},
      {"set session default_transaction_read_only to on", true},
      {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", true},
      {"set session characteristics as transaction isolation level serializable, read write",
       false},
      // The server rejects these, so they change nothing.
      {"set default_transaction_read_only = maybe", std::nullopt},
      {"set default_transaction_read_only = 2", std::nullopt},
      {"set default_transaction_read_only = 'o'", std::nullopt},
      {"set default_transaction_read_only = on, off", std::nullopt},
      // Lasts only until the current transaction ends.
      {"set local default_transaction_read_only = on", std::nullopt},
      {"set session characteristics as transaction isolation level serializable",
       std::nullopt},
  };
  for (const Set& s : kSets) {
    const std::string sql(s.sql);
    CAPTURE(sql);
    const Classification got = classify_sql(s.sql);
    CHECK(got.kind == W);  // session state: the pool has to track it
    CHECK(got.sets_default_read_only == s.value);
    CHECK_FALSE(got.resets_default_read_only);
    CHECK_FALSE(got.sets_transaction_read_only);
    CHECK_FALSE(got.transaction_control);
  }
}

TEST_CASE("RESET, SET TO DEFAULT, RESET ALL and DISCARD ALL reset default_transaction_read_only") {
  for (std::string_view sql : {"reset default_transaction_read_only",
                               "set default_transaction_read_only to default",
                               "SET default_transaction_read_only = DEFAULT", "reset all",
                               "discard all"}) {
    CAPTURE(std::string(sql));
    const Classification got = classify_sql(sql);
    CHECK(got.kind == W);
    CHECK(got.resets_default_read_only);
    CHECK_FALSE(got.sets_default_read_only.has_value());
  }
  CHECK_FALSE(classify_sql("reset search_path").resets_default_read_only);
  CHECK_FALSE(classify_sql("discard plans").resets_default_read_only);
  CHECK_FALSE(classify_sql("set local default_transaction_read_only to default")
                  .resets_default_read_only);
}

TEST_CASE("in a multi-statement string the last change to the default wins") {
  Classification got = classify_sql(
      "set default_transaction_read_only = on; reset default_transaction_read_only");
  CHECK(got.resets_default_read_only);
  CHECK_FALSE(got.sets_default_read_only.has_value());

  got = classify_sql("reset all; set default_transaction_read_only = on");
  CHECK_FALSE(got.resets_default_read_only);
  CHECK(got.sets_default_read_only == true);

  got = classify_sql(
      "set default_transaction_read_only = on; set default_transaction_read_only = off");
  CHECK(got.sets_default_read_only == false);
}

TEST_CASE("a whole read-only transaction in one string is Read with its flags") {
  const Classification got = classify_sql("BEGIN READ ONLY; SELECT * FROM t; COMMIT");
  CHECK(got.kind == R);
  CHECK(got.reason == "BEGIN");
  CHECK(got.transaction_control);
  CHECK(got.begins_read_only);

  const Classification write = classify_sql("begin; select 1 for update; commit");
  CHECK(write.kind == W);
  CHECK(write.reason == "SELECT ... FOR UPDATE");
  CHECK(write.transaction_control);
}

TEST_CASE("prepared statement text with $n parameters classifies like any other") {
  CHECK(classify_sql("select * from sessions where token = $1 and expires_at > $2").kind == R);
  CHECK(classify_sql("update sessions set seen_at = $2 where token = $1").kind == W);
  CHECK(classify_sql("select $1::int + $2").kind == R);
  CHECK(classify_sql("select nextval($1)").kind == W);
}

TEST_CASE("nesting deeper than the parse tree reader allows is a write") {
  std::string deep = "select ";
  for (int i = 0; i < 2000; ++i) deep += "array[";
  deep += "1";
  for (int i = 0; i < 2000; ++i) deep += "]";
  const Classification got = classify_sql(deep);
  CHECK(got.kind == W);

  // Beyond the grammar's own stack limit: a parse error, not a crash.
  std::string deeper = "select ";
  deeper.append(20000, '(');
  deeper += "1";
  deeper.append(20000, ')');
  CHECK(classify_sql(deeper).kind == W);

  std::string nested_ok = "select ";
  nested_ok.append(50, '(');
  nested_ok += "1";
  nested_ok.append(50, ')');
  CHECK(classify_sql(nested_ok).kind == R);
}

TEST_CASE("a large statement classifies, and the next one still does") {
  std::string big = "select 1 where 'x' in (";
  for (int i = 0; i < 20000; ++i) big += "'value', ";
  big += "'last')";
  CHECK(classify_sql(big).kind == R);
  big += " for update";
  CHECK(classify_sql(big).kind == W);
  CHECK(classify_sql("select 1").kind == R);
}

TEST_CASE("classify_sql can run on several threads at once") {
  auto work = [](bool& ok) {
    ok = true;
    for (int i = 0; i < 200; ++i) {
      ok = ok && classify_sql("select * from t where id = $1").kind == R;
      ok = ok && classify_sql("select * from t for update").kind == W;
      ok = ok && classify_sql("selec").kind == W;
    }
  };
  bool ok_a = false;
  bool ok_b = false;
  std::thread a(work, std::ref(ok_a));
  std::thread b(work, std::ref(ok_b));
  a.join();
  b.join();
  CHECK(ok_a);
  CHECK(ok_b);
}

TEST_CASE("a set_config() that outlives the transaction is found in any statement") {
  for (std::string_view sql : {
           "SELECT set_config('statement_timeout', '4321', false)",
           "SELECT 1 AS one, pg_catalog.SET_CONFIG('statement_timeout', '4321', FALSE)",
           "select set_config('search_path', $1, $2)",  // is_local only known when it runs
           "select set_config('a.b', 'c', 'off')",
           "select set_config(new_value => 'c', is_local => false, setting_name => 'a.b')",
           "select set_config(setting_name => 'a.b', new_value => 'c', is_local => 'no')",
           "SELECT * FROM t WHERE x = (SELECT set_config('a.b', 'c', false))",
           "WITH s AS (SELECT set_config('a.b', 'c', false)) SELECT * FROM s",
           "INSERT INTO t VALUES (set_config('a.b', 'c', false))",
           "UPDATE t SET a = set_config('a.b', 'c', false)",
           "CALL p(set_config('a.b', 'c', false))",
           "SELECT 1; SELECT set_config('a.b', 'c', false)",
           "SELECT U&\"\\0073et_config\"('a.b', 'c', false)",
           "SELECT myschema.set_config('a.b', 'c', false)",  // user code that may do the same
           "DO $$ BEGIN PERFORM set_config('a.b', 'c', false); END $$",
       }) {
    CAPTURE(sql);
    const Classification got = classify_sql(sql);
    CHECK(got.sets_session_config);
    CHECK(got.kind == W);
  }
}

TEST_CASE("a transaction-local set_config() and other text do not set a session setting") {
  for (std::string_view sql : {
           "SELECT set_config('statement_timeout', '4321', true)",
           "select set_config('a.b', 'c', 'on')",
           "select set_config(is_local => true, setting_name => 'a.b', new_value => 'c')",
           "SELECT 'set_config(''a'', ''b'', false)'",
           "SELECT current_setting('set_config')",
           "SELECT 1",
           "SET statement_timeout = 5",  // seen in its command tag instead
           "DO $$ BEGIN PERFORM 1; END $$",
       }) {
    CAPTURE(sql);
    CHECK_FALSE(classify_sql(sql).sets_session_config);
  }
}
