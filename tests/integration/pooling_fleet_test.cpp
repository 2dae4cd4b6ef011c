// Many sidecars, one database's connection limit: a database that refuses more
// connections is backpressure, not failure; server logins in flight are bounded per
// server; and a fleet of sidecars shares fleet_max_connections through the database
// itself (docs/pooling.md). Each test uses roles and a database of its own, made with the
// superuser and dropped afterwards, so that counting their backends counts only its own.
#include <doctest/doctest.h>

#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/failover_fixture.h"
#include "tests/support/fault_relay.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

constexpr const char* kLimitedRole = "itest_fleet_limited";
constexpr const char* kFleetRole = "itest_fleet";
constexpr const char* kRolePassword = "fleet-secret";
constexpr const char* kFleetDatabase = "itest_fleet";

Connection superuser(const Cluster& cluster) {
  return connect_ok(cluster.superuser_conninfo(cluster.primary_port(), "postgres"));
}

void exec_ok(Connection& c, const std::string& sql) {
  const QueryResult r = c.exec(sql, 60s);
  REQUIRE_MESSAGE(r.ok, sql, ": ", r.describe());
}

// A login role made for one test (with `options`, e.g. CONNECTION LIMIT 2), and, when
// `database` is given, a database it owns. Both are dropped when the test ends, its
// sessions ended first.
class TestRole {
 public:
  TestRole(const Cluster& cluster, std::string name, const std::string& options, std::string database = {})
      : cluster_(cluster), name_(std::move(name)), database_(std::move(database)) {
    Connection su = superuser(cluster_);
    drop(su);
    exec_ok(su, "CREATE ROLE " + name_ + " LOGIN PASSWORD '" + kRolePassword + "' " + options);
    if (!database_.empty()) exec_ok(su, "CREATE DATABASE " + database_ + " OWNER " + name_);
  }
  ~TestRole() {
    Connection su = Connection::open(cluster_.superuser_conninfo(cluster_.primary_port(), "postgres"));
    if (su.ok()) drop(su);
  }
  TestRole(const TestRole&) = delete;
  TestRole& operator=(const TestRole&) = delete;

  const std::string& name() const { return name_; }
  const std::string& database() const { return database_.empty() ? cluster_.database() : database_; }

 private:
  void drop(Connection& su) {
    su.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", {name_}, 10s);
    if (!database_.empty()) su.exec("DROP DATABASE IF EXISTS " + database_ + " WITH (FORCE)", 60s);
    su.exec("DROP ROLE IF EXISTS " + name_, 10s);
  }

  const Cluster& cluster_;
  std::string name_;
  std::string database_;
};

// A sidecar config: the test role first (health probes log in as the first user with a
// plain-text password), the admin console's user, and one [[databases]] entry.
struct SidecarConfig {
  std::string user;
  std::string entry = "app";
  std::string primary;      // URL
  int workers = 2;
  int size = 5;
  std::string pool_extra;   // more [pool_defaults] lines
  std::string entry_extra;  // more lines for the entry
  std::string health_interval = "250ms";
};

std::string sidecar_config(const SidecarConfig& c) {
  std::ostringstream t;
  t << "[listen]\naddress = \"127.0.0.1\"\nport = @PORT@\nworkers = " << c.workers << "\n\n";
  t << "[admin]\nusers = [" << toml_string(kAdminUser) << "]\n\n";
  t << "[[users]]\nname = " << toml_string(c.user) << "\npassword = " << toml_string(kRolePassword) << "\n\n";
  t << "[[users]]\nname = " << toml_string(kAdminUser) << "\npassword = " << toml_string(kAdminPassword) << "\n\n";
  t << "[pool_defaults]\nmode = \"transaction\"\nsize = " << c.size << "\n" << c.pool_extra << "\n";
  t << "[health]\ninterval = " << toml_string(c.health_interval) << "\n\n";
  t << "[[databases]]\nname = " << toml_string(c.entry) << "\nprimary = " << toml_string(c.primary) << "\n"
    << c.entry_extra << "\n";
  return t.str();
}

void start_sidecar(ProxyProcess& proxy, const SidecarConfig& c) {
  const std::string text = sidecar_config(c);
  INFO("config:\n", text);
  REQUIRE_MESSAGE(proxy.start(text), proxy.error());
}

