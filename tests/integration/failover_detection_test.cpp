// How pgsidecar notices a server that does not answer, one mechanism at a time:
// - suspect_after: with probes 30 s apart, a read the hung primary does not answer has it
//   probed at once, declared down after timeout x failures_before_down, and the read is
//   replayed on the replica well within the client's 5 s (without suspect_after it would
//   wait for the next probe, 30 s later);
// - query_timeout: a request running past it gets FATAL 57014, its server connection is
//   abandoned, and the pool (one server) serves the next client at once;
// - a database created after pgsidecar started (its probes failing with 3D000) is found
//   by the first login, which has it probed at once, not at the next periodic probe.
// The fault relay stalls the primary; the cluster itself is never disturbed.
//
// Cost: about 3 s, 1 s and 2 s.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "tests/integration/failover_fixture.h"
#include "tests/support/fault_relay.h"

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

TEST_CASE("suspect_after: a request the primary does not answer has it probed and declared down at once") {
  Cluster& cluster = Cluster::shared();
  FaultRelay relay(cluster.host(), cluster.primary_port());
  ProxyProcess proxy;
  FailoverConfig config;
  config.health_interval = "30s";  // no periodic probe during the test
  config.health_timeout = "500ms";
  config.suspect_after = "200ms";
  FailoverDatabase db = app_with_replica(cluster);
  db.primary = cluster.url(relay.port());
  db.write_wait = "1s";
  config.databases = {db};
  start_failover_proxy(proxy, cluster, config);
  Health health;
  REQUIRE_MESSAGE(wait_health(proxy, "app", relay.port(), {{"health", "up"}, {"serving_writes", "yes"}}, 5s, health),
                  health.describe());

  Connection c = connect_ok(app_conninfo(proxy, cluster));
  const QueryResult before = c.exec("SELECT inet_server_port()", 5s);
  REQUIRE_MESSAGE(before.ok, before.describe());
  CHECK(before.value() == std::to_string(cluster.primary_port()));  // reads = "primary"

  relay.stall();
  const QueryResult during = c.exec("SELECT inet_server_port()", 5s);
  CHECK_MESSAGE(during.ok, during.describe());
  if (during.ok) CHECK(during.value() == std::to_string(cluster.replica_port()));
  CHECK_MESSAGE(wait_health(proxy, "app", relay.port(), {{"health", "down"}}, 1s, health), health.describe());
  relay.pass();
}

TEST_CASE("query_timeout: a request running past it gets 57014 and its server is abandoned, the pool goes on") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  FailoverConfig config;
  config.query_wait_timeout = "3s";
  FailoverDatabase db;
  db.size = 1;  // the abandoned server must not keep the only slot
  db.extra = "query_timeout = \"500ms\"\n";
  config.databases = {db};
  start_failover_proxy(proxy, cluster, config);

  Connection slow = connect_ok(app_conninfo(proxy, cluster));
  const QueryResult r = slow.exec("SELECT pg_sleep(4)", 3s);
  CHECK_MESSAGE(r.sqlstate == "57014", r.describe());
  CHECK_MESSAGE(r.message.find("query_timeout") != std::string::npos, r.describe());
  CHECK_MESSAGE(!r.timed_out, r.describe());
  CHECK(PQstatus(slow.raw()) == CONNECTION_BAD);  // FATAL: the client is closed with it

  // The pool's one slot is free again: the next client gets a new server at once.
  Connection next = connect_ok(app_conninfo(proxy, cluster));
  const QueryResult after = next.exec("SELECT 'served'", 3s);
  CHECK_MESSAGE(after.ok, after.describe());
  if (after.ok) CHECK(after.value() == "served");
  CHECK(proxy.running());
}

TEST_CASE("a database created after pgsidecar started is found by the first login, not at the next probe") {
  Cluster& cluster = Cluster::shared();
  const std::string dbname = "failover_late_" + random_suffix();
  const std::string super = cluster.superuser_conninfo(cluster.primary_port(), "postgres");
  ProxyProcess proxy;
  FailoverConfig config;
  config.health_interval = "30s";  // once down, the next periodic probe is 30 s away
  FailoverDatabase db;
  db.name = "late";
  db.primary = "postgres://" + cluster.host() + ":" + std::to_string(cluster.primary_port()) + "/" + dbname;
  db.write_wait = "5s";
  config.databases = {db};
  start_failover_proxy(proxy, cluster, config);
  Health health;
  REQUIRE_MESSAGE(wait_health(proxy, "late", cluster.primary_port(), {{"health", "down"}}, 5s, health),
                  health.describe());
  CHECK(health.server("late", cluster.primary_port())->at("last_error").find("does not exist") != std::string::npos);

  const QueryResult created = exec_once(super, "CREATE DATABASE " + dbname + " OWNER " + cluster.app_user());
  REQUIRE_MESSAGE(created.ok, created.describe());
  {
    // The login waits (write_wait 5 s) and has the server probed at once.
    Connection c = Connection::open(app_conninfo(proxy, cluster, "late"), 4s);
    CHECK_MESSAGE(c.ok(), c.sqlstate(), " ", c.error());
    if (c.ok()) CHECK(c.exec("SELECT current_database()", 3s).value() == dbname);
  }
  proxy.stop();
  CHECK(exec_once(super, "DROP DATABASE " + dbname + " WITH (FORCE)").ok);
}
