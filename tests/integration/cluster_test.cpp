// ctest: DISTURBS_CLUSTER (the last test case crashes, promotes and resets servers)
//
// The test cluster itself: replication, read-only standby, SCRAM logins, the test
// helpers' deadlines, and the commands that disturb the servers. Everything else builds
// on these holding.
#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/pg.h"
#include "tests/support/proxy_process.h"

namespace {

using namespace std::chrono_literals;
using pgsidecar::testing::Cluster;
using pgsidecar::testing::Connection;
using pgsidecar::testing::exec_once;
using pgsidecar::testing::QueryResult;
using pgsidecar::testing::ResetOnExit;
using Clock = std::chrono::steady_clock;

std::string random_token() {
  static std::mt19937_64 rng{std::random_device{}()};
  return std::to_string(rng());
}

Connection connect_or_fail(const std::string& conninfo) {
  Connection c = Connection::open(conninfo);
  REQUIRE_MESSAGE(c.ok(), "connecting failed: ", c.sqlstate(), " ", c.error());
  return c;
}

// Polls until sql returns `expected` in its first cell, or the timeout passes.
bool eventually_returns(const std::string& conninfo, const std::string& sql,
                        const std::string& expected, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  do {
    const QueryResult r = exec_once(conninfo, sql, 5s);
    if (r.ok && !r.rows.empty() && r.value() == expected) return true;
    std::this_thread::sleep_for(50ms);
  } while (Clock::now() < deadline);
  return false;
}

void ensure_table(Connection& primary) {
  const QueryResult r =
      primary.exec("CREATE TABLE IF NOT EXISTS harness_check (token text PRIMARY KEY)");
  REQUIRE_MESSAGE(r.ok, r.describe());
}

std::string count_token(const std::string& token) {
  return "SELECT count(*) FROM harness_check WHERE token = '" + token + "'";
}

}  // namespace

TEST_CASE("a row written on the primary is read on the replica") {
  Cluster& cluster = Cluster::shared();
  Connection primary = connect_or_fail(cluster.primary_conninfo());
  ensure_table(primary);
  const std::string token = random_token();
  const QueryResult insert =
      primary.exec_params("INSERT INTO harness_check (token) VALUES ($1)", {token});
  REQUIRE_MESSAGE(insert.ok, insert.describe());
  CHECK(insert.command_tag == "INSERT 0 1");

  CHECK(eventually_returns(cluster.replica_conninfo(), count_token(token), "1", 10s));
  CHECK(cluster.wait_replica_caught_up(10s));
}

TEST_CASE("the replica is a hot standby that refuses writes with SQLSTATE 25006") {
  Cluster& cluster = Cluster::shared();
  Connection replica = connect_or_fail(cluster.replica_conninfo());
  const QueryResult recovery = replica.exec("SELECT pg_is_in_recovery()");
  REQUIRE_MESSAGE(recovery.ok, recovery.describe());
  CHECK(recovery.value() == "t");

  const QueryResult create = replica.exec("CREATE TABLE refused_on_standby (x int)");
  CHECK_MESSAGE(create.sqlstate == "25006", create.describe());
  const QueryResult insert = replica.exec("INSERT INTO harness_check VALUES ('x')");
  CHECK_MESSAGE(insert.sqlstate == "25006", insert.describe());
  // The session survives its error.
  CHECK(replica.exec("SELECT 1").value() == "1");

  Connection primary = connect_or_fail(cluster.primary_conninfo());
  CHECK(primary.exec("SELECT pg_is_in_recovery()").value() == "f");
}

TEST_CASE("logins use SCRAM-SHA-256 and a wrong password fails with 28P01") {
  Cluster& cluster = Cluster::shared();
  Connection app = connect_or_fail(cluster.primary_conninfo());
  CHECK(app.exec("SELECT current_user").value() == cluster.app_user());
  CHECK(app.exec("SHOW password_encryption").value() == "scram-sha-256");

  Connection super = connect_or_fail(cluster.superuser_conninfo(cluster.primary_port()));
  const QueryResult verifier = super.exec_params(
      "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = $1", {cluster.app_user()});
  CHECK(verifier.value() == "SCRAM-SHA-256$");
  CHECK(super.exec("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").value() == "t");

  for (const int port : {cluster.primary_port(), cluster.replica_port()}) {
    CAPTURE(port);
    const std::string conninfo = port == cluster.primary_port()
                                     ? cluster.primary_conninfo({}, "wrong-password")
                                     : cluster.replica_conninfo({}, "wrong-password");
    const Connection wrong = Connection::open(conninfo);
    CHECK_FALSE(wrong.ok());
    CHECK_MESSAGE(wrong.sqlstate() == "28P01", wrong.error());
  }
  const Connection unknown_user =
      Connection::open(cluster.primary_conninfo("no_such_user", "whatever"));
  CHECK_MESSAGE(unknown_user.sqlstate() == "28P01", unknown_user.error());
  const Connection unknown_db =
      Connection::open(cluster.primary_conninfo({}, {}, "no_such_database"));
  CHECK_MESSAGE(unknown_db.sqlstate() == "3D000", unknown_db.error());
}

