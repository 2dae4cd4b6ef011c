// ctest: DISTURBS_CLUSTER (starts and stops the independent "green" server)
//
// Blue/green switchover under load: pgbench (20 clients, TPC-B-like, simple protocol)
// runs through pgsidecar while the database entry is switched from the cluster's
// primary to "green", an independent server with its own copy of the pgbench tables, in
// transaction mode and in session mode (pgbench -C). Clients must see a pause, not an
// error: zero failed transactions, and not one row reaches the old primary once SWITCHOVER
// has answered (pgbench_history counted there). Afterwards writes land on green. Fencing:
// session-mode clients still on the old primary are closed (57P01) at their next
// transaction boundary and write nothing anywhere. A switch that comes from a config
// reload (SIGHUP with a new primary URL) fails no transaction either.
//
// Cost: about 10 s per pgbench run (three), 2 s for fencing, 3 s for PAUSE.
#include <doctest/doctest.h>

#include <csignal>
#include <chrono>
#include <future>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/failover_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// A database of its own on both servers, so that the pgbench tables of other tests
// (and theirs of ours) are never in the way.
constexpr const char* kDatabase = "failover_bench";

std::string url_of(const Cluster& cluster, int port) {
  return "postgres://" + cluster.host() + ":" + std::to_string(port) + "/" + kDatabase;
}

std::string conninfo_of(const Cluster& cluster, int port) {
  return cluster.superuser_conninfo(port, kDatabase);
}

// The app user, directly on the server at `port`.
std::string app_conninfo_at(const Cluster& cluster, int port) {
  return make_conninfo({{"host", cluster.host()},
                        {"port", std::to_string(port)},
                        {"user", cluster.app_user()},
                        {"password", cluster.app_password()},
                        {"dbname", kDatabase},
                        {"sslmode", "disable"}});
}

// pgbench -i (scale 1) and a marker table in kDatabase on the server at `port`.
void prepare_server(const Cluster& cluster, int port) {
  Connection super = connect_ok(cluster.superuser_conninfo(port, "postgres"));
  const QueryResult exists = super.exec_params("SELECT count(*) FROM pg_database WHERE datname = $1", {kDatabase});
  REQUIRE_MESSAGE(exists.ok, exists.describe());
  if (exists.value() == "0") {
    const QueryResult created =
        super.exec(std::string("CREATE DATABASE ") + kDatabase + " OWNER " + cluster.app_user());
    REQUIRE_MESSAGE(created.ok, created.describe());
  }
  const ChildResult init = run_program({cluster.pg_bin() + "/pgbench", "-i", "-s", "1", "-q", "-h", cluster.host(),
                                        "-p", std::to_string(port), "-U", cluster.app_user(), kDatabase},
                                       {{"PGPASSWORD", cluster.app_password()}, {"PGCONNECT_TIMEOUT", "10"}}, 120s);
  REQUIRE_MESSAGE(init.exit_code == 0, init.describe());
  const QueryResult marker = exec_once(app_conninfo_at(cluster, port),
                                       "CREATE TABLE IF NOT EXISTS switchover_marker (token text PRIMARY KEY)");
  REQUIRE_MESSAGE(marker.ok, marker.describe());
}

struct PgbenchOutcome {
  ChildResult child;
  long long processed = -1;
  long long failed = -1;
};

long long match_number(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (std::regex_search(text, m, std::regex(pattern))) return std::stoll(m[1].str());
  return -1;
}

// pgbench -c 20 -T seconds -M simple (TPC-B-like) through the proxy, in the background;
// with `connect_each`, a new connection per transaction (-C).
std::future<PgbenchOutcome> start_pgbench(const Cluster& cluster, const ProxyProcess& proxy, int seconds,
                                          bool connect_each = false) {
  std::vector<std::string> argv = {cluster.pg_bin() + "/pgbench", "-h", "127.0.0.1", "-p",
                                   std::to_string(proxy.port()), "-U", cluster.app_user(),
                                   "-c", "20", "-j", "2", "-T", std::to_string(seconds), "-M", "simple", "-n", "app"};
  if (connect_each) argv.insert(argv.end() - 1, "-C");
  const std::string password = cluster.app_password();
  return std::async(std::launch::async, [argv, password, seconds] {
    PgbenchOutcome o;
    o.child = run_program(argv, {{"PGPASSWORD", password}, {"PGCONNECT_TIMEOUT", "10"}},
                          std::chrono::seconds(seconds + 60));
    o.processed = match_number(o.child.out, "number of transactions actually processed: (\\d+)");
    o.failed = match_number(o.child.out, "number of failed transactions: (\\d+)");
    return o;
  });
}

