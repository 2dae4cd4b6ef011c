// What the failover integration tests share: a pgsidecar config in front of the test
// cluster's primary and replica with fast health probes, the admin console (SHOW HEALTH,
// SWITCHOVER), bounded polling, and a log of timed client operations that a test can
// check against the moments it disturbed the servers.
//
// Header-only, like proxy_fixture.h: the integration test target compiles
// tests/integration/*_test.cpp. Nothing here waits without a bound.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "tests/integration/proxy_fixture.h"

namespace pgsidecar::testing {

// The admin console's user: listed in [admin] users and, with a password, in [[users]].
inline constexpr std::string_view kAdminUser = "admin";
inline constexpr std::string_view kAdminPassword = "admin-secret";

// One [[databases]] entry of a failover config.
struct FailoverDatabase {
  std::string name = "app";
  std::string primary;                // URL; empty: the cluster's primary
  std::vector<std::string> replicas;  // URLs
  std::string reads = "primary";
  std::string on_primary_down = "replica_reads";
  std::string write_wait = "3s";
  std::string max_replica_lag = "5s";
  int size = 0;                       // 0: [pool_defaults] size
  std::string extra;                  // more lines for the entry (e.g. query_wait_timeout)
};

struct FailoverConfig {
  int workers = 2;
  int size = 20;                       // [pool_defaults] size
  std::string query_wait_timeout = "5s";
  std::string health_interval = "200ms";
  std::string health_timeout = "1s";
  int failures_before_down = 2;
  std::string suspect_after;           // [health] suspect_after; empty: the default
  std::vector<FailoverDatabase> databases;
};

// An entry "app" on the cluster's primary with its replica, as most failover tests use.
inline FailoverDatabase app_with_replica(const Cluster& cluster) {
  FailoverDatabase db;
  db.primary = cluster.primary_url();
  db.replicas = {cluster.replica_url()};
  return db;
}

inline std::string failover_config_text(const Cluster& cluster, const FailoverConfig& c) {
  std::ostringstream t;
  t << "[listen]\naddress = \"127.0.0.1\"\nport = @PORT@\nworkers = " << c.workers << "\n\n";
  t << "[admin]\nusers = [" << toml_string(kAdminUser) << "]\n\n";
  // The app user first: health probes log in as the first user with a plain-text
  // password, and only the app user exists on the servers.
  t << "[[users]]\nname = " << toml_string(cluster.app_user())
    << "\npassword = " << toml_string(cluster.app_password()) << "\n\n";
  t << "[[users]]\nname = " << toml_string(kAdminUser) << "\npassword = " << toml_string(kAdminPassword)
    << "\n\n";
  t << "[pool_defaults]\nmode = \"transaction\"\nsize = " << c.size
    << "\nquery_wait_timeout = " << toml_string(c.query_wait_timeout) << "\n\n";
  t << "[health]\ninterval = " << toml_string(c.health_interval) << "\ntimeout = " << toml_string(c.health_timeout)
    << "\nfailures_before_down = " << c.failures_before_down << "\n";
  if (!c.suspect_after.empty()) t << "suspect_after = " << toml_string(c.suspect_after) << "\n";
  t << "\n";
  for (const FailoverDatabase& db : c.databases) {
    t << "[[databases]]\nname = " << toml_string(db.name) << "\nprimary = "
      << toml_string(db.primary.empty() ? cluster.primary_url() : db.primary) << "\n";
    if (!db.replicas.empty()) {
      t << "replicas = [";
      for (std::size_t i = 0; i < db.replicas.size(); ++i) t << (i > 0 ? ", " : "") << toml_string(db.replicas[i]);
      t << "]\n";
    }
    t << "reads = " << toml_string(db.reads) << "\non_primary_down = " << toml_string(db.on_primary_down)
      << "\nwrite_wait = " << toml_string(db.write_wait) << "\nmax_replica_lag = " << toml_string(db.max_replica_lag)
      << "\n";
    if (db.size > 0) t << "size = " << db.size << "\n";
    t << db.extra << "\n";
  }
  return t.str();
}

inline void start_failover_proxy(ProxyProcess& proxy, const Cluster& cluster, const FailoverConfig& c) {
  const std::string text = failover_config_text(cluster, c);
  INFO("config:\n", text);
  REQUIRE_MESSAGE(proxy.start(text), proxy.error());
}

inline std::string admin_conninfo(const ProxyProcess& proxy) {
  return proxy.conninfo(kAdminUser, kAdminPassword, "pgsidecar");
}

// ---- polling -----------------------------------------------------------------------

// Calls `done` every `every` until it returns true (then true) or timeout passes (false).
inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds every = std::chrono::milliseconds(50)) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

inline double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// ---- SHOW HEALTH ---------------------------------------------------------------------

using HealthRow = std::map<std::string, std::string>;  // column name -> value ("" for NULL)

