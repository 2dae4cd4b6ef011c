// The admin console's switchover commands, without disturbing the cluster:
// - SWITCHOVER checks its target first: a server in recovery (the replica) or one that
//   does not answer (a relay resetting every connection) is refused with a clear error
//   and nothing changes; FORCE switches anyway;
// - PAUSE holds queries, not logins: a new client logs in during the pause, also before
//   any login has cached server parameters, in transaction and session mode, and its
//   query runs at RESUME.
//
// Cost: about 2 s and 1 s per mode.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/failover_fixture.h"
#include "tests/support/fault_relay.h"

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

namespace {

// A write through the proxy: which server took it, or the error.
QueryResult write_port(const ProxyProcess& proxy, const Cluster& cluster) {
  return exec_once(app_conninfo(proxy, cluster),
                   "INSERT INTO failover_admin_check VALUES (1) RETURNING inet_server_port()", 10s);
}

}  // namespace

TEST_CASE("SWITCHOVER refuses a target that is in recovery or does not answer, unless FORCE") {
  Cluster& cluster = Cluster::shared();
  prepare_on_primary(cluster, {"CREATE TABLE IF NOT EXISTS failover_admin_check (x int)"});
  FaultRelay dead(cluster.host(), cluster.primary_port());
  dead.reset();
  ProxyProcess proxy;
  FailoverConfig config;
  config.health_timeout = "500ms";
  config.databases = {FailoverDatabase{}};
  start_failover_proxy(proxy, cluster, config);
  Connection admin = connect_ok(admin_conninfo(proxy));

  const QueryResult to_replica = admin.exec("SWITCHOVER app TO '" + cluster.replica_url() + "'", 10s);
  CHECK_FALSE(to_replica.ok);
  CHECK_MESSAGE(to_replica.sqlstate == "55000", to_replica.describe());
  CHECK_MESSAGE(to_replica.message.find("is in recovery") != std::string::npos, to_replica.describe());
  CHECK_MESSAGE(to_replica.message.find("FORCE") != std::string::npos, to_replica.describe());

  const QueryResult to_dead = admin.exec("SWITCHOVER app TO '" + cluster.url(dead.port()) + "'", 10s);
  CHECK_FALSE(to_dead.ok);
  CHECK_MESSAGE(to_dead.message.find("does not answer") != std::string::npos, to_dead.describe());

  // Nothing changed: writes still go to the primary, nothing is paused.
  QueryResult w = write_port(proxy, cluster);
  REQUIRE_MESSAGE(w.ok, w.describe());
  CHECK(w.value() == std::to_string(cluster.primary_port()));
  Health health;
  CHECK_MESSAGE(wait_health(proxy, "app", cluster.primary_port(), {{"serving_writes", "yes"}, {"paused", "no"}}, 2s,
                            health),
                health.describe());

  // FORCE skips the check: the entry now writes to a replica, which refuses writes.
  const QueryResult forced = admin.exec("SWITCHOVER app TO '" + cluster.replica_url() + "' FORCE", 10s);
  CHECK_MESSAGE(forced.ok, forced.describe());
  w = write_port(proxy, cluster);
  CHECK_MESSAGE(w.sqlstate == "25006", w.describe());
  CHECK(proxy.running());
}

TEST_CASE("PAUSE lets new logins in and holds their queries until RESUME") {
  const std::string mode = each_pool_mode();
  CAPTURE(mode);
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  FailoverConfig config;
  config.query_wait_timeout = "2s";
  FailoverDatabase db;
  db.extra = "mode = \"" + mode + "\"\n";
  config.databases = {db};
  start_failover_proxy(proxy, cluster, config);

  // Paused before any client logged in: no server parameters are cached yet.
  Connection admin = connect_ok(admin_conninfo(proxy));
  REQUIRE(admin.exec("PAUSE app", 5s).ok);
  Connection c = Connection::open(app_conninfo(proxy, cluster), 5s);
  REQUIRE_MESSAGE(c.ok(), "login during PAUSE: ", c.sqlstate(), " ", c.error());

  send_query(c, "SELECT 'held'");
  std::this_thread::sleep_for(300ms);
  PQconsumeInput(c.raw());
  CHECK(PQisBusy(c.raw()) != 0);  // held by the pause
  REQUIRE(admin.exec("RESUME app", 5s).ok);
  std::string message;
  const std::string state = await_query(c.raw(), 5s, &message);
  CHECK_MESSAGE(state.empty(), state, " ", message);
  CHECK(proxy.running());
}
