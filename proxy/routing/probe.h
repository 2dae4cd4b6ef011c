// One health probe of one server with libpq's non-blocking API and a hard deadline:
// connect (or reuse the probe connection), then ask whether it is in recovery and how far
// its replay lags. Runs on the health monitor's threads, never on a worker loop.
//
// The probe connection stays open between probes and carries this sidecar's identity as
// its application_name, "pgsidecar-probe:<entry>:<instance>": while the sidecar lives it
// is visible in the server's pg_stat_activity, and when the process dies the server ends
// the session with it. So counting the distinct names that start with
// "pgsidecar-probe:<entry>:" counts the sidecars serving that entry (the fleet budget,
// docs/pooling.md), with no other service and no cleanup.
#pragma once

#include "proxy/routing/layer.h"

#include <libpq-fe.h>

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema.h"
#include "proxy/routing/topology.h"

namespace pgsidecar::proxy {

// A random identity for this process, 12 hex digits.
std::string new_instance_id();
// "pgsidecar-probe:<entry>:": the start of the probe application_name of every sidecar
// serving `database`. An entry name that is long, or not plain ASCII letters, digits,
// '_', '.' and '-', is written as '~' and a hash of it, so that the whole name fits in
// pg_stat_activity (63 bytes) and reads back as written.
std::string fleet_prefix(std::string_view database);
std::string probe_identity(std::string_view database, std::string_view instance);

struct ProbeResult {
  bool ok = false;
  bool in_recovery = false;
  double lag_seconds = 0;
  int timeline = 0;  // a primary's current timeline; 0 for a replica
  std::string error;
  // Asked for and answered: the sidecars with a probe connection on this server.
  std::optional<FleetCount> fleet;
  std::string fleet_error;  // asked for and not answered
};

class Prober {
 public:
  // `identity` is the connection's application_name; a non-empty `fleet_prefix` lets
  // probes count the connections whose application_name starts with it.
  Prober(config::ServerAddress address, std::string user, std::string password, std::string dbname,
         std::string identity, std::string fleet_prefix = {});
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;
  ~Prober();

  // The login for the next connection. A change (a reload rotated the password) closes the
  // current connection, so that the next probe tries the new login at once instead of
  // failing only when the old connection breaks.
  void set_login(const std::string& user, const std::string& password);

  // Health (role and lag); with count_fleet, the fleet count too.
  ProbeResult probe(std::chrono::milliseconds timeout, bool count_fleet = false);
  // The fleet count only, on a connection kept open for its identity alone.
  ProbeResult count(std::chrono::milliseconds timeout);

 private:
  ProbeResult run(std::chrono::milliseconds timeout, bool health, bool count_fleet);
  bool connect(std::chrono::steady_clock::time_point deadline, std::string& error);
  // Runs `sql` with text `params` and reads its single row into `row`. On failure `error`
  // says why; a broken connection is closed, an error reply leaves it open.
  bool query_row(const char* sql, std::initializer_list<const char*> params,
                 std::chrono::steady_clock::time_point deadline, std::vector<std::string>& row, std::string& error);
  bool wait_socket(bool for_write, std::chrono::steady_clock::time_point deadline);
  void disconnect();

  config::ServerAddress address_;
  std::string user_, password_, dbname_, identity_, fleet_prefix_;
  PGconn* conn_ = nullptr;
};

}  // namespace pgsidecar::proxy
