// Where a transaction goes: a pure function of its intent, the database's settings and the
// current TopologySnapshot.
#pragma once

#include "proxy/routing/layer.h"

#include "config/schema.h"
#include "proxy/routing/topology.h"

namespace pgsidecar::proxy {

enum class Intent { Read, Write };

struct Route {
  enum class Kind {
    Server,          // use servers[server]
    WaitForPrimary,  // a write while the primary is down: wait up to write_wait
    Paused,          // switchover in progress: wait for it to finish
    Fail,            // nothing can serve it now: `failure` says why
  };
  enum class Failure {
    None,
    PrimaryUnavailable,  // a write (or a read the policy keeps on the primary) and the primary is down
    NoHealthyServer,     // primary down, and no replica is healthy and within max_replica_lag
  };
  Kind kind = Kind::Fail;
  int server = -1;
  Failure failure = Failure::None;
};

// `avoid`: a server index not to use (the one a read just failed on), or -1.
// `rotation`: spreads reads over replicas (any increasing counter).
Route route_transaction(Intent intent, const config::Database& db, const DatabaseTopology& topology, int avoid,
                        unsigned rotation);

// A replica fresh enough for reads.
bool usable_replica(const ServerStatus& s, const config::Database& db);

}  // namespace pgsidecar::proxy
