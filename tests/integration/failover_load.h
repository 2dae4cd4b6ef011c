// A primary that stops answering under load, as the hang tests (a relay's stall, drop,
// stall_replies) and the SIGSTOP test (the primary's processes stopped) make it: 20
// readers (autocommit SELECTs) and 4 writers run through pgsidecar, the fault lasts a
// while, then it heals. What must hold:
// - at least 99.9 % of reads succeed, and every read that starts once the primary has
//   been declared down (with margin) succeeds: a read in flight on the hung primary is
//   replayed on the replica;
// - a write ends (fails, or succeeds) within write_wait + 1 s: one in flight at the fault
//   gets 08006 saying the outcome of a commit in flight is unknown, later ones 25006;
// - nothing hangs; every acknowledged write is on the primary afterwards.
//
// Header-only, like failover_fixture.h.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/integration/failover_fixture.h"

namespace pgsidecar::testing {

struct LoadPlan {
  int readers = 20;
  int writers = 4;
  std::chrono::milliseconds fault{5000};        // how long the fault lasts
  std::chrono::milliseconds write_wait{3000};   // the entry's write_wait
  std::chrono::milliseconds detection{0};       // when the primary is declared down at the latest
  std::chrono::milliseconds detection_margin{700};
};

// The plan and config both hang tests use: write_wait 3 s, [health] timeout 500 ms,
// suspect_after 300 ms, so that the primary is declared down within suspect_after and two
// probes timing out 100 ms apart; `primary_url` is the entry's primary (a relay's, or the
// cluster's own).
inline LoadPlan hang_plan(std::chrono::milliseconds fault) {
  using namespace std::chrono_literals;
  LoadPlan plan;
  plan.fault = fault;
  plan.write_wait = 3s;
  plan.detection = 300ms + 2 * 500ms + 100ms;
  return plan;
}

inline FailoverConfig hang_config(const Cluster& cluster, const std::string& primary_url) {
  FailoverConfig config;
  config.size = 30;
  config.health_timeout = "500ms";
  config.suspect_after = "300ms";
  FailoverDatabase db = app_with_replica(cluster);
  db.primary = primary_url;
  db.write_wait = "3s";
  db.extra = "server_connect_timeout = \"1s\"\n";
  config.databases = {db};
  return config;
}

struct LoadOutcome {
  std::vector<Op> ops;
  std::vector<std::string> acknowledged;  // ids of the writes that succeeded
  Clock::time_point fault_at, healed_at;
};

// The tables the load reads and writes, on the primary and caught up on the replica.
inline void prepare_load_tables(Cluster& cluster) {
  prepare_on_primary(cluster, {"CREATE TABLE IF NOT EXISTS failover_hang (id text PRIMARY KEY)",
                               "CREATE TABLE IF NOT EXISTS failover_hang_kv (k int PRIMARY KEY, v text NOT NULL)",
                               "INSERT INTO failover_hang_kv SELECT k, 'v' || k FROM generate_series(0, 9) AS k "
                               "ON CONFLICT DO NOTHING"});
}

// Runs the readers and writers for 1 s, calls fault(), waits plan.fault, calls heal(),
// and lets them run 1.5 s more.
inline LoadOutcome run_load_through_fault(const std::string& conninfo, const std::string& run_id,
                                          const LoadPlan& plan, const std::function<void()>& fault,
                                          const std::function<void()>& heal) {
  using namespace std::chrono_literals;
  LoadOutcome out;
  OpLog log(Clock::now());
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int i = 0; i < plan.readers; ++i)
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
  for (int i = 0; i < plan.writers; ++i)
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
          out.acknowledged.push_back(id);
        }
        std::this_thread::sleep_for(50ms);
      }
    });
  std::this_thread::sleep_for(1s);
  out.fault_at = Clock::now();
  fault();
  std::this_thread::sleep_for(plan.fault);
  heal();
  out.healed_at = Clock::now();
  std::this_thread::sleep_for(1500ms);
  stop = true;
  for (auto& t : threads) t.join();
  out.ops = log.ops();
  return out;
}

// The checks listed at the top of this file; `primary_conninfo` reaches the primary
// directly, to find the acknowledged writes.
inline void check_load_outcome(const LoadOutcome& out, const LoadPlan& plan, const std::string& fault_name,
                               const std::string& primary_conninfo, const std::string& run_id) {
  using namespace std::chrono_literals;
  int reads = 0, reads_ok = 0, writes_failed_08 = 0, writes_failed_25006 = 0;
  for (const Op& op : out.ops) {
    const std::string what = op.kind + " [" +
                             std::to_string(static_cast<long long>(ms_between(out.fault_at, op.start))) +
                             " ms after the fault] took " + std::to_string(static_cast<long long>(op.duration_ms())) +
                             " ms: " + (op.ok ? "ok" : op.sqlstate + " " + op.message);
    if (op.kind == "select") {
      ++reads;
      reads_ok += op.ok ? 1 : 0;
      // Once the primary is known to be down, every read succeeds.
      if (op.start >= out.fault_at + plan.detection + plan.detection_margin) CHECK_MESSAGE(op.ok, what);
      // No read hangs: one in flight at the fault waits for detection, then runs on the replica.
      CHECK_MESSAGE(op.end - op.start <= plan.detection + plan.detection_margin + 1s, what);
      continue;
    }
    // A write ends within write_wait + 1 s, whatever its outcome.
    CHECK_MESSAGE(op.end - op.start <= plan.write_wait + 1s, what);
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
  std::string list;
  for (const std::string& id : out.acknowledged) list += (list.empty() ? "'" : ",'") + id + "'";
  if (list.empty()) list = "''";
  Connection primary = connect_ok(primary_conninfo, 15s);
  const QueryResult n = primary.exec("SELECT count(*) FROM failover_hang WHERE id LIKE '" + run_id +
                                         "-%' AND id = ANY(ARRAY[" + list + "])",
                                     15s);
  REQUIRE_MESSAGE(n.ok, n.describe());
  CHECK(n.value() == std::to_string(out.acknowledged.size()));
}

}  // namespace pgsidecar::testing
