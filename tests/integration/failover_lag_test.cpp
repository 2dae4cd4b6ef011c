// ctest: DISTURBS_CLUSTER (pauses WAL replay on the replica, so other tests would read stale data)
//
// Replica lag: with reads = "replicas", read-only work goes to the replica only while it
// is within max_replica_lag of the primary. WAL replay is paused on the replica while
// the primary keeps writing; once the health probes see it more than 1 s behind, reads
// go to the primary, and they come back to the replica when replay resumes.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/failover_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// Resumes WAL replay on the replica when the test leaves, however it leaves (reset()
// does too, but a failed REQUIRE must not leave the next test a frozen replica).
class ResumeReplayOnExit {
 public:
  explicit ResumeReplayOnExit(const Cluster& cluster) : cluster_(cluster) {}
  ~ResumeReplayOnExit() {
    exec_once(cluster_.superuser_conninfo(cluster_.replica_port(), "postgres"), "SELECT pg_wal_replay_resume()", 10s);
  }
  ResumeReplayOnExit(const ResumeReplayOnExit&) = delete;
  ResumeReplayOnExit& operator=(const ResumeReplayOnExit&) = delete;

 private:
  const Cluster& cluster_;
};

// Writes on the primary, directly, every 50 ms while it lives: the replica receives WAL
// it does not replay, and its lag grows with the clock.
class PrimaryWriter {
 public:
  explicit PrimaryWriter(const Cluster& cluster) : conninfo_(cluster.primary_conninfo()) {
    thread_ = std::thread([this] { run(); });
  }
  ~PrimaryWriter() {
    stop_ = true;
    thread_.join();
  }
  PrimaryWriter(const PrimaryWriter&) = delete;
  PrimaryWriter& operator=(const PrimaryWriter&) = delete;
  int written() const { return written_; }

 private:
  void run() {
    Connection c = Connection::open(conninfo_, 5s);
    while (!stop_) {
      if (c.exec("INSERT INTO failover_lag (at) VALUES (clock_timestamp())", 5s).ok) ++written_;
      std::this_thread::sleep_for(50ms);
    }
  }
  std::string conninfo_;
  std::atomic<bool> stop_{false};
  std::atomic<int> written_{0};
  std::thread thread_;
};

// Where a read-only statement through the proxy ran: "t" on the replica, "f" on the primary.
std::string read_lands_on(Connection& c) {
  const QueryResult r = c.exec("SELECT pg_is_in_recovery()", 5s);
  return r.ok && !r.rows.empty() ? r.value() : "error: " + r.describe();
}

}  // namespace

TEST_CASE("with reads = replicas, a replica further behind than max_replica_lag gets no reads until it catches up") {
  Cluster& cluster = Cluster::shared();
  const ResetOnExit reset_at_end(cluster);
  prepare_on_primary(cluster,
                     {"CREATE TABLE IF NOT EXISTS failover_lag (id bigserial PRIMARY KEY, at timestamptz NOT NULL)"});

  ProxyProcess proxy;
  FailoverConfig config;
  FailoverDatabase db = app_with_replica(cluster);
  db.reads = "replicas";
  db.max_replica_lag = "1s";
  config.databases = {db};
  start_failover_proxy(proxy, cluster, config);
  Connection app = connect_ok(app_conninfo(proxy, cluster));

  // Healthy: reads go to the replica (once the first probe has seen it).
  std::string where;
  CHECK_MESSAGE(eventually([&] { return (where = read_lands_on(app)) == "t"; }, 5s), where);
  for (int i = 0; i < 5; ++i) CHECK(read_lands_on(app) == "t");
  // A write still goes to the primary.
  CHECK(app.exec("INSERT INTO failover_lag (at) VALUES (now()) RETURNING pg_is_in_recovery()").value() == "f");

  // The lag is measured from the last replayed commit: make that the write just above.
  REQUIRE(cluster.wait_replica_caught_up(10s));
  const ResumeReplayOnExit resume_at_end(cluster);
  Connection replica_super = connect_ok(cluster.superuser_conninfo(cluster.replica_port(), "postgres"));
  REQUIRE(replica_super.exec("SELECT pg_wal_replay_pause()").ok);
  const auto paused = Clock::now();
  double moved_ms = -1;
  Health health;
  {
    const PrimaryWriter writer(cluster);
    // Probes every 200 ms; the lag passes 1 s about 1 s after the pause.
    const bool moved = eventually([&] { return (where = read_lands_on(app)) == "f"; }, 6s, 50ms);
    moved_ms = ms_between(paused, Clock::now());
    INFO("last read on ", where);
    REQUIRE(moved);
    MESSAGE("reads moved to the primary ", moved_ms, " ms after replay was paused");
    CHECK(moved_ms >= 900);  // not before the replica is actually 1 s behind
    // While it lags, every read goes to the primary, and SHOW HEALTH shows the lag.
    for (int i = 0; i < 20; ++i) {
      CHECK(read_lands_on(app) == "f");
      std::this_thread::sleep_for(25ms);
    }
    health = show_health(proxy);
    const HealthRow* replica = health.server("app", cluster.replica_port());
    REQUIRE_MESSAGE(replica != nullptr, health.describe());
    INFO(health.describe());
    CHECK(replica->at("health") == "up");
    CHECK(std::stoll(replica->at("lag_ms")) > 1000);
    CHECK(writer.written() > 10);
  }

  REQUIRE(replica_super.exec("SELECT pg_wal_replay_resume()").ok);
  const auto resumed = Clock::now();
  CHECK_MESSAGE(eventually([&] { return (where = read_lands_on(app)) == "t"; }, 5s), where);
  MESSAGE("reads back on the replica ", ms_between(resumed, Clock::now()), " ms after replay resumed");
  CHECK(ms_between(resumed, Clock::now()) < 3000);
  for (int i = 0; i < 5; ++i) CHECK(read_lands_on(app) == "t");
  CHECK(proxy.running());
}
