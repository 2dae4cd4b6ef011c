// Settings in transaction mode: a reported setting (TimeZone, application_name, ...) that
// a client gave at startup or changed with SET follows that client to every server it
// lands on, and never reaches another client; a session-level SET of any other setting
// never reaches another client either (docs/pooling.md).
//
// Four clients share a pool of two servers on one worker. In every step one client holds
// a server inside a transaction while another runs a statement, so each client keeps
// moving between the two servers, and every statement checks the settings it runs under.

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/proxy_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

struct Expected {
  std::string time_zone;
  std::string application_name;
};

struct Client {
  std::string name;
  Connection conn;
  Expected expected;
  std::set<std::string> backends;  // server pids this client ran on
};

// Runs one statement on `c` and checks the settings it ran under.
void check_settings(Client& c, const std::string& sql_prefix = "") {
  const QueryResult r = c.conn.exec(sql_prefix +
                                    "SELECT current_setting('TimeZone'), current_setting('application_name'), "
                                    "current_setting('statement_timeout'), pg_backend_pid()");
  REQUIRE_MESSAGE(r.ok, c.name, ": ", r.describe());
  INFO("client ", c.name, " on backend ", r.value(0, 3));
  CHECK(r.value(0, 0) == c.expected.time_zone);
  CHECK(r.value(0, 1) == c.expected.application_name);
  // Only client "e" ever sets statement_timeout, and it must not reach anyone else.
  if (c.name != "e") CHECK(r.value(0, 2) == "0");
  c.backends.insert(r.value(0, 3));
}

}  // namespace

TEST_CASE("reported settings follow their client across servers and no SET reaches another client") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction", 2);
  config.workers = 1;  // all four clients share the same two servers
  start_proxy(proxy, cluster, config);

  const QueryResult server_default = exec_once(cluster.primary_conninfo(), "SHOW TimeZone");
  REQUIRE_MESSAGE(server_default.ok, server_default.describe());
  const std::string default_zone = server_default.value();
  REQUIRE(default_zone != "Asia/Tokyo");

  const std::string base = app_conninfo(proxy, cluster);
  std::vector<Client> clients;
  // "a" changes reported settings with SET; "b" and "c" keep the defaults (the same
  // settings, so they share one settings list inside the proxy); "d" gave its
  // application_name at startup; "e" runs a session-level SET of a setting that is not
  // reported.
  clients.push_back({"a", connect_ok(base), {default_zone, ""}, {}});
  clients.push_back({"b", connect_ok(base), {default_zone, ""}, {}});
  clients.push_back({"c", connect_ok(base), {default_zone, ""}, {}});
  clients.push_back({"d", connect_ok(base + " application_name=client-d"), {default_zone, "client-d"}, {}});
  clients.push_back({"e", connect_ok(base), {default_zone, ""}, {}});

  for (Client& c : clients) check_settings(c);

  // set_config() changes a reported setting without a SET: the server reports it, and it
  // must follow "c" while the next client on that server ("b", which had the same
  // settings as "c" until now) gets its own value back.
  Client& third = clients[2];
  const QueryResult via_function = third.conn.exec("SELECT set_config('application_name', 'client-c', false)");
  REQUIRE_MESSAGE(via_function.ok, via_function.describe());
  third.expected.application_name = "client-c";
  check_settings(clients[1]);
  check_settings(third);

  Client& a = clients[0];
  REQUIRE(a.conn.exec("SET TimeZone TO 'Asia/Tokyo'").ok);
  a.expected.time_zone = "Asia/Tokyo";
  // "a" had the same settings as "b" when it took the server; the server it changed is
  // the one "b" gets next (the most recently idle one).
  check_settings(clients[1]);
  check_settings(a);
  REQUIRE(a.conn.exec("SET application_name TO 'client-a'").ok);
  a.expected.application_name = "client-a";
  check_settings(a);
  // A SET inside a transaction that rolls back is undone; the server reports the old value.
  REQUIRE(a.conn.exec("BEGIN; SET TimeZone TO 'Europe/Paris'; ROLLBACK").ok);
  check_settings(a);
  REQUIRE(clients[4].conn.exec("SET statement_timeout TO '4321ms'").ok);

  // Every ordered pair, twice: `holder` keeps a server inside a transaction while `other`
  // runs on the remaining one.
  for (int round = 0; round < 2; ++round) {
    for (std::size_t h = 0; h < clients.size(); ++h) {
      for (std::size_t o = 0; o < clients.size(); ++o) {
        if (h == o) continue;
        Client& holder = clients[h];
        Client& other = clients[o];
        CAPTURE(round);
        CAPTURE(holder.name);
        CAPTURE(other.name);
        check_settings(holder, "BEGIN; ");
        check_settings(other);
        REQUIRE(holder.conn.exec("COMMIT").ok);
      }
    }
  }

  // A later SET still follows "a", and the others keep theirs.
  REQUIRE(a.conn.exec("SET TimeZone TO 'America/Santiago'").ok);
  a.expected.time_zone = "America/Santiago";
  for (int i = 0; i < 3; ++i) {
    for (std::size_t h = 1; h < clients.size(); ++h) {
      check_settings(clients[h], "BEGIN; ");
      check_settings(a);
      REQUIRE(clients[h].conn.exec("COMMIT").ok);
      check_settings(clients[h]);
    }
  }

  // The test is only worth something if every client really ran on both servers.
  for (const Client& c : clients) {
    INFO("client ", c.name);
    CHECK(c.backends.size() == 2);
  }
}
