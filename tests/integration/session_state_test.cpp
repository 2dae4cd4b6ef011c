// Session state in transaction mode (docs/pooling.md): session SETs follow their client
// onto every server it uses, and are undone when their transaction rolls back; RESET
// returns to the client's startup value; a temporary table pins its client to its server
// until DISCARD TEMP; with session_state = "refuse" the creating statement fails with
// 0A000 and the connection goes on.
//
// A pool of two servers on one worker, and a second client that holds one of them in a
// transaction every other step, so the client under test keeps changing servers.

#include <doctest/doctest.h>

#include <set>
#include <string>

#include "tests/integration/proxy_fixture.h"

namespace {

using namespace pgsidecar::testing;

struct Churn {
  Connection holder;
  int step = 0;
  // Every other call, holds a server inside a transaction; else lets it go.
  void next() {
    const std::string sql = (step++ % 2 == 0) ? "BEGIN; SELECT 1" : "COMMIT";
    const QueryResult r = holder.exec(sql);
    REQUIRE_MESSAGE(r.ok, r.describe());
  }
};

// Runs `sql`, which must succeed; its first value, or "" when it returns no rows.
std::string one(Connection& c, const std::string& sql) {
  const QueryResult r = c.exec(sql);
  REQUIRE_MESSAGE(r.ok, sql, ": ", r.describe());
  return r.rows.empty() ? std::string() : r.value();
}

ProxyConfig two_servers(const std::string& extra = "") {
  ProxyConfig config = pool_config("transaction", 2);
  config.workers = 1;
  config.pool_extra = extra;
  return config;
}

}  // namespace

TEST_CASE("session SETs follow their client across servers, never another client, and a rollback undoes them") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, two_servers());
  const std::string base = app_conninfo(proxy, cluster);
  Connection a = connect_ok(base);
  Connection other = connect_ok(base);
  Churn churn{connect_ok(base)};

  one(a, "SET statement_timeout = '1234ms'");
  one(a, "SET search_path = public, pg_catalog");
  one(a, "SELECT set_config('app.user', 'O''Brien \\', false)");
  one(a, "BEGIN; SET work_mem = '9MB'; ROLLBACK");
  one(a, "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  std::set<std::string> backends;
  for (int i = 0; i < 30; ++i) {
    churn.next();
    const QueryResult r = a.exec(
        "SELECT current_setting('statement_timeout'), current_setting('search_path'), "
        "current_setting('app.user'), current_setting('work_mem'), current_setting('default_transaction_isolation'), "
        "pg_backend_pid()");
    REQUIRE_MESSAGE(r.ok, r.describe());
    CHECK(r.value(0, 0) == "1234ms");
    CHECK(r.value(0, 1) == "public, pg_catalog");
    CHECK(r.value(0, 2) == "O'Brien \\");
    CHECK(r.value(0, 3) == "4MB");
    CHECK(r.value(0, 4) == "repeatable read");
    backends.insert(r.value(0, 5));
    CHECK(one(other, "SHOW statement_timeout") == "0");
  }
  CHECK(backends.size() == 2);  // it did change servers

  // RESET: back to the server's default (this client gave none at startup), everywhere.
  one(a, "RESET statement_timeout");
  for (int i = 0; i < 4; ++i) {
    churn.next();
    CHECK(one(a, "SHOW statement_timeout") == "0");
  }
}

TEST_CASE("RESET and RESET ALL return to the client's startup value, in transaction and session mode") {
  Cluster& cluster = Cluster::shared();
  for (const char* mode : {"transaction", "session"}) {
    INFO("mode ", mode);
    ProxyProcess proxy;
    ProxyConfig config = two_servers();
    config.mode = mode;
    start_proxy(proxy, cluster, config);
    const std::string base = app_conninfo(proxy, cluster);
    Connection a = connect_ok(base + " options='-c statement_timeout=4321' application_name=startup-name");
    Churn churn{connect_ok(base)};
    one(a, "SET statement_timeout = 5");
    one(a, "SET application_name = 'changed'");
    one(a, "RESET statement_timeout");
    churn.next();
    CHECK(one(a, "SHOW statement_timeout") == "4321ms");
    one(a, "SET statement_timeout = 6");
    one(a, "RESET ALL");
    churn.next();
    CHECK(one(a, "SHOW statement_timeout") == "4321ms");
    CHECK(one(a, "SHOW application_name") == "startup-name");
    churn.next();
  }
}

TEST_CASE("a temporary table pins its client to its server until DISCARD TEMP") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, two_servers());
  const std::string base = app_conninfo(proxy, cluster);
  Connection a = connect_ok(base);
  Connection other = connect_ok(base);

  one(a, "CREATE TEMP TABLE pinned_t(a int)");
  const std::string pid = one(a, "SELECT pg_backend_pid()");
  for (int i = 0; i < 30; ++i) {
    one(a, "INSERT INTO pinned_t VALUES (" + std::to_string(i) + ")");
    CHECK(one(a, "SELECT count(*) FROM pinned_t") == std::to_string(i + 1));
    CHECK(one(a, "SELECT pg_backend_pid()") == pid);
    // Another client gets the other server and never sees the table.
    const QueryResult r = other.exec("SELECT count(*) FROM pinned_t");
    CHECK(r.sqlstate == "42P01");
  }
  one(a, "DISCARD TEMP");
  // Released: its server goes back to the pool, and "a" moves between servers again.
  Churn churn{connect_ok(base)};
  std::set<std::string> after;
  for (int i = 0; i < 6; ++i) {
    churn.next();
    after.insert(one(a, "SELECT pg_backend_pid()"));
  }
  CHECK(after.size() == 2);
}

TEST_CASE("session_state = refuse answers state that would pin with 0A000, and the connection goes on") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, two_servers("session_state = \"refuse\""));
  Connection a = connect_ok(app_conninfo(proxy, cluster));

  for (const char* sql : {"CREATE TEMP TABLE t(a int)", "SELECT pg_advisory_lock(7)", "LISTEN ch",
                          "PREPARE p AS SELECT 1", "SELECT 1; DECLARE c CURSOR WITH HOLD FOR SELECT 1"}) {
    INFO(sql);
    const QueryResult r = a.exec(sql);
    CHECK(r.sqlstate == "0A000");
    CHECK(one(a, "SELECT 2") == "2");
    // Inside a transaction the transaction is aborted, as by any error.
    one(a, "BEGIN");
    CHECK(a.exec(sql).sqlstate == "0A000");
    CHECK(a.exec("SELECT 3").sqlstate == "25P02");
    one(a, "ROLLBACK");
  }
  // What does not pin still works.
  one(a, "BEGIN; CREATE TEMP TABLE t(a int) ON COMMIT DROP; SELECT pg_advisory_xact_lock(7); COMMIT");
  CHECK(one(a, "SELECT 4") == "4");
}