TEST_CASE("the test helpers bound every wait") {
  Cluster& cluster = Cluster::shared();

  SUBCASE("a closed port fails the connection at once with 08001") {
    const int closed =
        pgsidecar::testing::pick_free_port({cluster.primary_port(), cluster.replica_port()});
    const auto started = Clock::now();
    const Connection c =
        Connection::open(pgsidecar::testing::make_conninfo({{"host", "127.0.0.1"},
                                                            {"port", std::to_string(closed)},
                                                            {"user", "app"},
                                                            {"dbname", "app"}}),
                         2s);
    CHECK_FALSE(c.ok());
    CHECK(c.sqlstate() == pgsidecar::testing::kNoServerSqlState);
    CHECK(Clock::now() - started < 2s);
  }

  SUBCASE("a statement past its deadline is cancelled and reported as 57014") {
    Connection c = connect_or_fail(cluster.primary_conninfo());
    const auto started = Clock::now();
    const QueryResult r = c.exec("SELECT pg_sleep(20)", 300ms);
    CHECK(r.timed_out);
    CHECK_FALSE(r.ok);
    CHECK(r.sqlstate == pgsidecar::testing::kTimedOutSqlState);
    CHECK(Clock::now() - started < 6s);
    // The server answered the cancel request, so the connection is still usable.
    REQUIRE(c.ok());
    CHECK(c.exec("SELECT 2").value() == "2");
  }

  SUBCASE("results carry rows, NULLs, parameters and the first error") {
    Connection c = connect_or_fail(cluster.primary_conninfo());
    const QueryResult rows = c.exec_params(
        "SELECT x, CASE WHEN x = 2 THEN NULL ELSE $1 || x END AS label "
        "FROM generate_series(1, 3) AS x",
        {"row "});
    REQUIRE_MESSAGE(rows.ok, rows.describe());
    CHECK(rows.columns == std::vector<std::string>{"x", "label"});
    REQUIRE(rows.rows.size() == 3);
    CHECK(rows.value(0, 1) == "row 1");
    CHECK(rows.is_null(1, 1));
    CHECK_FALSE(rows.is_null(2, 1));
    CHECK_THROWS_AS(rows.value(3, 0), std::out_of_range);

    const QueryResult multi = c.exec("SELECT 1; SELECT 1/0; SELECT 3");
    CHECK(multi.sqlstate == "22012");
    CHECK(c.exec("SELECT 4").value() == "4");

    const QueryResult copy = c.exec("COPY (SELECT 'a' UNION ALL SELECT 'b') TO STDOUT");
    REQUIRE_MESSAGE(copy.ok, copy.describe());
    CHECK(copy.command_tag == "COPY 2");
    CHECK(copy.rows == std::vector<std::vector<std::string>>{{"a"}, {"b"}});

    REQUIRE(c.exec("CREATE TEMP TABLE copy_target (x int)").ok);
    const QueryResult copy_in = c.exec("COPY copy_target FROM STDIN");
    CHECK_FALSE(copy_in.ok);
    CHECK_FALSE(copy_in.timed_out);
    CHECK_MESSAGE(copy_in.message.find("not supported by the test helper") != std::string::npos,
                  copy_in.describe());
    CHECK(c.exec("SELECT 5").value() == "5");
  }

  SUBCASE("a server that goes away mid-session gives 08006 or its own FATAL") {
    Connection victim = connect_or_fail(cluster.primary_conninfo());
    Connection super = connect_or_fail(cluster.superuser_conninfo(cluster.primary_port()));
    const QueryResult killed =
        super.exec("SELECT pg_terminate_backend(" + std::to_string(victim.backend_pid()) + ")");
    REQUIRE_MESSAGE(killed.ok, killed.describe());
    const QueryResult after = victim.exec("SELECT 1", 5s);
    CHECK_FALSE(after.ok);
    // Terminated backends send FATAL 57P01 first; libpq may read it or only the close.
    CHECK_MESSAGE((after.sqlstate == "57P01" || after.sqlstate == "08006"), after.describe());
    CHECK_FALSE(victim.ok());
  }
}

TEST_CASE("the harness crashes, restarts and promotes servers, and resets the topology") {
  Cluster& cluster = Cluster::shared();
  const ResetOnExit reset_at_end(cluster);
  const std::string kept = random_token();
  {
    Connection primary = connect_or_fail(cluster.primary_conninfo());
    ensure_table(primary);
    const QueryResult r = primary.exec_params("INSERT INTO harness_check VALUES ($1)", {kept});
    REQUIRE_MESSAGE(r.ok, r.describe());
  }
  REQUIRE(cluster.wait_replica_caught_up(10s));

  // An acknowledged commit survives an immediate (crash-like) stop.
  cluster.kill_primary();
  const QueryResult down = exec_once(cluster.primary_conninfo(), "SELECT 1", 3s);
  CHECK_MESSAGE(down.sqlstate == pgsidecar::testing::kNoServerSqlState, down.describe());
  CHECK(exec_once(cluster.replica_conninfo(), count_token(kept)).value() == "1");
  cluster.start_primary();
  CHECK(exec_once(cluster.primary_conninfo(), count_token(kept)).value() == "1");

  // Promotion turns the standby into a writable primary.
  cluster.kill_primary();
  cluster.promote_replica();
  const std::string lost = random_token();
  const QueryResult promoted_write =
      exec_once(cluster.replica_conninfo(), "INSERT INTO harness_check VALUES ('" + lost + "')");
  CHECK_MESSAGE(promoted_write.ok, promoted_write.describe());

  // reset() restores the starting topology: the replica is a fresh clone of the primary.
  cluster.reset();
  CHECK(exec_once(cluster.primary_conninfo(), "SELECT pg_is_in_recovery()").value() == "f");
  CHECK(exec_once(cluster.replica_conninfo(), "SELECT pg_is_in_recovery()").value() == "t");
  CHECK(exec_once(cluster.replica_conninfo(), count_token(lost)).value() == "0");
  CHECK(exec_once(cluster.replica_conninfo(), count_token(kept)).value() == "1");
  CHECK(cluster.wait_replica_caught_up(10s));
}
