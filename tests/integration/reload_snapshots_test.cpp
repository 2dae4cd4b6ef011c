// Reloads replace the configuration snapshot for new logins only: a session keeps the
// snapshot it logged in with, so two reloads in a row (the second removing a database
// the first added) never pull its settings out from under it. Under the ASan build a
// dangling reference to a replaced snapshot fails this test (and the proxy's exit code).
#include <doctest/doctest.h>

#include <csignal>
#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/proxy_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// Reloads seen in the proxy's log so far.
int reloads_logged(const ProxyProcess& proxy) {
  const std::string log = proxy.stderr_tail(100000);
  int n = 0;
  for (std::size_t at = log.find("event=reloaded"); at != std::string::npos; at = log.find("event=reloaded", at + 1))
    ++n;
  return n;
}

void reload(ProxyProcess& proxy, const Cluster& cluster, const ProxyConfig& config, int expected_reloads) {
  proxy.write_config(proxy_config(cluster, config));
  proxy.signal(SIGHUP);
  const auto deadline = Clock::now() + 10s;
  while (reloads_logged(proxy) < expected_reloads && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
  REQUIRE_MESSAGE(reloads_logged(proxy) >= expected_reloads, proxy.stderr_tail());
}

std::string extra_database(const Cluster& cluster, const std::string& name) {
  return "[[databases]]\nname = " + toml_string(name) + "\nprimary = " + toml_string(cluster.primary_url()) +
         "\nsize = 3\n";
}

void check_works(Connection& c, const std::string& who) {
  for (int i = 0; i < 5; ++i) {
    const QueryResult r = c.exec("SELECT '" + who + "', current_database()");
    REQUIRE_MESSAGE(r.ok, who, ": ", r.describe());
    CHECK(r.value(0, 0) == who);
  }
}

}  // namespace

TEST_CASE("sessions logged in under three successive snapshots keep working and exit cleanly") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  ProxyConfig v1 = pool_config(mode, 4);
  start_proxy(proxy, cluster, v1);
  Connection a = connect_ok(app_conninfo(proxy, cluster));
  check_works(a, "a");

  // Snapshot 2: database "second" appears, and the pool defaults change.
  ProxyConfig v2 = v1;
  v2.size = 6;
  v2.pool_extra = "client_idle_timeout = \"1h\"";
  v2.extra = extra_database(cluster, "second");
  reload(proxy, cluster, v2, 1);
  Connection b = connect_ok(app_conninfo(proxy, cluster, "second"));
  check_works(b, "b");

  // Snapshot 3: "second" is gone again, "third" appears.
  ProxyConfig v3 = v1;
  v3.extra = extra_database(cluster, "third");
  reload(proxy, cluster, v3, 2);
  Connection c = connect_ok(app_conninfo(proxy, cluster, "third"));
  check_works(c, "c");

  // New logins see only the current snapshot...
  const Connection gone = Connection::open(app_conninfo(proxy, cluster, "second"));
  CHECK_FALSE(gone.ok());
  CHECK_MESSAGE(gone.sqlstate() == "3D000", gone.error());
  // ...while every session keeps the one it logged in with.
  check_works(a, "a");
  check_works(b, "b");
  check_works(c, "c");

  a = Connection();  // disconnect
  b = Connection();
  c = Connection();
  const int status = proxy.stop();
  CHECK_MESSAGE(status == 0, proxy.stderr_tail());
}
