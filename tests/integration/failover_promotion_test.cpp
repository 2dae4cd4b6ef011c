// ctest: DISTURBS_CLUSTER (kills the primary, promotes the replica, then resets)
//
// Promotion: the primary dies and the replica is promoted. pgsidecar learns roles from
// the servers themselves, so writes move to the promoted replica within a few seconds
// without a config change, and SHOW HEALTH says so. When the old primary comes back it
// also claims to be primary (split brain), on the old timeline: pgsidecar refuses it and
// keeps writing to the promoted one (the newest timeline wins), SHOW HEALTH says why, and a
// sidecar started only then chooses the same.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/failover_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// A write through the proxy that reports which server ran it.
QueryResult write_marker(Connection& c, const std::string& token) {
  return c.exec("INSERT INTO failover_promotion (token) VALUES ('" + token + "') RETURNING inet_server_port()", 10s);
}

}  // namespace

TEST_CASE("after the replica is promoted writes go to it, and the old primary coming back is refused") {
  Cluster& cluster = Cluster::shared();
  const ResetOnExit reset_at_end(cluster);
  prepare_on_primary(cluster, {"CREATE TABLE IF NOT EXISTS failover_promotion (token text PRIMARY KEY)"});

  ProxyProcess proxy;
  FailoverConfig config;
  FailoverDatabase db = app_with_replica(cluster);
  db.write_wait = "2s";
  config.databases = {db};
  start_failover_proxy(proxy, cluster, config);
  Health health;
  REQUIRE_MESSAGE(wait_health(proxy, "app", cluster.replica_port(), {{"health", "up"}, {"role", "replica"}}, 10s,
                              health),
                  health.describe());

  const std::string primary_port = std::to_string(cluster.primary_port());
  const std::string replica_port = std::to_string(cluster.replica_port());
  Connection app = connect_ok(app_conninfo(proxy, cluster));
  const std::string run = "promotion-" + random_suffix();
  {
    const QueryResult r = write_marker(app, run + "-before");
    REQUIRE_MESSAGE(r.ok, r.describe());
    CHECK(r.value() == primary_port);
  }

  cluster.kill_primary();
  cluster.promote_replica();
  const auto promoted = Clock::now();

  // Writes resume on the promoted replica through the same client connection. A write
  // that runs into the dead primary fails (class 08, or 25006 once write_wait is over);
  // the connection stays usable for the next one unless it was on the dead server.
  QueryResult resumed;
  int attempts = 0;
  const bool writes_resumed = eventually(
      [&] {
        if (!app.ok()) app = Connection::open(app_conninfo(proxy, cluster), 5s);
        resumed = write_marker(app, run + "-after-" + std::to_string(attempts++));
        return resumed.ok;
      },
      10s, 100ms);
  const double resumed_ms = ms_between(promoted, Clock::now());
  INFO("writes resumed ", resumed_ms, " ms after the promotion, after ", attempts, " attempts; last: ",
       resumed.describe());
  REQUIRE(writes_resumed);
  MESSAGE("writes resumed on the promoted replica ", resumed_ms, " ms after the promotion");
  CHECK(resumed.value() == replica_port);
  CHECK(resumed_ms < 5000);

  REQUIRE_MESSAGE(wait_health(proxy, "app", cluster.replica_port(),
                              {{"role", "primary"}, {"health", "up"}, {"serving_writes", "yes"}, {"refused", "no"}}, 5s,
                              health),
                  health.describe());
  REQUIRE_MESSAGE(wait_health(proxy, "app", cluster.primary_port(), {{"health", "down"}, {"serving_writes", "no"}}, 5s,
                              health),
                  health.describe());

  // The old primary returns with its own timeline and also says it is not in recovery.
  cluster.start_primary();
  {
    const QueryResult direct = exec_once(cluster.primary_conninfo(), "SELECT pg_is_in_recovery()", 10s);
    REQUIRE_MESSAGE(direct.ok, direct.describe());
    REQUIRE(direct.value() == "f");
  }
  CHECK_MESSAGE(wait_health(proxy, "app", cluster.primary_port(),
                            {{"role", "primary"}, {"health", "up"}, {"refused", "yes"}, {"serving_writes", "no"}}, 5s,
                            health),
                health.describe());
  CHECK_MESSAGE(health_matches(health, "app", cluster.replica_port(), {{"serving_writes", "yes"}, {"refused", "no"}}),
                health.describe());
  if (const HealthRow* refused = health.server("app", cluster.primary_port())) {
    CHECK_MESSAGE(refused->at("refused_reason").find("newer timeline") != std::string::npos, health.describe());
    CHECK(refused->at("timeline") == "1");
  }

  // The choice does not depend on history: a sidecar started now, which never saw the old
  // primary go down and does not prefer its configured primary, chooses the same server.
  {
    ProxyProcess second;
    start_failover_proxy(second, cluster, config);
    Health fresh;  // once both servers have been probed
    CHECK_MESSAGE(eventually(
                      [&] {
                        fresh = show_health(second);
                        return health_matches(fresh, "app", cluster.replica_port(),
                                              {{"serving_writes", "yes"}, {"refused", "no"}}) &&
                               health_matches(fresh, "app", cluster.primary_port(),
                                              {{"health", "up"}, {"refused", "yes"}, {"serving_writes", "no"}});
                      },
                      5s, 100ms),
                  fresh.describe());
    Connection via_second = connect_ok(app_conninfo(second, cluster));
    const QueryResult w = write_marker(via_second, run + "-second-sidecar");
    REQUIRE_MESSAGE(w.ok, w.describe());
    CHECK(w.value() == replica_port);
  }

  // Writes (new connections and the old one) keep going to the promoted server, and
  // reads (reads = "primary") follow them.
  for (int i = 0; i < 10; ++i) {
    CAPTURE(i);
    Connection fresh = connect_ok(app_conninfo(proxy, cluster));
    const QueryResult w = write_marker(fresh, run + "-split-" + std::to_string(i));
    REQUIRE_MESSAGE(w.ok, w.describe());
    CHECK(w.value() == replica_port);
    const QueryResult again = write_marker(app, run + "-split-old-conn-" + std::to_string(i));
    REQUIRE_MESSAGE(again.ok, again.describe());
    CHECK(again.value() == replica_port);
    const QueryResult read = fresh.exec("SELECT inet_server_port(), pg_is_in_recovery()", 5s);
    REQUIRE_MESSAGE(read.ok, read.describe());
    CHECK(read.value(0, 0) == replica_port);
    std::this_thread::sleep_for(100ms);
  }
  // Nothing written after the promotion reached the refused server.
  const QueryResult on_old = exec_once(cluster.primary_conninfo(),
                                       "SELECT count(*) FROM failover_promotion WHERE token LIKE '" + run + "-%'", 10s);
  REQUIRE_MESSAGE(on_old.ok, on_old.describe());
  CHECK(on_old.value() == "1");  // only the write from before the kill

  CHECK(proxy.running());
  proxy.stop();
  cluster.reset();
  CHECK(exec_once(cluster.replica_conninfo(), "SELECT pg_is_in_recovery()").value() == "t");
}