void check_clean_run(const PgbenchOutcome& o) {
  INFO("pgbench: ", o.child.describe());
  CHECK(o.child.exit_code == 0);
  CHECK(o.failed == 0);
  CHECK(o.processed > 0);
  CHECK(o.child.err.find("error") == std::string::npos);
  CHECK(o.child.err.find("aborted") == std::string::npos);
}

// TPC-B-like moves the same delta into an account, its teller and its branch in one
// transaction: the sums agree only if every transaction was applied whole, on one server.
void check_balances(const Cluster& cluster, int port) {
  CAPTURE(port);
  const QueryResult sums = exec_once(conninfo_of(cluster, port),
                                     "SELECT (SELECT sum(abalance) FROM pgbench_accounts), "
                                     "(SELECT sum(tbalance) FROM pgbench_tellers), "
                                     "(SELECT sum(bbalance) FROM pgbench_branches)");
  REQUIRE_MESSAGE(sums.ok, sums.describe());
  CHECK(sums.value(0, 0) == sums.value(0, 1));
  CHECK(sums.value(0, 1) == sums.value(0, 2));
}

long long history_rows(const Cluster& cluster, int port) {
  const QueryResult r = exec_once(conninfo_of(cluster, port), "SELECT count(*) FROM pgbench_history");
  REQUIRE_MESSAGE(r.ok, r.describe());
  return std::stoll(r.value());
}

void clear_history(const Cluster& cluster, int port) {
  const QueryResult r = exec_once(conninfo_of(cluster, port), "TRUNCATE pgbench_history");
  REQUIRE_MESSAGE(r.ok, r.describe());
}

FailoverConfig bench_config(const Cluster& cluster) {
  FailoverConfig config;
  config.size = 20;
  FailoverDatabase db;
  db.primary = url_of(cluster, cluster.primary_port());
  db.write_wait = "5s";
  config.databases = {db};
  return config;
}

// A write through the proxy, and which server took it.
QueryResult write_marker(const ProxyProcess& proxy, const Cluster& cluster, const std::string& token) {
  return exec_once(app_conninfo(proxy, cluster),
                   "INSERT INTO switchover_marker (token) VALUES ('" + token + "') RETURNING inet_server_port()", 10s);
}

std::string marker_count(const Cluster& cluster, int port, const std::string& token) {
  const QueryResult r =
      exec_once(conninfo_of(cluster, port), "SELECT count(*) FROM switchover_marker WHERE token = '" + token + "'");
  return r.ok ? r.value() : r.describe();
}

// Both servers with the pgbench tables (made once per test process) and an empty
// pgbench_history on each, so that each side's rows count the transactions it ran.
void prepare_both(Cluster& cluster) {
  static bool done = false;
  cluster.start_green();
  if (!done) {
    prepare_server(cluster, cluster.primary_port());
    prepare_server(cluster, cluster.green_port());
    done = true;
  }
  clear_history(cluster, cluster.primary_port());
  clear_history(cluster, cluster.green_port());
}

// A write through the proxy lands on the server at `port`.
void check_write_lands_on(const ProxyProcess& proxy, const Cluster& cluster, int port, const std::string& prefix) {
  const QueryResult written = write_marker(proxy, cluster, prefix + random_suffix());
  REQUIRE_MESSAGE(written.ok, written.describe());
  CHECK(written.value() == std::to_string(port));
}

// After a switch under pgbench: transactions ran on both sides, each whole on one server,
// and a new write lands on green only.
void check_moved_to_green(const ProxyProcess& proxy, const Cluster& cluster, int blue, int green,
                          const PgbenchOutcome& outcome, const std::string& marker_prefix) {
  const long long on_blue = history_rows(cluster, blue);
  const long long on_green = history_rows(cluster, green);
  MESSAGE(on_blue, " transactions on the old primary, ", on_green, " on green");
  CHECK(on_blue > 0);
  CHECK(on_green > 0);
  CHECK(on_blue + on_green == outcome.processed);
  check_balances(cluster, blue);
  check_balances(cluster, green);

  const std::string token = marker_prefix + random_suffix();
  const QueryResult after = write_marker(proxy, cluster, token);
  REQUIRE_MESSAGE(after.ok, after.describe());
  CHECK(after.value() == std::to_string(green));
  CHECK(marker_count(cluster, green, token) == "1");
  CHECK(marker_count(cluster, blue, token) == "0");
}

}  // namespace

