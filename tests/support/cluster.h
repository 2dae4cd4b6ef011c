// The PostgreSQL primary + hot standby that ctest's fixture `cluster` starts
// (tests/support/cluster.sh), as seen from a test: ports, logins, and the commands that
// disturb it. Tests that disturb it are registered with DISTURBS_CLUSTER (RESOURCE_LOCK
// cluster) and call reset() when done so that the next test finds the starting topology.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

namespace pgsidecar::testing {

class Cluster {
 public:
  // The cluster named by PGSIDECAR_CLUSTER_ENV (the env file cluster.sh start writes).
  // Throws std::runtime_error saying how to run the test when it is unset or unreadable.
  static Cluster& shared();

  // Reads an env file of KEY=value lines (values as bash's printf %q writes them).
  explicit Cluster(const std::string& env_file);

  int primary_port() const { return primary_port_; }
  int replica_port() const { return replica_port_; }
  const std::string& host() const { return value("PGHOST"); }
  const std::string& app_user() const { return value("APP_USER"); }
  const std::string& app_password() const { return value("APP_PASSWORD"); }
  const std::string& superuser() const { return value("SUPERUSER"); }
  const std::string& superuser_password() const { return value("SUPERUSER_PASSWORD"); }
  const std::string& database() const { return value("DATABASE"); }
  const std::string& state_dir() const { return value("STATE_DIR"); }
  const std::string& pg_bin() const { return value("PG_BIN"); }
  const std::string& primary_log() const { return value("PRIMARY_LOG"); }
  const std::string& replica_log() const { return value("REPLICA_LOG"); }

  // libpq conninfo for a direct connection; empty arguments mean the app user, its
  // password and the app database.
  std::string primary_conninfo(std::string_view user = {}, std::string_view password = {},
                               std::string_view database = {}) const;
  std::string replica_conninfo(std::string_view user = {}, std::string_view password = {},
                               std::string_view database = {}) const;
  // The superuser on the given port (primary_port() or replica_port()).
  std::string superuser_conninfo(int port, std::string_view database = {}) const;
  // A server URL for pgsidecar's config: the cluster's host (or a relay's) at `port`.
  std::string url(int port, std::string_view user = {}) const;
  // postgres://user@127.0.0.1:port/db, as pgsidecar's config takes server addresses.
  std::string primary_url(std::string_view user = {}) const;
  std::string replica_url(std::string_view user = {}) const;

  // Each runs cluster.sh with this cluster's state directory and throws
  // std::runtime_error with the script's output when it fails.
  void kill_primary();     // immediate shutdown: like a crash, no checkpoint
  void stop_primary();     // fast shutdown
  void start_primary();    // returns once it accepts connections
  void restart_primary();  // fast shutdown, then start
  void kill_replica();
  void stop_replica();
  void start_replica();
  void promote_replica();  // returns once pg_is_in_recovery() is false there
  void reset();            // primary up, replica streaming from it (re-cloned if promoted),
                           // its WAL replay resumed if a test paused it
  void run(std::string_view command);

  // "Green": an independent second server for switchover tests, with the app role and
  // database as on the primary but none of its data (cluster.sh start-green). Its data
  // directory is made on the first start and kept until the cluster stops.
  void start_green();  // returns once it accepts connections; re-reads the env file
  void stop_green();   // fast shutdown; idempotent
  // Throws std::out_of_range when green was never started.
  int green_port() const;
  std::string green_conninfo(std::string_view user = {}, std::string_view password = {},
                             std::string_view database = {}) const;
  std::string green_url(std::string_view user = {}) const;

  // An independent server with ssl = on and a test CA (cluster.sh start-tls), made on the
  // first call and kept running until the cluster stops; re-reads the env file.
  void start_tls();
  int tls_port() const;  // throws std::out_of_range before start_tls()
  // A file the harness made: ca.crt, other-ca.crt, server.crt/key, client.crt/key.
  std::string tls_file(std::string_view name) const;

  // True once the replica has replayed everything the primary had written when called;
  // false after timeout, or when either server does not answer.
  bool wait_replica_caught_up(std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  // Any KEY of the env file; throws std::out_of_range naming the key when absent.
  const std::string& value(std::string_view key) const;

 private:
  std::string conninfo(int port, std::string_view user, std::string_view password,
                       std::string_view database) const;
  void load_env_file();  // (re)reads env_file_ into env_

  std::string env_file_;
  std::map<std::string, std::string, std::less<>> env_;
  int primary_port_ = 0;
  int replica_port_ = 0;
};

// Calls cluster.stop_green() when it goes out of scope, also when the test leaves early.
class StopGreenOnExit {
 public:
  explicit StopGreenOnExit(Cluster& cluster) : cluster_(cluster) {}
  ~StopGreenOnExit();
  StopGreenOnExit(const StopGreenOnExit&) = delete;
  StopGreenOnExit& operator=(const StopGreenOnExit&) = delete;

 private:
  Cluster& cluster_;
};

// Calls cluster.reset() when it goes out of scope, also when a failed REQUIRE or an
// exception leaves the test early: the next test must not find the primary down.
class ResetOnExit {
 public:
  explicit ResetOnExit(Cluster& cluster) : cluster_(cluster) {}
  ~ResetOnExit();
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  Cluster& cluster_;
};

}  // namespace pgsidecar::testing