std::string role_url(const Cluster& cluster, const std::string& database, int port = 0) {
  return "postgres://" + cluster.host() + ":" + std::to_string(port != 0 ? port : cluster.primary_port()) + "/" +
         database;
}

std::string client_conninfo(const ProxyProcess& proxy, const std::string& user, const std::string& entry) {
  return proxy.conninfo(user, kRolePassword, entry);
}

// SHOW POOLS, the row of `entry`, by column name; empty when there is none yet.
using PoolRow = std::map<std::string, std::string>;
PoolRow pool_row(Connection& admin, const std::string& entry) {
  const QueryResult r = admin.exec("SHOW POOLS", 5s);
  REQUIRE_MESSAGE(r.ok, r.describe());
  for (const auto& row : r.rows) {
    PoolRow m;
    for (std::size_t i = 0; i < r.columns.size() && i < row.size(); ++i) m[r.columns[i]] = row[i];
    if (m["database"] == entry) return m;
  }
  return {};
}

int field(const PoolRow& row, const std::string& column) {
  const auto it = row.find(column);
  return it == row.end() || it->second.empty() ? -1 : std::stoi(it->second);
}

std::string describe(const PoolRow& row) {
  std::string s;
  for (const auto& [k, v] : row) s += k + "=" + v + " ";
  return s;
}

// Sessions of `role` on the primary whose application_name starts with the probe prefix.
int probe_sessions(Connection& su, const std::string& role) {
  const QueryResult r = su.exec_params(
      "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND starts_with(application_name, 'pgsidecar-probe:')",
      {role}, 5s);
  REQUIRE_MESSAGE(r.ok, r.describe());
  return std::stoi(r.value());
}

struct Outcome {
  QueryResult result;
  std::chrono::duration<double> took{};
};

// Each connection runs `sql` at the same moment, on a thread of its own.
std::vector<Outcome> run_together(std::vector<Connection>& clients, const std::string& sql,
                                  std::chrono::milliseconds timeout) {
  std::vector<Outcome> out(clients.size());
  std::vector<std::thread> threads;
  std::latch go(1);  // blocking, not spinning: spinning threads would starve the proxy
  for (std::size_t i = 0; i < clients.size(); ++i) {
    threads.emplace_back([&, i] {
      go.wait();
      const auto started = Clock::now();
      out[i].result = clients[i].exec(sql, timeout);
      out[i].took = Clock::now() - started;
    });
  }
  go.count_down();
  for (auto& t : threads) t.join();
  return out;
}

// A sidecar with a pool of 5 for `role`, once its probe session holds one of the role's
// connections.
void start_on_role(ProxyProcess& proxy, const Cluster& cluster, const TestRole& role, std::string pool_extra = {}) {
  SidecarConfig config;
  config.user = role.name();
  config.primary = role_url(cluster, role.database());
  config.size = 5;
  config.pool_extra = std::move(pool_extra);
  start_sidecar(proxy, config);
  Connection su = superuser(cluster);
  REQUIRE(eventually([&] { return probe_sessions(su, role.name()) == 1; }, 10s));
}

std::vector<Connection> connect_clients(const std::string& conninfo, int n) {
  std::vector<Connection> clients;
  for (int i = 0; i < n; ++i) clients.push_back(connect_ok(conninfo, 20s));
  return clients;
}

}  // namespace

TEST_CASE("a role with one free connection serves five clients at once: the database's refusals queue them") {
  Cluster& cluster = Cluster::shared();
  // Two connections for the role: the sidecar's probe session takes one.
  TestRole role(cluster, kLimitedRole, "CONNECTION LIMIT 2");
  ProxyProcess proxy;
  start_on_role(proxy, cluster, role);

  std::vector<Connection> clients = connect_clients(client_conninfo(proxy, role.name(), "app"), 5);
  const auto started = Clock::now();
  const std::vector<Outcome> outcomes = run_together(clients, "SELECT pg_sleep(0.5)", 15s);
  const double took = seconds_since(started);
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    CAPTURE(i);
    CHECK_MESSAGE(outcomes[i].result.ok, outcomes[i].result.describe());
  }
  // One server connection ran them one after another.
  CHECK(took >= 2.0);
  Connection admin = connect_ok(admin_conninfo(proxy));
  const PoolRow pool = pool_row(admin, "app");
  INFO("SHOW POOLS: ", describe(pool));
  MESSAGE("5 clients on one free connection: all served in ", took, " s; ", describe(pool));
  CHECK(field(pool, "size") == 5);
  // Lowered to what the database lets the pool hold (one server connection), and at most one
  // above it: a login that succeeded once raises it by one, to be lowered again if refused.
  CHECK(field(pool, "effective_size") <= 2);
  CHECK(field(pool, "effective_size") < field(pool, "size"));
  CHECK(field(pool, "server_connections") <= 2);
  CHECK(field(pool, "capacity_refusals") >= 1);
  CHECK(proxy.running());
}

