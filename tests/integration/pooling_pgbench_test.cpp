// pgbench through the pool: many more clients than servers, in every query mode
// pgbench has (simple, extended, prepared), read-only and TPC-B-like. Every transaction
// must succeed, and the primary must never see more backends than the pool's size.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/proxy_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

constexpr const char* kBenchDatabase = "itest_bench";

// pgbench -i (scale 1, no foreign keys) straight on the primary into a database of its
// own, once per test process.
void ensure_bench_database(const Cluster& cluster) {
  static bool done = false;
  if (done) return;
  Connection super = connect_ok(cluster.superuser_conninfo(cluster.primary_port(), "postgres"));
  const QueryResult exists = super.exec_params("SELECT count(*) FROM pg_database WHERE datname = $1", {kBenchDatabase});
  REQUIRE_MESSAGE(exists.ok, exists.describe());
  if (exists.value() == "0") {
    const QueryResult created =
        super.exec(std::string("CREATE DATABASE ") + kBenchDatabase + " OWNER " + cluster.app_user());
    REQUIRE_MESSAGE(created.ok, created.describe());
  }
  const ChildResult init = run_program(
      {cluster.pg_bin() + "/pgbench", "-i", "-s", "1", "-q", "-h", cluster.host(), "-p",
       std::to_string(cluster.primary_port()), "-U", cluster.app_user(), kBenchDatabase},
      {{"PGPASSWORD", cluster.app_password()}, {"PGCONNECT_TIMEOUT", "10"}}, 120s);
  REQUIRE_MESSAGE(init.exit_code == 0, init.describe());
  done = true;
}

// The bench database as a [[databases]] entry named "bench".
std::string bench_database_entry(const Cluster& cluster) {
  return "[[databases]]\nname = \"bench\"\nprimary = \"postgres://" + cluster.host() + ":" +
         std::to_string(cluster.primary_port()) + "/" + kBenchDatabase + "\"\n";
}

struct PgbenchRun {
  ChildResult child;
  long long processed = -1;
  long long failed = -1;
  int clients = -1;
};

long long match_number(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (std::regex_search(text, m, std::regex(pattern))) return std::stoll(m[1].str());
  return -1;
}

PgbenchRun run_pgbench(const Cluster& cluster, const ProxyProcess& proxy, const std::vector<std::string>& options) {
  std::vector<std::string> argv = {cluster.pg_bin() + "/pgbench", "-h", "127.0.0.1", "-p",
                                   std::to_string(proxy.port()), "-U", cluster.app_user()};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.emplace_back("bench");
  PgbenchRun run;
  run.child = run_program(argv, {{"PGPASSWORD", cluster.app_password()}, {"PGCONNECT_TIMEOUT", "10"}}, 90s);
  run.processed = match_number(run.child.out, "number of transactions actually processed: (\\d+)");
  run.failed = match_number(run.child.out, "number of failed transactions: (\\d+)");
  run.clients = static_cast<int>(match_number(run.child.out, "number of clients: (\\d+)"));
  return run;
}

// A fixed number of transactions per client (-t), not a duration: pgbench's -T clock
// includes connecting all clients, which on a loaded machine can use up a short run.
void check_clean_run(const PgbenchRun& run, int clients, int per_client) {
  INFO("pgbench: ", run.child.describe());
  CHECK(run.child.exit_code == 0);
  CHECK(run.clients == clients);
  CHECK(run.failed == 0);
  CHECK(run.processed > 0);
  CHECK(run.processed == static_cast<long long>(clients) * per_client);
  CHECK(run.child.err.find("error") == std::string::npos);
}

// TPC-B moves the same delta into an account, its teller and its branch in one
// transaction: the three sums stay equal only if every transaction was atomic.
void check_balances_agree(const Cluster& cluster) {
  // As the superuser, so that the sampler does not count this connection.
  const QueryResult sums = exec_once(cluster.superuser_conninfo(cluster.primary_port(), kBenchDatabase),
                                     "SELECT (SELECT sum(abalance) FROM pgbench_accounts), "
                                     "(SELECT sum(tbalance) FROM pgbench_tellers), "
                                     "(SELECT sum(bbalance) FROM pgbench_branches)");
  REQUIRE_MESSAGE(sums.ok, sums.describe());
  CHECK(sums.value(0, 0) == sums.value(0, 1));
  CHECK(sums.value(0, 1) == sums.value(0, 2));
}

}  // namespace

TEST_CASE("pgbench with 200 clients in every query mode runs without failures on a transaction pool of 10") {
  Cluster& cluster = Cluster::shared();
  ensure_bench_database(cluster);
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction", 10);
  config.workers = 2;
  config.extra = bench_database_entry(cluster);
  start_proxy(proxy, cluster, config);
  BackendSampler sampler(cluster, cluster.app_user(), kBenchDatabase);

  for (const std::string query_mode : {"simple", "extended", "prepared"}) {
    for (const bool select_only : {true, false}) {
      CAPTURE(query_mode);
      CAPTURE(select_only);
      sampler.reset();
      const int per_client = select_only ? 50 : 10;
      std::vector<std::string> options = {"-c", "200", "-j", "2", "-t", std::to_string(per_client), "-M", query_mode};
      if (select_only) options.emplace_back("-S");
      const PgbenchRun run = run_pgbench(cluster, proxy, options);
      check_clean_run(run, 200, per_client);
      if (!select_only) check_balances_agree(cluster);
      // The pool, not the 200 clients, decides how many backends the primary serves.
      REQUIRE_FALSE(sampler.failed());
      CHECK(sampler.samples() >= 3);
      INFO("backends: at most ", sampler.max(), " (", sampler.raw_max(), " with exiting ones), ",
           sampler.distinct(), " distinct");
      CHECK(sampler.max() >= 1);
      CHECK_MESSAGE(sampler.max() <= 10, "backends at the busiest moment:\n", sampler.busiest());
    }
  }
  sampler.stop();
  CHECK(proxy.running());
}

TEST_CASE("pgbench with 40 clients runs without failures on a session pool of 50") {
  Cluster& cluster = Cluster::shared();
  ensure_bench_database(cluster);
  ProxyProcess proxy;
  ProxyConfig config = pool_config("session", 50);
  config.extra = bench_database_entry(cluster);
  start_proxy(proxy, cluster, config);
  BackendSampler sampler(cluster, cluster.app_user(), kBenchDatabase);

  const PgbenchRun run = run_pgbench(cluster, proxy, {"-c", "40", "-j", "2", "-t", "50", "-M", "prepared"});
  check_clean_run(run, 40, 50);
  check_balances_agree(cluster);
  sampler.stop();
  REQUIRE_FALSE(sampler.failed());
  CHECK(sampler.samples() >= 3);
  // Each client holds a server for its whole session: 40 at once, within the pool of 50
  // (pgbench's own setup connection, gone before the clients start, may leave one more idle).
  CHECK(sampler.max() >= 40);
  CHECK_MESSAGE(sampler.max() <= 50, "backends at the busiest moment:\n", sampler.busiest());
  CHECK(proxy.running());
}
