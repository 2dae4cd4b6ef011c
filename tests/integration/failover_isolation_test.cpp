// Workload isolation: two [[databases]] entries on the same servers ("app" and
// "sessions", each with a pool of 2) are separate pools. When "app" is exhausted (two
// clients hold open transactions, a third waits for a server), clients of "sessions"
// are not slowed down at all.
#include <doctest/doctest.h>

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/failover_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// True while the query sent on c has no complete answer yet.
bool still_waiting(Connection& c) {
  PQconsumeInput(c.raw());
  return PQisBusy(c.raw()) != 0;
}

}  // namespace

TEST_CASE("an exhausted pool of one database entry does not slow down another entry on the same servers") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  FailoverConfig config;
  config.query_wait_timeout = "20s";  // the waiting client must still wait at the end
  FailoverDatabase app;
  app.size = 2;
  FailoverDatabase sessions;
  sessions.name = "sessions";
  sessions.size = 2;
  config.databases = {app, sessions};  // both on the cluster's primary, database "app"
  start_failover_proxy(proxy, cluster, config);

  // "app": two clients in open transactions hold both servers.
  std::vector<Connection> holders;
  std::vector<std::string> holder_pids;
  for (int i = 0; i < 2; ++i) {
    holders.push_back(connect_ok(app_conninfo(proxy, cluster, "app")));
    REQUIRE(holders.back().exec("BEGIN").ok);
    const QueryResult pid = holders.back().exec("SELECT pg_backend_pid()");
    REQUIRE_MESSAGE(pid.ok, pid.describe());
    holder_pids.push_back(pid.value());
  }
  CHECK(holder_pids[0] != holder_pids[1]);
  // A third waits for one of them.
  Connection third = connect_ok(app_conninfo(proxy, cluster, "app"));
  send_query(third, "SELECT 'third got a server'");
  std::this_thread::sleep_for(300ms);
  REQUIRE(still_waiting(third));

  // "sessions" works at normal speed meanwhile: logins and queries.
  std::vector<double> latencies;
  for (int client = 0; client < 3; ++client) {
    const auto connecting = Clock::now();
    Connection s = connect_ok(app_conninfo(proxy, cluster, "sessions"), 5s);
    const double login_ms = ms_between(connecting, Clock::now());
    CAPTURE(client);
    CHECK(login_ms < 1000);
    for (int i = 0; i < 20; ++i) {
      const auto sent = Clock::now();
      const QueryResult r = s.exec("SELECT " + std::to_string(i) + ", current_database()", 5s);
      const double ms = ms_between(sent, Clock::now());
      latencies.push_back(ms);
      CAPTURE(i);
      REQUIRE_MESSAGE(r.ok, r.describe());
      CHECK(r.value(0, 0) == std::to_string(i));
      CHECK(r.value(0, 1) == "app");
      CHECK(ms < 200);
    }
    // A transaction on "sessions" too.
    CHECK(s.exec("BEGIN").ok);
    CHECK(s.exec("SELECT 1").ok);
    CHECK(s.exec("COMMIT").ok);
  }
  MESSAGE("sessions: ", latencies.size(), " queries, slowest ", *std::max_element(latencies.begin(), latencies.end()),
          " ms");

  // "app" is still exhausted: the third client is still waiting, and both holders keep
  // their own servers.
  CHECK(still_waiting(third));
  for (std::size_t i = 0; i < holders.size(); ++i) {
    const QueryResult pid = holders[i].exec("SELECT pg_backend_pid()");
    REQUIRE_MESSAGE(pid.ok, pid.describe());
    CHECK(pid.value() == holder_pids[i]);
  }

  // One holder commits: the waiting client gets its server at once.
  const auto committed = Clock::now();
  REQUIRE(holders[0].exec("COMMIT").ok);
  std::string message;
  const std::string state = await_query(third.raw(), 5s, &message);
  CHECK_MESSAGE(state.empty(), state, " ", message);
  CHECK(ms_between(committed, Clock::now()) < 1000);
  CHECK(third.exec("SELECT 2").value() == "2");
  REQUIRE(holders[1].exec("COMMIT").ok);
  CHECK(proxy.running());
}