struct Health {
  bool ok = false;
  std::string error;
  std::vector<HealthRow> rows;

  // The row of `database` whose server is 127.0.0.1:port; nullptr when there is none.
  const HealthRow* server(std::string_view database, int port) const {
    // Appended piecewise: GCC 12 reports a false -Wrestrict for ":" + to_string(port).
    std::string needle(1, ':');
    needle.append(std::to_string(port)).push_back('/');
    for (const HealthRow& r : rows) {
      if (r.at("database") == database && r.at("server").find(needle) != std::string::npos) return &r;
    }
    return nullptr;
  }
  std::string describe() const {
    if (!ok) return "SHOW HEALTH failed: " + error;
    std::string out;
    for (const HealthRow& r : rows) {
      for (const char* col : {"database", "server", "role", "health", "serving_writes", "refused", "lag_ms",
                              "last_probe_result", "last_error", "paused"}) {
        const auto it = r.find(col);
        out += std::string(col) + "=" + (it == r.end() ? "?" : it->second) + " ";
      }
      out += "\n";
    }
    return out;
  }
};

inline Health show_health(const ProxyProcess& proxy) {
  Health h;
  const QueryResult r = exec_once(admin_conninfo(proxy), "SHOW HEALTH", std::chrono::seconds(5));
  if (!r.ok) {
    h.error = r.describe();
    return h;
  }
  h.ok = true;
  for (const auto& row : r.rows) {
    HealthRow m;
    for (std::size_t i = 0; i < r.columns.size() && i < row.size(); ++i) m[r.columns[i]] = row[i];
    h.rows.push_back(std::move(m));
  }
  return h;
}

// True when SHOW HEALTH has a row for (database, port) whose columns have these values.
inline bool health_matches(const Health& h, std::string_view database, int port,
                           std::initializer_list<std::pair<const char*, const char*>> expected) {
  const HealthRow* row = h.server(database, port);
  if (row == nullptr) return false;
  for (const auto& [column, value] : expected) {
    const auto it = row->find(column);
    if (it == row->end() || it->second != value) return false;
  }
  return true;
}

// Polls SHOW HEALTH until the row matches; the last answer is left in `last`.
inline bool wait_health(const ProxyProcess& proxy, std::string_view database, int port,
                        std::initializer_list<std::pair<const char*, const char*>> expected,
                        std::chrono::milliseconds timeout, Health& last) {
  return eventually(
      [&] {
        last = show_health(proxy);
        return health_matches(last, database, port, expected);
      },
      timeout, std::chrono::milliseconds(100));
}

// ---- a log of timed client operations ----------------------------------------------

struct Op {
  std::string kind;       // "select", "ro-tx", "insert", ...
  int client = 0;
  Clock::time_point start;
  Clock::time_point end;
  bool ok = false;
  std::string sqlstate;   // empty when ok
  std::string message;
  std::string detail;     // e.g. which statement of a transaction failed

  double duration_ms() const { return ms_between(start, end); }
};

// Shared by the client threads of one test; read only after they have stopped.
class OpLog {
 public:
  explicit OpLog(Clock::time_point epoch) : epoch_(epoch) {}

  void add(Op op) {
    std::lock_guard lock(mu_);
    ops_.push_back(std::move(op));
  }
  std::vector<Op> ops() const {
    std::lock_guard lock(mu_);
    return ops_;
  }
  // Milliseconds since the test's epoch, for messages.
  double at(Clock::time_point t) const { return ms_between(epoch_, t); }
  std::string describe(const Op& op) const {
    std::ostringstream s;
    s << op.kind << " client " << op.client << " [" << static_cast<long long>(at(op.start)) << " ms .. "
      << static_cast<long long>(at(op.end)) << " ms] took " << static_cast<long long>(op.duration_ms()) << " ms: "
      << (op.ok ? std::string("ok") : op.sqlstate + " " + op.message)
      << (op.detail.empty() ? "" : " (" + op.detail + ")");
    return s.str();
  }

 private:
  Clock::time_point epoch_;
  mutable std::mutex mu_;
  std::vector<Op> ops_;
};

// Runs set-up statements on the primary directly, then waits until the replica has them,
// so a test starts with both servers holding the same data.
inline void prepare_on_primary(Cluster& cluster, std::initializer_list<const char*> statements) {
  Connection primary = connect_ok(cluster.primary_conninfo());
  for (const char* sql : statements) {
    const QueryResult r = primary.exec(sql);
    REQUIRE_MESSAGE(r.ok, sql, ": ", r.describe());
  }
  REQUIRE(cluster.wait_replica_caught_up(std::chrono::seconds(30)));
}

inline bool is_class(std::string_view sqlstate, std::string_view klass) {
  return sqlstate.size() == 5 && sqlstate.substr(0, 2) == klass;
}

}  // namespace pgsidecar::testing
