// A primary that stops answering without closing anything: a paused VM or a SIGSTOPped
// postmaster (the relay's stall(): connections accepted, nothing forwarded), a partition
// (drop(): bytes thrown away), a half-open connection (stall_replies(): requests arrive,
// answers never come back). The fault relay sits between pgsidecar and the primary, so the
// cluster itself is never disturbed and this file runs beside the others.
//
// 20 readers (autocommit SELECTs) and 4 writers run through pgsidecar; the fault lasts
// kFault, then the network heals. What must hold:
// - at least 99.9 % of reads succeed, and every read that starts once the primary has
//   been declared down (suspect_after + timeout x failures_before_down, with margin)
//   succeeds: a read in flight on the hung primary is replayed on the replica;
// - a write ends (fails, or succeeds) within write_wait + 1 s: one in flight at the fault
//   gets 08006 saying the outcome of a commit in flight is unknown, later ones 25006;
// - nothing hangs; every acknowledged write is on the primary afterwards.
//
// Cost: about 8 s per fault (three faults: about 25 s).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/failover_fixture.h"
#include "tests/support/fault_relay.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

constexpr int kReaders = 20;
constexpr int kWriters = 4;
constexpr auto kWriteWait = 3s;
constexpr auto kFault = 5s;
// suspect_after 300 ms, then two probes timing out after 500 ms each, 100 ms apart.
constexpr auto kDetection = 300ms + 2 * 500ms + 100ms;
constexpr auto kDetectionMargin = 700ms;

struct Outcome {
  std::vector<Op> ops;
  std::vector<std::string> acknowledged;
};

Outcome run_load_through_fault(const std::string& conninfo, const std::string& run_id,
                               const std::function<void()>& fault, const std::function<void()>& heal,
                               Clock::time_point& fault_at, Clock::time_point& healed_at) {
  OpLog log(Clock::now());
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::vector<std::thread> threads;
  for (int i = 0; i < kReaders; ++i)
    threads.emplace_back([&, i] {
      Connection c = Connection::open(conninfo, 5s);
      for (unsigned n = 0; !stop; ++n) {
        Op op{"select", i, Clock::now(), {}, false, "", "", ""};
        if (!c.ok()) c = Connection::open(conninfo, 5s);
        const QueryResult r = c.ok() ? c.exec("SELECT v FROM failover_hang_kv WHERE k = " + std::to_string(n % 10), 15s)
                                     : QueryResult{};
        op.end = Clock::now();
        op.ok = r.ok && !r.rows.empty() && r.rows[0][0] == "v" + std::to_string(n % 10);
        op.sqlstate = !r.sqlstate.empty() || c.ok() ? r.sqlstate : c.sqlstate();
        op.message = c.ok() ? r.message : c.error();
        log.add(op);
        std::this_thread::sleep_for(20ms);
      }
    });
  for (int i = 0; i < kWriters; ++i)
    threads.emplace_back([&, i] {
      Connection c = Connection::open(conninfo, 5s);
      for (unsigned n = 0; !stop; ++n) {
        const std::string id = run_id + "-" + std::to_string(i) + "-" + std::to_string(n);
        Op op{"insert", i, Clock::now(), {}, false, "", "", ""};
        if (!c.ok()) c = Connection::open(conninfo, 5s);
        const QueryResult r =
            c.ok() ? c.exec("INSERT INTO failover_hang (id) VALUES ('" + id + "')", 15s) : QueryResult{};
        op.end = Clock::now();
        op.ok = r.ok;
        op.sqlstate = !r.sqlstate.empty() || c.ok() ? r.sqlstate : c.sqlstate();
        op.message = r.message;
        log.add(op);
        if (r.ok) {
          std::lock_guard lock(mu);
          acknowledged.push_back(id);
        }
        std::this_thread::sleep_for(50ms);
      }
    });
  std::this_thread::sleep_for(1s);
  fault_at = Clock::now();
  fault();
  std::this_thread::sleep_for(kFault);
  heal();
  healed_at = Clock::now();
  std::this_thread::sleep_for(1500ms);
  stop = true;
  for (auto& t : threads) t.join();
  return {log.ops(), acknowledged};
}

}  // namespace

