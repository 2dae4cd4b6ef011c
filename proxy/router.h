// Where a transaction goes: a pure function of its intent, the database's settings and the
// current TopologySnapshot.
#pragma once

#include <string>

#include "config/schema.h"
#include "proxy/topology.h"

namespace pgsidecar::proxy {

enum class Intent { Read, Write };

struct Route {
  enum class Kind {
    Server,          // use servers[server]
    WaitForPrimary,  // a write while the primary is down: wait up to write_wait
    Paused,          // switchover in progress: wait for it to finish
    Fail,            // nothing can serve it now: `error` says why (sqlstate, message)
  };
  Kind kind = Kind::Fail;
  int server = -1;
  std::string sqlstate;
  std::string message;
};

// `avoid`: a server index not to use (the one a read just failed on), or -1.
// `rotation`: spreads reads over replicas (any increasing counter).
Route route_transaction(Intent intent, const config::Database& db, const DatabaseTopology& topology, int avoid,
                        unsigned rotation);

// A replica fresh enough for reads.
bool usable_replica(const ServerStatus& s, const config::Database& db);

}  // namespace pgsidecar::proxy