TEST_CASE("with query_wait_timeout 1 s, clients a full database cannot serve get 53300 saying so, and none hangs") {
  Cluster& cluster = Cluster::shared();
  TestRole role(cluster, kLimitedRole, "CONNECTION LIMIT 2");
  ProxyProcess proxy;
  start_on_role(proxy, cluster, role, "query_wait_timeout = \"1s\"\n");

  std::vector<Connection> clients = connect_clients(client_conninfo(proxy, role.name(), "app"), 20);
  const auto started = Clock::now();
  const std::vector<Outcome> outcomes = run_together(clients, "SELECT pg_sleep(0.3)", 15s);
  const double took = seconds_since(started);
  int served = 0, refused = 0;
  double slowest = 0;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    CAPTURE(i);
    const QueryResult& r = outcomes[i].result;
    slowest = std::max(slowest, outcomes[i].took.count());
    CHECK_FALSE(r.timed_out);
    if (r.ok) {
      ++served;
      continue;
    }
    ++refused;
    CHECK_MESSAGE(r.sqlstate == "53300", r.describe());
    CHECK_MESSAGE(r.message.find("the database refused more connections for database \"app\"") != std::string::npos,
                  r.describe());
    CHECK_MESSAGE(r.message.find("too many connections for role") != std::string::npos, r.describe());
    CHECK_MESSAGE(r.message.find("query_wait_timeout") != std::string::npos, r.describe());
    CHECK(outcomes[i].took >= 900ms);
  }
  MESSAGE("20 clients, query_wait_timeout 1 s: ", served, " served, ", refused, " got 53300; slowest answer ",
          slowest, " s, all answered in ", took, " s");
  CHECK(served >= 1);
  CHECK(served + refused == 20);
  CHECK(slowest < 3.0);
  // The connections stay usable, and the pool serves again once the burst is over.
  for (Connection& c : clients) CHECK(c.exec("SELECT 1", 10s).ok);
  CHECK(proxy.running());
}

