#include "proxy/router.h"

#include <vector>

#include "protocol/sqlstate.h"

namespace pgsidecar::proxy {

namespace sqlstate = protocol::sqlstate;

const char* to_string(ServerRole r) {
  switch (r) {
    case ServerRole::Unknown: return "unknown";
    case ServerRole::Primary: return "primary";
    case ServerRole::Replica: return "replica";
  }
  return "unknown";
}

const char* to_string(ServerHealth h) {
  switch (h) {
    case ServerHealth::Unknown: return "unknown";
    case ServerHealth::Up: return "up";
    case ServerHealth::Down: return "down";
  }
  return "unknown";
}

std::string server_key(const config::ServerAddress& a) {
  return a.host + ":" + std::to_string(a.port) + "/" + a.dbname;
}

bool usable_replica(const ServerStatus& s, const config::Database& db) {
  if (s.health != ServerHealth::Up || s.role != ServerRole::Replica || s.refused) return false;
  return s.lag_seconds * 1000.0 <= static_cast<double>(db.max_replica_lag.count());
}

namespace {

bool primary_usable(const DatabaseTopology& t, int avoid) {
  if (t.primary < 0 || t.primary == avoid) return false;
  const ServerStatus& s = t.servers[static_cast<std::size_t>(t.primary)];
  // Unknown health (before the first probe) counts as up: the connect attempt will tell.
  return s.health != ServerHealth::Down && !s.refused;
}

int pick_replica(const config::Database& db, const DatabaseTopology& t, int avoid, unsigned rotation) {
  std::vector<int> candidates;
  for (std::size_t i = 0; i < t.servers.size(); ++i) {
    if (static_cast<int>(i) == t.primary || static_cast<int>(i) == avoid) continue;
    if (usable_replica(t.servers[i], db)) candidates.push_back(static_cast<int>(i));
  }
  if (candidates.empty()) return -1;
  return candidates[rotation % candidates.size()];
}

Route server(int index) {
  Route r;
  r.kind = Route::Kind::Server;
  r.server = index;
  return r;
}

Route fail(std::string_view state, std::string message) {
  Route r;
  r.kind = Route::Kind::Fail;
  r.sqlstate = state;
  r.message = std::move(message);
  return r;
}

}  // namespace

Route route_transaction(Intent intent, const config::Database& db, const DatabaseTopology& t, int avoid,
                        unsigned rotation) {
  if (t.paused) {
    Route r;
    r.kind = Route::Kind::Paused;
    return r;
  }
  const bool primary_ok = primary_usable(t, avoid);
  const bool replica_reads = db.on_primary_down == config::PrimaryDownPolicy::ReplicaReads;
  if (intent == Intent::Write) {
    if (primary_ok) return server(t.primary);
    if (!replica_reads)
      return fail(sqlstate::kConnectionFailure, "primary for database \"" + db.name + "\" is unavailable");
    Route r;
    r.kind = Route::Kind::WaitForPrimary;
    return r;
  }
  switch (db.reads) {
    case config::ReadPolicy::Primary:
      if (primary_ok) return server(t.primary);
      break;
    case config::ReadPolicy::Replicas: {
      const int replica = pick_replica(db, t, avoid, rotation);
      if (replica >= 0) return server(replica);
      if (primary_ok) return server(t.primary);
      break;
    }
    case config::ReadPolicy::Any: {
      const int replica = pick_replica(db, t, avoid, rotation);
      if (primary_ok && (replica < 0 || rotation % 2 == 0)) return server(t.primary);
      if (replica >= 0) return server(replica);
      break;
    }
  }
  if (!primary_ok && replica_reads) {
    const int replica = pick_replica(db, t, avoid, rotation);
    if (replica >= 0) return server(replica);
    return fail(sqlstate::kConnectionFailure, "primary for database \"" + db.name +
                                                  "\" is unavailable and no replica is healthy and within "
                                                  "max_replica_lag");
  }
  return fail(sqlstate::kConnectionFailure, "primary for database \"" + db.name + "\" is unavailable");
}

}  // namespace pgsidecar::proxy