TEST_CASE("a hung, partitioned or half-open primary: reads go on, writes end within write_wait") {
  Cluster& cluster = Cluster::shared();
  prepare_on_primary(cluster, {"CREATE TABLE IF NOT EXISTS failover_hang (id text PRIMARY KEY)",
                               "CREATE TABLE IF NOT EXISTS failover_hang_kv (k int PRIMARY KEY, v text NOT NULL)",
                               "INSERT INTO failover_hang_kv SELECT k, 'v' || k FROM generate_series(0, 9) AS k "
                               "ON CONFLICT DO NOTHING"});
  FaultRelay relay(cluster.host(), cluster.primary_port());
  std::string fault_name = "stall";
  std::function<void()> fault = [&] { relay.stall(); };
  SUBCASE("the primary stops answering (a paused VM, SIGSTOP)") {}
  SUBCASE("a partition drops every packet") {
    fault_name = "drop";
    fault = [&] { relay.drop(); };
  }
  SUBCASE("a half-open connection: requests arrive, replies never come back") {
    fault_name = "stall_replies";
    fault = [&] { relay.stall_replies(); };
  }
  CAPTURE(fault_name);

  ProxyProcess proxy;
  FailoverConfig config;
  config.size = 30;
  config.health_timeout = "500ms";
  FailoverDatabase db = app_with_replica(cluster);
  db.primary = cluster.url(relay.port());
  db.write_wait = "3s";
  db.extra = "server_connect_timeout = \"1s\"\n";
  config.databases = {db};
  const std::string text = failover_config_text(cluster, config) + "";
  // suspect_after goes into [health]: the fixture writes that table before the entries.
  std::string with_suspect = text;
  with_suspect.insert(with_suspect.find("failures_before_down"), "suspect_after = \"300ms\"\n");
  INFO("config:\n", with_suspect);
  REQUIRE_MESSAGE(proxy.start(with_suspect), proxy.error());

  Clock::time_point fault_at, healed_at;
  const std::string run_id = fault_name + "-" + std::to_string(Clock::now().time_since_epoch().count());
  const Outcome out = run_load_through_fault(
      app_conninfo(proxy, cluster), run_id, fault, [&] { relay.pass(); }, fault_at, healed_at);

  int reads = 0, reads_ok = 0, writes_failed_08 = 0, writes_failed_25006 = 0;
  for (const Op& op : out.ops) {
    const std::string what = op.kind + " [" + std::to_string(static_cast<long long>(ms_between(fault_at, op.start))) +
                             " ms after the fault] took " + std::to_string(static_cast<long long>(op.duration_ms())) +
                             " ms: " + (op.ok ? "ok" : op.sqlstate + " " + op.message);
    if (op.kind == "select") {
      ++reads;
      reads_ok += op.ok ? 1 : 0;
      // Once the primary is known to be down, every read succeeds.
      if (op.start >= fault_at + kDetection + kDetectionMargin) CHECK_MESSAGE(op.ok, what);
      // No read hangs: one in flight at the fault waits for detection, then runs on the replica.
      CHECK_MESSAGE(op.end - op.start <= kDetection + kDetectionMargin + 1s, what);
      continue;
    }
    // A write ends within write_wait + 1 s, whatever its outcome.
    CHECK_MESSAGE(op.end - op.start <= kWriteWait + 1s, what);
    if (!op.ok) {
      CHECK_MESSAGE((is_class(op.sqlstate, "08") || op.sqlstate == "25006"), what);
      if (is_class(op.sqlstate, "08")) ++writes_failed_08;
      if (op.sqlstate == "25006") ++writes_failed_25006;
      if (op.sqlstate == "08006" && op.message.find("abandoned") != std::string::npos)
        CHECK_MESSAGE(op.message.find("outcome of a COMMIT in flight is unknown") != std::string::npos, what);
    }
  }
  MESSAGE(fault_name, ": ", reads_ok, " of ", reads, " reads succeeded; writes failed: ", writes_failed_08,
          " class 08, ", writes_failed_25006, " 25006");
  REQUIRE(reads > 0);
  CHECK(reads_ok * 1000 >= reads * 999);
  CHECK(writes_failed_25006 + writes_failed_08 > 0);  // the outage was seen by the writers

  // Every acknowledged write is on the primary.
  Connection primary = connect_ok(cluster.primary_conninfo());
  const QueryResult n =
      primary.exec("SELECT count(*) FROM failover_hang WHERE id LIKE '" + run_id + "-%' AND id = ANY(ARRAY[" +
                   [&] {
                     std::string list;
                     for (const std::string& id : out.acknowledged) list += (list.empty() ? "'" : ",'") + id + "'";
                     return list.empty() ? std::string("''") : list;
                   }() +
                   "])");
  REQUIRE_MESSAGE(n.ok, n.describe());
  CHECK(n.value() == std::to_string(out.acknowledged.size()));
}
