// A pooled server connection that dies while idle must never take a client's request
// down with it. The race, made deterministic: the proxy is stopped (SIGSTOP) while its
// idle backend is terminated and a client sends a query, so that on SIGCONT one loop
// iteration sees the server's goodbye first and the client's query right after. The
// query must run (on a new server connection), not vanish with the client disconnected
// and no error. At a primary crash this is what turns an in-flight read, which should be
// replayed, into a dropped connection.
//
// Only the proxy's own backend is terminated: the cluster is not disturbed.
#include <doctest/doctest.h>

#include <csignal>
#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/failover_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// SIGCONT for the proxy when the test leaves, however it leaves.
class ContinueOnExit {
 public:
  explicit ContinueOnExit(const ProxyProcess& proxy) : proxy_(proxy) {}
  ~ContinueOnExit() { proxy_.signal(SIGCONT); }
  ContinueOnExit(const ContinueOnExit&) = delete;
  ContinueOnExit& operator=(const ContinueOnExit&) = delete;

 private:
  const ProxyProcess& proxy_;
};

void run_case(const Cluster& cluster, const FailoverDatabase& db, const char* sql) {
  ProxyProcess proxy;
  FailoverConfig config;
  config.workers = 1;  // one loop: the dead server and the client meet there
  config.size = 1;
  config.databases = {db};
  start_failover_proxy(proxy, cluster, config);
  Connection app = connect_ok(app_conninfo(proxy, cluster));
  // The pool's only server connection, idle after this.
  const QueryResult pid = app.exec("SELECT pg_backend_pid()");
  REQUIRE_MESSAGE(pid.ok, pid.describe());
  // Whichever server the query ran on, terminate that backend.
  const QueryResult where = app.exec("SELECT inet_server_port()");
  REQUIRE_MESSAGE(where.ok, where.describe());
  Connection super = connect_ok(cluster.superuser_conninfo(std::stoi(where.value()), "postgres"));

  {
    const ContinueOnExit resume(proxy);
    proxy.signal(SIGSTOP);
    const QueryResult killed = super.exec("SELECT pg_terminate_backend(" + pid.value() + ")");
    REQUIRE_MESSAGE(killed.ok, killed.describe());
    REQUIRE(killed.value() == "t");
    std::this_thread::sleep_for(200ms);  // the backend's goodbye reaches the proxy's socket first
    send_query(app, sql);
    std::this_thread::sleep_for(200ms);
  }
  std::string message;
  const std::string state = await_query(app.raw(), 10s, &message);
  INFO("proxy log:\n", proxy.stderr_tail(20));
  CHECK_MESSAGE(state.empty(), "the query failed: ", state, " ", message);
  CHECK(app.ok());
  // And the client goes on.
  const QueryResult next = app.exec("SELECT 41 + 1", 5s);
  CHECK_MESSAGE(next.ok, next.describe());
  CHECK(proxy.running());
}

}  // namespace

TEST_CASE("a request never goes to a pooled server connection that died while idle") {
  Cluster& cluster = Cluster::shared();
  SUBCASE("without replicas") {
    FailoverDatabase db;
    run_case(cluster, db, "SELECT 'after the backend died'");
  }
  SUBCASE("a read, with a replica to replay it on") {
    FailoverDatabase db = app_with_replica(cluster);
    db.reads = "primary";
    run_case(cluster, db, "SELECT 'read after the backend died'");
  }
}
