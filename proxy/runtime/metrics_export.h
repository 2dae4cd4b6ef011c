// The Prometheus exposition of the runtime's statistics: the metric families documented
// in docs/operations.md, labelled only by configured names (database, user, server) and
// bounded sets (state, reason, outcome, sqlstate), never per client or per statement.
#pragma once

#include "proxy/runtime/layer.h"

#include <cstdint>
#include <map>
#include <string>

#include "proxy/admin/runtime_stats.h"
#include "proxy/routing/topology.h"

namespace pgsidecar::proxy {

struct ProcessGauges {
  bool ready = false;
  bool draining = false;
  std::map<std::string, uint64_t> switchovers;  // by database
};

std::string render_metrics(const RuntimeStats& stats, const TopologySnapshot& topology,
                           const ProcessGauges& process);

}  // namespace pgsidecar::proxy
