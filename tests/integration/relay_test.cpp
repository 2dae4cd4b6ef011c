// The fault relay in front of the real primary: libpq logs in and queries through it, and
// delay() costs every query a round trip of two delays.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "tests/support/cluster.h"
#include "tests/support/fault_relay.h"
#include "tests/support/pg.h"

namespace {

using namespace std::chrono_literals;
using pgsidecar::testing::Cluster;
using pgsidecar::testing::Connection;
using pgsidecar::testing::FaultRelay;
using pgsidecar::testing::QueryResult;
using Clock = std::chrono::steady_clock;

std::string conninfo_through(const Cluster& cluster, const FaultRelay& relay) {
  const std::string port = std::to_string(relay.port());
  return pgsidecar::testing::make_conninfo({{"host", "127.0.0.1"},
                                            {"port", port},
                                            {"user", cluster.app_user()},
                                            {"password", cluster.app_password()},
                                            {"dbname", cluster.database()}});
}

}  // namespace

TEST_CASE("libpq reaches the primary through the relay, and delay slows each query") {
  Cluster& cluster = Cluster::shared();
  FaultRelay relay(cluster.host(), cluster.primary_port());
  Connection c = Connection::open(conninfo_through(cluster, relay));
  REQUIRE_MESSAGE(c.ok(), "connecting through the relay failed: ", c.sqlstate(), " ", c.error());

  const QueryResult one = c.exec("SELECT 1");
  REQUIRE_MESSAGE(one.ok, one.describe());
  CHECK(one.value() == "1");
  CHECK(c.exec("SELECT pg_is_in_recovery()").value() == "f");

  relay.delay(20ms);
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    const auto started = Clock::now();
    const QueryResult r = c.exec("SELECT 2", 10s);
    const auto took = Clock::now() - started;
    REQUIRE_MESSAGE(r.ok, r.describe());
    CHECK(r.value() == "2");
    CHECK(took >= 40ms);
    CHECK(took < 10s);
  }

  relay.pass();
  CHECK(c.exec("SELECT 3").value() == "3");
  const auto stats = relay.stats();
  CHECK(stats.connections_accepted == 1);
  CHECK(stats.bytes_client_to_server > 0);
  CHECK(stats.bytes_server_to_client > 0);
}