// In session mode pgbench connects for each transaction (-C): a session that stays on
// the old primary is closed at its next boundary (the fencing test below), which pgbench
// would count as an aborted client.
TEST_CASE("SWITCHOVER to another server under pgbench load fails no transaction, and writes then go there") {
  const std::string mode = each_pool_mode();
  CAPTURE(mode);
  Cluster& cluster = Cluster::shared();
  const StopGreenOnExit stop_green(cluster);
  prepare_both(cluster);
  const int blue = cluster.primary_port();
  const int green = cluster.green_port();

  ProxyProcess proxy;
  FailoverConfig config = bench_config(cluster);
  config.databases[0].extra = "mode = \"" + mode + "\"\n";
  start_failover_proxy(proxy, cluster, config);
  check_write_lands_on(proxy, cluster, blue, "before-");

  auto bench = start_pgbench(cluster, proxy, 8, mode == "session");
  std::this_thread::sleep_for(3s);
  Connection admin = connect_ok(admin_conninfo(proxy));
  const auto started = Clock::now();
  const QueryResult switched = admin.exec("SWITCHOVER app TO '" + url_of(cluster, green) + "'", 20s);
  const double switch_ms = ms_between(started, Clock::now());
  MESSAGE("SWITCHOVER took ", switch_ms, " ms: ", switched.describe(),
          admin.notices().empty() ? std::string() : "; " + admin.notices().back());
  CHECK_MESSAGE(switched.ok, switched.describe());
  CHECK(switched.command_tag == "SWITCHOVER");
  CHECK(switch_ms < 5000);  // a pause, bounded by the transactions in flight
  // Fencing: once SWITCHOVER has answered, not one more row reaches the old primary.
  const long long blue_at_switch = history_rows(cluster, blue);

  const PgbenchOutcome outcome = bench.get();
  check_clean_run(outcome);
  MESSAGE("pgbench processed ", outcome.processed, " transactions");
  CHECK(history_rows(cluster, blue) == blue_at_switch);

  check_moved_to_green(proxy, cluster, blue, green, outcome, "after-switchover-");

  Health health;
  CHECK_MESSAGE(wait_health(proxy, "app", green, {{"serving_writes", "yes"}, {"health", "up"}, {"paused", "no"}}, 3s,
                            health),
                health.describe());

  // Switching to a database entry that does not exist is an error, not a hang.
  const QueryResult unknown = admin.exec("SWITCHOVER nosuchdb TO '" + url_of(cluster, blue) + "'", 10s);
  CHECK_FALSE(unknown.ok);
  CHECK_MESSAGE(!unknown.timed_out, unknown.describe());
  CHECK(proxy.running());
}

TEST_CASE("SIGHUP with a new primary URL switches over under pgbench load without failed transactions") {
  Cluster& cluster = Cluster::shared();
  const StopGreenOnExit stop_green(cluster);
  prepare_both(cluster);
  const int blue = cluster.primary_port();
  const int green = cluster.green_port();

  ProxyProcess proxy;
  FailoverConfig config = bench_config(cluster);
  start_failover_proxy(proxy, cluster, config);
  check_write_lands_on(proxy, cluster, blue, "before-reload-");

  auto bench = start_pgbench(cluster, proxy, 6);
  std::this_thread::sleep_for(2s);
  config.databases[0].primary = url_of(cluster, green);
  proxy.write_config(failover_config_text(cluster, config));
  const auto reloaded = Clock::now();
  proxy.signal(SIGHUP);

  std::string where;
  int n = 0;
  const bool moved = eventually(
      [&] {
        const std::string token = "reload-probe-" + std::to_string(n++) + "-" + random_suffix();
        const QueryResult w = write_marker(proxy, cluster, token);
        where = w.ok ? w.value() : w.describe();
        return where == std::to_string(green);
      },
      5s, 50ms);
  const double moved_ms = ms_between(reloaded, Clock::now());
  INFO("writes reached green ", moved_ms, " ms after SIGHUP; last write on ", where);
  CHECK(moved);
  CHECK(moved_ms < 3000);

  const PgbenchOutcome outcome = bench.get();
  check_clean_run(outcome);
  check_moved_to_green(proxy, cluster, blue, green, outcome, "after-reload-");
  CHECK(proxy.running());
}

