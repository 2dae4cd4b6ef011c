#include "proxy/routing/router.h"


namespace pgsidecar::proxy {

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

bool replica_candidate(const config::Database& db, const DatabaseTopology& t, int index, int avoid) {
  return index != t.primary && index != avoid && usable_replica(t.servers[static_cast<std::size_t>(index)], db);
}

// The (rotation mod n)-th of the n usable replicas, counted twice rather than collected:
// routing a read allocates nothing.
int pick_replica(const config::Database& db, const DatabaseTopology& t, int avoid, unsigned rotation) {
  const int servers = static_cast<int>(t.servers.size());
  unsigned candidates = 0;
  for (int i = 0; i < servers; ++i) candidates += replica_candidate(db, t, i, avoid) ? 1 : 0;
  if (candidates == 0) return -1;
  unsigned wanted = rotation % candidates;
  for (int i = 0; i < servers; ++i)
    if (replica_candidate(db, t, i, avoid) && wanted-- == 0) return i;
  return -1;
}

Route server(int index) {
  Route r;
  r.kind = Route::Kind::Server;
  r.server = index;
  return r;
}

Route fail(Route::Failure why) {
  Route r;
  r.kind = Route::Kind::Fail;
  r.failure = why;
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
    if (!replica_reads) return fail(Route::Failure::PrimaryUnavailable);
    Route r;
    r.kind = Route::Kind::WaitForPrimary;
    return r;
  }
  if (replica_reads && primary_ok && t.servers[static_cast<std::size_t>(t.primary)].health == ServerHealth::Unknown) {
    // Not probed yet (just started, or a new entry): a replica known to be up serves the
    // read rather than a primary that may be down or hung.
    const int replica = pick_replica(db, t, avoid, rotation);
    if (replica >= 0) return server(replica);
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
    return fail(Route::Failure::NoHealthyServer);
  }
  return fail(Route::Failure::PrimaryUnavailable);
}

}  // namespace pgsidecar::proxy
