// ctest: DISTURBS_CLUSTER (the primary is stopped and started again)
//
// Outages that a login must ride out, as a new user meets them:
// - an entry with a primary and no replica, primary restarted for about 4 s, write_wait
//   10 s: a login (transaction mode: from the pool's last server parameters; session mode:
//   it waits like a write) and a write issued during the restart succeed once it is back;
// - the same with a 6 s outage and write_wait 3 s: they fail with 25006 (or class 08)
//   within 3.5 s, not at once and not after the outage;
// - pgsidecar started while the primary is down serves reads from the replica at once.
//
// Cost: about 8 s, 10 s and 4 s.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "tests/integration/failover_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// "app" in transaction mode and "app_session" in session mode, both on the primary alone.
FailoverConfig replica_less(const Cluster& cluster, const std::string& write_wait) {
  FailoverConfig c;
  FailoverDatabase tx;
  tx.primary = cluster.primary_url();
  tx.write_wait = write_wait;
  FailoverDatabase session = tx;
  session.name = "app_session";
  session.extra = "mode = \"session\"\n";
  c.databases = {tx, session};
  return c;
}

struct Attempt {
  Clock::time_point start, end;
  QueryResult result;
  std::string login_error;  // sqlstate and message when the login failed
  double ms() const { return ms_between(start, end); }
  std::string describe() const {
    return std::to_string(static_cast<long long>(ms())) + " ms: " +
           (login_error.empty() ? result.describe() : "login failed: " + login_error);
  }
};

// A new login, then a write, through the proxy: as one application request.
Attempt login_and_write(const std::string& conninfo, const std::string& id) {
  Attempt a;
  a.start = Clock::now();
  Connection c = Connection::open(conninfo, 20s);
  if (!c.ok()) {
    a.end = Clock::now();
    a.login_error = c.sqlstate() + " " + c.error();
    a.result.sqlstate = c.sqlstate();
    return a;
  }
  a.result = c.exec("INSERT INTO failover_restart (id) VALUES ('" + id + "')", 20s);
  a.end = Clock::now();
  return a;
}

}  // namespace

TEST_CASE("a replica-less primary restarting: logins and writes wait write_wait for it") {
  Cluster& cluster = Cluster::shared();
  ResetOnExit reset(cluster);
  prepare_on_primary(cluster, {"CREATE TABLE IF NOT EXISTS failover_restart (id text PRIMARY KEY)"});
  const std::string run = std::to_string(Clock::now().time_since_epoch().count());

  SUBCASE("a 4 s restart within write_wait 10 s: they succeed after it") {
    ProxyProcess proxy;
    start_failover_proxy(proxy, cluster, replica_less(cluster, "10s"));
    {  // the transaction-mode pool has logged in once: its parameters are known
      Connection warm = connect_ok(app_conninfo(proxy, cluster));
      REQUIRE(warm.exec("SELECT 1").ok);
    }
    cluster.stop_primary();
    const auto stopped = Clock::now();
    auto tx = std::async(std::launch::async, [&] {
      return login_and_write(app_conninfo(proxy, cluster), run + "-tx");
    });
    auto session = std::async(std::launch::async, [&] {
      return login_and_write(app_conninfo(proxy, cluster, "app_session"), run + "-session");
    });
    std::this_thread::sleep_until(stopped + 4s);
    cluster.start_primary();
    const Attempt t = tx.get();
    const Attempt s = session.get();
    CHECK_MESSAGE(t.result.ok, "transaction mode: ", t.describe());
    CHECK_MESSAGE(s.result.ok, "session mode: ", s.describe());
  }

  SUBCASE("a 6 s outage beyond write_wait 3 s: they fail with 25006 or class 08 within 3.5 s") {
    ProxyProcess proxy;
    start_failover_proxy(proxy, cluster, replica_less(cluster, "3s"));
    {
      Connection warm = connect_ok(app_conninfo(proxy, cluster));
      REQUIRE(warm.exec("SELECT 1").ok);
    }
    Connection logged_in = connect_ok(app_conninfo(proxy, cluster));
    cluster.stop_primary();
    const auto stopped = Clock::now();
    auto tx = std::async(std::launch::async, [&] {
      return login_and_write(app_conninfo(proxy, cluster), run + "-late-tx");
    });
    auto session = std::async(std::launch::async, [&] {
      return login_and_write(app_conninfo(proxy, cluster, "app_session"), run + "-late-session");
    });
    Attempt existing;
    existing.start = Clock::now();
    existing.result = logged_in.exec("INSERT INTO failover_restart (id) VALUES ('" + run + "-late-existing')", 20s);
    existing.end = Clock::now();
    for (const Attempt* a : {&existing}) {
      CHECK_MESSAGE(!a->result.ok, a->describe());
      CHECK_MESSAGE((a->result.sqlstate == "25006" || is_class(a->result.sqlstate, "08")), a->describe());
      CHECK_MESSAGE(a->ms() <= 3500, a->describe());
    }
    const Attempt t = tx.get();
    const Attempt s = session.get();
    for (const Attempt* a : {&t, &s}) {
      CHECK_MESSAGE(!a->result.ok, a->describe());
      CHECK_MESSAGE((a->result.sqlstate == "25006" || is_class(a->result.sqlstate, "08")), a->describe());
      CHECK_MESSAGE(a->ms() <= 3500, a->describe());
      CHECK_MESSAGE(a->ms() >= 2500, "not refused at once: ", a->describe());
    }
    // The transaction-mode login itself succeeded: only its write failed.
    CHECK_MESSAGE(t.login_error.empty(), t.describe());
    std::this_thread::sleep_until(stopped + 6s);
    cluster.start_primary();
  }
}

TEST_CASE("started while the primary is down, pgsidecar serves reads from the replica at once") {
  Cluster& cluster = Cluster::shared();
  ResetOnExit reset(cluster);
  cluster.stop_primary();
  ProxyProcess proxy;
  FailoverConfig config;
  config.databases = {app_with_replica(cluster)};
  start_failover_proxy(proxy, cluster, config);
  const auto started = Clock::now();
  Connection c = Connection::open(app_conninfo(proxy, cluster), 5s);
  REQUIRE_MESSAGE(c.ok(), c.sqlstate(), " ", c.error());
  const QueryResult r = c.exec("SELECT pg_is_in_recovery()", 5s);
  const double took = ms_between(started, Clock::now());
  REQUIRE_MESSAGE(r.ok, r.describe());
  CHECK(r.value() == "t");
  CHECK_MESSAGE(took < 1000, "the first read took ", took, " ms");
}
