// The Prometheus exposition of the runtime's statistics: the metric families documented
// in docs/operations.md, labelled only by configured names (database, user, server) and
// bounded sets (state, reason, outcome, sqlstate), never per client or per statement.
#pragma once

#include "proxy/runtime/layer.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "proxy/admin/runtime_stats.h"
#include "proxy/routing/topology.h"

namespace pgsidecar::proxy {

// One pool's shared limits (configured and effective size, fleet share, server logins),
// read from the PoolRegistry at scrape time.
struct PoolCapacity {
  std::string database, user, server;
  int size = 0;
  int effective = 0;
  int fleet_share = -1;     // -1: no fleet budget
  int fleet_sidecars = -1;  // -1: no fleet budget; 0: not counted yet
  uint64_t capacity_refusals = 0;
  int logins_in_flight = 0;
  int logins_waiting = 0;
  uint64_t logins_queued = 0;
};

struct ProcessGauges {
  bool ready = false;
  bool draining = false;
  std::map<std::string, uint64_t> switchovers;  // by database
  std::vector<PoolCapacity> capacity;
};

std::string render_metrics(const RuntimeStats& stats, const TopologySnapshot& topology,
                           const ProcessGauges& process);

}  // namespace pgsidecar::proxy
