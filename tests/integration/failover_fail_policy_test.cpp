// ctest: DISTURBS_CLUSTER (the primary is killed for 6 s, then started again)
//
// on_primary_down = "fail": while the primary is down nothing is served, not even reads
// the replica could answer, and nothing waits: every request (read, write, and new
// logins) gets a class-08 error at once. Once the primary is back all works again.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/failover_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

constexpr int kReaders = 6;
constexpr int kWriters = 2;
constexpr auto kOutage = 6s;
constexpr auto kDetection = 1s;  // probes every 200 ms, down after 2 failures

class Load {
 public:
  Load(std::string conninfo, OpLog& log) : conninfo_(std::move(conninfo)), log_(log) {}
  ~Load() { stop(); }
  void start() {
    for (int i = 0; i < kReaders + kWriters; ++i) threads_.emplace_back([this, i] { loop(i, i >= kReaders); });
  }
  // While paused no client starts a request. A client whose server is killed in the
  // middle of a request loses its connection (FATAL), and with the primary down it cannot
  // log in again; pausing over the kill keeps connections for reads during the outage.
  void pause(bool on) { paused_ = on; }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

 private:
  void loop(int client, bool writer) {
    Connection c;
    for (unsigned n = 0; !stop_; ++n) {
      if (paused_) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      if (!c.ok()) {
        Op op{"connect", client, Clock::now(), {}, false, "", "", ""};
        c = Connection::open(conninfo_, 5s);
        op.end = Clock::now();
        op.ok = c.ok();
        op.sqlstate = c.sqlstate();
        op.message = c.error();
        log_.add(op);
        if (!c.ok()) {
          std::this_thread::sleep_for(100ms);
          continue;
        }
      }
      Op op{writer ? "insert" : "select", client, Clock::now(), {}, false, "", "", ""};
      // A generous deadline: a request that hangs shows up as a duration, not a stuck test.
      const QueryResult r =
          writer ? c.exec("INSERT INTO failover_fail_policy (client, n) VALUES (" + std::to_string(client) + ", " +
                              std::to_string(n) + ")",
                          5s)
                 : c.exec("SELECT count(*) FROM failover_fail_policy WHERE client = " + std::to_string(client), 5s);
      op.end = Clock::now();
      op.ok = r.ok;
      op.sqlstate = r.sqlstate;
      op.message = r.message;
      if (r.timed_out) op.detail = "timed out";
      log_.add(op);
      std::this_thread::sleep_for(20ms);
    }
  }

  std::string conninfo_;
  OpLog& log_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> paused_{false};
  std::vector<std::thread> threads_;
};

}  // namespace

TEST_CASE("with on_primary_down = fail every request fails fast with class 08 while the primary is down") {
  Cluster& cluster = Cluster::shared();
  const ResetOnExit reset_at_end(cluster);
  prepare_on_primary(cluster, {"CREATE TABLE IF NOT EXISTS failover_fail_policy (client int NOT NULL, n int NOT NULL)"});

  ProxyProcess proxy;
  FailoverConfig config;
  FailoverDatabase db = app_with_replica(cluster);  // a healthy replica that must not be used
  db.on_primary_down = "fail";
  db.write_wait = "3s";                             // not used by this policy
  config.databases = {db};
  start_failover_proxy(proxy, cluster, config);
  Health health;
  REQUIRE_MESSAGE(wait_health(proxy, "app", cluster.replica_port(), {{"health", "up"}}, 10s, health),
                  health.describe());

  const auto epoch = Clock::now();
  OpLog log(epoch);
  Load load(app_conninfo(proxy, cluster), log);
  load.start();
  std::this_thread::sleep_for(1500ms);
  load.pause(true);
  std::this_thread::sleep_for(200ms);  // requests in flight finish (the slowest take ~100 ms)
  const auto kill_start = Clock::now();
  cluster.kill_primary();
  const auto kill_done = Clock::now();
  load.pause(false);
  // A new login during the outage is refused at once too.
  std::this_thread::sleep_until(kill_done + kDetection + 500ms);
  const auto login_start = Clock::now();
  const Connection late = Connection::open(app_conninfo(proxy, cluster), 5s);
  const double login_ms = ms_between(login_start, Clock::now());
  CHECK_FALSE(late.ok());
  CHECK_MESSAGE(is_class(late.sqlstate(), "08"), late.sqlstate(), " ", late.error());
  CHECK(login_ms < 1000);
  std::this_thread::sleep_until(kill_done + kOutage);
  const auto start_start = Clock::now();
  cluster.start_primary();
  const auto start_done = Clock::now();
  std::this_thread::sleep_for(3s);
  load.stop();
  const std::vector<Op> ops = log.ops();
  MESSAGE(ops.size(), " operations; kill at ", log.at(kill_start), " ms (", ms_between(kill_start, kill_done),
          " ms), restart done at ", log.at(start_done), " ms");

  int in_outage = 0, failed_logins = 0, reads_refused = 0;
  double slowest_ms = 0;
  std::map<int, Clock::time_point> first_ok_after;
  for (const Op& op : ops) {
    INFO(log.describe(op));
    slowest_ms = std::max(slowest_ms, op.duration_ms());
    // None hangs, whatever the moment.
    CHECK(op.duration_ms() < 1000);
    if (op.end < kill_start) {
      CHECK(op.ok);
    } else if (op.start > kill_done + kDetection && op.end < start_start) {
      ++in_outage;
      CHECK_FALSE(op.ok);
      CHECK(is_class(op.sqlstate, "08"));
      if (op.kind == "connect") {
        ++failed_logins;
      } else {
        if (op.kind == "select") ++reads_refused;
        CHECK(op.message.find("primary for database \"app\" is unavailable") != std::string::npos);
      }
    } else if (op.start < kill_done + kDetection) {
      CHECK((op.ok || is_class(op.sqlstate, "08") || op.sqlstate == "57P01"));
    } else if (op.start > start_done + 2s) {
      CHECK(op.ok);
    }
    if (op.ok && op.kind != "connect" && op.end > start_start && first_ok_after.count(op.client) == 0)
      first_ok_after[op.client] = op.end;
  }
  MESSAGE(in_outage, " requests during the outage, ", reads_refused, " of them reads, ", failed_logins,
          " logins; slowest request ", slowest_ms, " ms");
  // Fast failures mean many of them: clients retry every 20 ms (100 ms after a failed login).
  CHECK(in_outage > 50);
  CHECK(reads_refused > 10);
  CHECK(static_cast<int>(first_ok_after.size()) == kReaders + kWriters);
  for (const auto& [client, when] : first_ok_after) {
    CAPTURE(client);
    CHECK(ms_between(start_done, when) < 2000);
  }
  CHECK(proxy.running());
}