TEST_CASE("four sidecars share fleet_max_connections 30 under pgbench, and two survivors grow to 15 each") {
  Cluster& cluster = Cluster::shared();
  TestRole role(cluster, kFleetRole, "", kFleetDatabase);
  {
    const ChildResult init = run_program(
        {cluster.pg_bin() + "/pgbench", "-i", "-s", "1", "-q", "-h", cluster.host(), "-p",
         std::to_string(cluster.primary_port()), "-U", role.name(), kFleetDatabase},
        {{"PGPASSWORD", kRolePassword}, {"PGCONNECT_TIMEOUT", "10"}}, 120s);
    REQUIRE_MESSAGE(init.exit_code == 0, init.describe());
  }
  raise_open_files_limit(4096);
  constexpr int kSidecars = 4;
  std::array<std::unique_ptr<ProxyProcess>, kSidecars> sidecars;
  SidecarConfig config;
  config.user = role.name();
  config.entry = "bench";
  config.primary = role_url(cluster, kFleetDatabase);
  config.size = 20;
  config.pool_extra = "query_wait_timeout = \"20s\"\n";
  config.entry_extra = "fleet_max_connections = 30\n";
  for (auto& s : sidecars) {
    s = std::make_unique<ProxyProcess>();
    start_sidecar(*s, config);
  }
  std::array<Connection, kSidecars> admins;
  std::array<Connection, kSidecars> clients;  // one each, so that each has its pool
  for (int i = 0; i < kSidecars; ++i) {
    admins[i] = connect_ok(admin_conninfo(*sidecars[i]));
    clients[i] = connect_ok(client_conninfo(*sidecars[i], role.name(), "bench"));
  }
  // Every sidecar has counted the fleet: shares 8, 8, 7 and 7.
  const bool counted = eventually(
      [&] {
        int total = 0;
        for (auto& a : admins) {
          const PoolRow p = pool_row(a, "bench");
          if (field(p, "fleet_sidecars") != kSidecars) return false;
          total += field(p, "fleet_share");
        }
        return total == 30;
      },
      10s);
  REQUIRE_MESSAGE(counted, describe(pool_row(admins[0], "bench")));
  for (auto& a : admins) {
    const int share = field(pool_row(a, "bench"), "fleet_share");
    CHECK((share == 7 || share == 8));
  }

  BackendSampler sampler(cluster, role.name(), kFleetDatabase, 100ms);
  auto pgbench = [&](int i, int seconds) {
    return run_program({cluster.pg_bin() + "/pgbench", "-h", "127.0.0.1", "-p", std::to_string(sidecars[i]->port()),
                        "-U", role.name(), "-c", "20", "-j", "2", "-T", std::to_string(seconds), "-N", "bench"},
                       {{"PGPASSWORD", kRolePassword}, {"PGCONNECT_TIMEOUT", "10"}}, 60s);
  };
  auto failed_transactions = [](const ChildResult& r) {
    std::smatch m;
    return std::regex_search(r.out, m, std::regex("number of failed transactions: (\\d+)")) ? std::stoll(m[1].str())
                                                                                              : -1LL;
  };
  auto processed = [](const ChildResult& r) {
    std::smatch m;
    return std::regex_search(r.out, m, std::regex("actually processed: (\\d+)")) ? std::stoll(m[1].str()) : -1LL;
  };

  {
    // All four under load: together they never hold more than the budget.
    std::array<ChildResult, kSidecars> runs;
    std::vector<std::thread> threads;
    for (int i = 0; i < kSidecars; ++i) threads.emplace_back([&, i] { runs[i] = pgbench(i, 6); });
    for (auto& t : threads) t.join();
    for (int i = 0; i < kSidecars; ++i) {
      CAPTURE(i);
      INFO("pgbench: ", runs[i].describe());
      CHECK(runs[i].exit_code == 0);
      CHECK(failed_transactions(runs[i]) == 0);
      CHECK(processed(runs[i]) > 0);
    }
    REQUIRE_FALSE(sampler.failed());
    MESSAGE("4 sidecars under pgbench -c 20: at most ", sampler.max(), " backends (", sampler.raw_max(),
            " counting exiting ones) in ", sampler.samples(), " samples");
    CHECK(sampler.samples() >= 30);
    CHECK(sampler.max() >= 20);
    CHECK_MESSAGE(sampler.max() <= 30, "backends at the busiest moment:\n", sampler.busiest());
  }

  {
    // Two die without any cleanup; the survivors, under load, grow into their share.
    sampler.reset();
    std::array<ChildResult, 2> runs;
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) threads.emplace_back([&, i] { runs[i] = pgbench(i, 8); });
    std::this_thread::sleep_for(1500ms);
    for (int i = 2; i < kSidecars; ++i) {
      admins[i] = Connection();
      clients[i] = Connection();
      sidecars[i]->signal(SIGKILL);
    }
    const auto killed = Clock::now();
    const bool grown = eventually(
        [&] {
          for (int i = 0; i < 2; ++i) {
            const PoolRow p = pool_row(admins[i], "bench");
            if (field(p, "fleet_share") != 15 || field(p, "server_connections") != 15) return false;
          }
          return true;
        },
        5s, 20ms);
    const double growth = seconds_since(killed);
    const std::string survivors =
        describe(pool_row(admins[0], "bench")) + "\n" + describe(pool_row(admins[1], "bench"));
    MESSAGE("after killing two sidecars the survivors held 15 each within ", growth, " s");
    CHECK_MESSAGE(grown, "survivors:\n", survivors);
    for (auto& t : threads) t.join();
    for (int i = 0; i < 2; ++i) {
      CAPTURE(i);
      INFO("pgbench: ", runs[i].describe());
      CHECK(runs[i].exit_code == 0);
      CHECK(failed_transactions(runs[i]) == 0);
    }
    REQUIRE_FALSE(sampler.failed());
    MESSAGE("two survivors: at most ", sampler.max(), " backends (", sampler.raw_max(), " counting exiting ones)");
    CHECK_MESSAGE(sampler.max() <= 30, "backends at the busiest moment:\n", sampler.busiest());
  }
  sampler.stop();
  for (int i = 2; i < kSidecars; ++i) sidecars[i]->wait_exit(5s);
}