TEST_CASE("PAUSE holds new transactions up to query_wait_timeout, lets running ones finish, and RESUME releases them") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  FailoverConfig config;
  config.query_wait_timeout = "2s";
  config.databases = {FailoverDatabase{}};
  start_failover_proxy(proxy, cluster, config);
  Connection running = connect_ok(app_conninfo(proxy, cluster));
  REQUIRE(running.exec("BEGIN").ok);
  REQUIRE(running.exec("SELECT 1").ok);
  // Logged in before the pause (logins during one: failover_admin_test.cpp).
  Connection refused = connect_ok(app_conninfo(proxy, cluster));
  Connection fresh = connect_ok(app_conninfo(proxy, cluster));

  Connection admin = connect_ok(admin_conninfo(proxy));
  const QueryResult paused = admin.exec("PAUSE app", 5s);
  REQUIRE_MESSAGE(paused.ok, paused.describe());
  Health health;
  CHECK_MESSAGE(wait_health(proxy, "app", cluster.primary_port(), {{"paused", "yes"}}, 2s, health), health.describe());

  // The transaction that was running goes on and ends.
  const auto t0 = Clock::now();
  CHECK(running.exec("SELECT 2", 5s).value() == "2");
  CHECK(running.exec("COMMIT", 5s).ok);
  CHECK(ms_between(t0, Clock::now()) < 500);

  // A new one waits; when the pause outlasts query_wait_timeout, it is refused with 57P03.
  send_query(refused, "SELECT 'refused'");
  std::string message;
  const auto waited_from = Clock::now();
  const std::string refused_state = await_query(refused.raw(), 5s, &message);
  const double waited_ms = ms_between(waited_from, Clock::now());
  CHECK_MESSAGE(refused_state == "57P03", refused_state, " ", message);
  CHECK(message.find("paused") != std::string::npos);
  CHECK(waited_ms > 1500);
  CHECK(waited_ms < 3000);
  CHECK(refused.ok());  // an error, not a disconnect

  // One that RESUME releases.
  send_query(fresh, "SELECT 'fresh'");
  std::this_thread::sleep_for(300ms);
  PQconsumeInput(fresh.raw());
  CHECK(PQisBusy(fresh.raw()) != 0);
  const auto resumed_at = Clock::now();
  const QueryResult resumed = admin.exec("RESUME app", 5s);
  REQUIRE_MESSAGE(resumed.ok, resumed.describe());
  const std::string fresh_state = await_query(fresh.raw(), 5s, &message);
  CHECK_MESSAGE(fresh_state.empty(), fresh_state, " ", message);
  CHECK(ms_between(resumed_at, Clock::now()) < 1000);
  CHECK(wait_health(proxy, "app", cluster.primary_port(), {{"paused", "no"}}, 2s, health));
  CHECK(refused.exec("SELECT 3", 5s).value() == "3");
  // PAUSE of an unknown database is an error.
  CHECK_FALSE(admin.exec("PAUSE nosuchdb", 5s).ok);
  CHECK(proxy.running());
}

TEST_CASE("fencing: after SWITCHOVER session clients on the old primary are closed at their boundary") {
  Cluster& cluster = Cluster::shared();
  const StopGreenOnExit stop_green(cluster);
  prepare_both(cluster);
  const int blue = cluster.primary_port();
  const int green = cluster.green_port();

  ProxyProcess proxy;
  FailoverConfig config = bench_config(cluster);
  config.query_wait_timeout = "1s";  // the drain bound: session clients hold their server
  config.databases[0].extra = "mode = \"session\"\n";
  start_failover_proxy(proxy, cluster, config);

  // An idle session on blue, and one inside a transaction there.
  Connection idle = connect_ok(app_conninfo(proxy, cluster));
  REQUIRE(idle.exec("SELECT 1").ok);
  Connection in_tx = connect_ok(app_conninfo(proxy, cluster));
  REQUIRE(in_tx.exec("BEGIN").ok);
  const std::string inside = "fence-inside-" + random_suffix();
  const QueryResult first =
      in_tx.exec("INSERT INTO switchover_marker (token) VALUES ('" + inside + "') RETURNING inet_server_port()");
  REQUIRE_MESSAGE(first.ok, first.describe());
  CHECK(first.value() == std::to_string(blue));

  Connection admin = connect_ok(admin_conninfo(proxy));
  const QueryResult switched = admin.exec("SWITCHOVER app TO '" + url_of(cluster, green) + "'", 20s);
  REQUIRE_MESSAGE(switched.ok, switched.describe());

  // The open transaction finishes where it began.
  const QueryResult committed = in_tx.exec("COMMIT", 5s);
  CHECK_MESSAGE(committed.ok, committed.describe());
  CHECK(marker_count(cluster, blue, inside) == "1");

  // Then neither session writes anywhere: each is closed with 57P01 naming the switchover.
  for (Connection* c : {&idle, &in_tx}) {
    const std::string token = "fence-after-" + random_suffix();
    const QueryResult w = c->exec("INSERT INTO switchover_marker (token) VALUES ('" + token + "')", 5s);
    CHECK_FALSE(w.ok);
    CHECK_MESSAGE((w.sqlstate == "57P01" || w.sqlstate == std::string(kConnectionLostSqlState)), w.describe());
    if (w.sqlstate == "57P01") CHECK_MESSAGE(w.message.find("switched over") != std::string::npos, w.describe());
    CHECK(marker_count(cluster, blue, token) == "0");
    CHECK(marker_count(cluster, green, token) == "0");
  }
  // A new session writes on green.
  check_write_lands_on(proxy, cluster, green, "fence-new-");
}
