// What the health monitor knows about the servers of each [[databases]] entry, published
// to the workers as an immutable snapshot: routing reads it, never changes it.
#pragma once

#include "proxy/routing/layer.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/schema.h"

namespace pgsidecar::proxy {

enum class ServerRole { Unknown, Primary, Replica };
enum class ServerHealth { Unknown, Up, Down };

const char* to_string(ServerRole r);
const char* to_string(ServerHealth h);

// The sidecars that serve one [[databases]] entry on one server, as counted from the
// server's pg_stat_activity: each keeps a probe connection open there whose
// application_name names the entry and the sidecar (probe.h).
struct FleetCount {
  int sidecars = 0;  // 0: not counted yet
  int rank = 0;      // how many of them sort before this sidecar
};

struct ServerStatus {
  config::ServerAddress address;
  std::string key;             // host:port/dbname: identifies the server and its pools
  ServerRole role = ServerRole::Unknown;  // as the server itself reports (pg_is_in_recovery)
  ServerHealth health = ServerHealth::Unknown;
  double lag_seconds = 0;      // replay lag of a replica
  int timeline = 0;            // a primary's current timeline (0: a replica, or not known)
  bool refused = false;        // a second server claiming to be primary: never used
  std::string refused_reason;  // why it was refused rather than the serving one
  std::string last_error;      // of the last failed probe
  std::chrono::system_clock::time_point last_probe{};
  bool last_probe_ok = false;
  double last_probe_seconds = 0;  // how long the last probe took
  int consecutive_failures = 0;
  int consecutive_successes = 0;
  FleetCount fleet;            // for the entry whose topology holds this status
};

struct DatabaseTopology {
  std::string name;
  std::vector<ServerStatus> servers;  // [0]: the configured (or switched-over) primary, then replicas
  int primary = -1;                   // the server that takes writes now; -1: none
  bool paused = false;                // a switchover is in progress: new transactions wait

  const ServerStatus* find_server(std::string_view key) const {
    for (const auto& s : servers)
      if (s.key == key) return &s;
    return nullptr;
  }
};

struct TopologySnapshot {
  uint64_t version = 0;
  std::map<std::string, DatabaseTopology, std::less<>> databases;

  const DatabaseTopology* find(std::string_view db) const {
    auto it = databases.find(db);
    return it == databases.end() ? nullptr : &it->second;
  }
};

std::string server_key(const config::ServerAddress& a);

}  // namespace pgsidecar::proxy