TEST_CASE("200 clients at once on a cold sidecar: at most max_concurrent_logins logins in flight, and all are served") {
  Cluster& cluster = Cluster::shared();
  TestRole role(cluster, kFleetRole, "");
  raise_open_files_limit(4096);
  // A slow link makes each login take several round trips of 2 × 15 ms, so that logins
  // overlap and queue.
  FaultRelay relay(cluster.host(), cluster.primary_port());
  relay.delay(15ms);
  ProxyProcess proxy;
  SidecarConfig config;
  config.user = role.name();
  config.primary = role_url(cluster, role.database(), relay.port());
  config.size = 50;
  config.pool_extra = "max_concurrent_logins = 4\nquery_wait_timeout = \"30s\"\n";
  start_sidecar(proxy, config);
  Connection admin = connect_ok(admin_conninfo(proxy));

  constexpr int kClients = 200;
  std::atomic<int> served{0};
  std::atomic<bool> done{false};
  std::mutex errors_mu;
  std::vector<std::string> errors;
  int sampled_max = 0, samples = 0;
  std::thread sampler([&] {
    Connection watch = Connection::open(admin_conninfo(proxy));
    while (!done) {
      const QueryResult r = watch.exec("SHOW POOLS", 5s);
      if (r.ok && !r.rows.empty()) {
        for (std::size_t c = 0; c < r.columns.size(); ++c)
          if (r.columns[c] == "logins_in_flight") sampled_max = std::max(sampled_max, std::stoi(r.value(0, c)));
        ++samples;
      }
      std::this_thread::sleep_for(2ms);
    }
  });
  std::vector<std::thread> threads;
  std::latch go(1);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&] {
      go.wait();
      Connection c = Connection::open(client_conninfo(proxy, role.name(), "app"), 60s);
      const QueryResult r = c.ok() ? c.exec("SELECT pg_sleep(0.05)", 60s) : QueryResult{};
      if (c.ok() && r.ok) {
        ++served;
        return;
      }
      std::lock_guard lock(errors_mu);
      errors.push_back(c.ok() ? r.describe() : c.sqlstate() + " " + c.error());
    });
  }
  const auto started = Clock::now();
  go.count_down();
  for (auto& t : threads) t.join();
  const double took = seconds_since(started);
  done = true;
  sampler.join();
  const PoolRow pool = pool_row(admin, "app");
  INFO("SHOW POOLS: ", describe(pool));
  INFO("first error: ", errors.empty() ? std::string("none") : errors.front());
  MESSAGE("200 clients on a cold sidecar: ", served.load(), " served in ", took, " s; logins in flight at most ",
          sampled_max, " in ", samples, " samples, peak ", field(pool, "logins_in_flight_peak"), "; ",
          field(pool, "logins_queued"), " logins queued, ", field(pool, "server_connections"),
          " server connections");
  CHECK(served == kClients);
  CHECK(samples >= 10);
  CHECK(sampled_max >= 1);
  CHECK(sampled_max <= 4);
  CHECK(field(pool, "logins_in_flight_peak") <= 4);
  CHECK(field(pool, "logins_in_flight_peak") >= 2);
  CHECK(field(pool, "logins_queued") > 0);  // the gate held logins back
  CHECK(field(pool, "server_connections") <= 50);
  // A login started for a client that another freed connection served meanwhile may
  // still be on its way; then the gate is empty.
  int in_flight = field(pool, "logins_in_flight");
  for (int i = 0; i < 100 && in_flight != 0; ++i) {
    std::this_thread::sleep_for(50ms);
    in_flight = field(pool_row(admin, "app"), "logins_in_flight");
  }
  CHECK(in_flight == 0);
  CHECK(proxy.running());
}
