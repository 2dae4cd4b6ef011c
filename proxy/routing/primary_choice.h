// Which server of a database entry takes writes, from what the servers say of themselves.
// Pure: the health monitor calls it on every new probe result.
#pragma once

#include "proxy/routing/layer.h"

#include <vector>

#include "proxy/routing/topology.h"

namespace pgsidecar::proxy {

// A server claims to be primary when it is up and not in recovery.
bool claims_primary(const ServerStatus& s);

// Keeps `current` while it still claims to be primary; else the first server that does
// (the configured primary is servers[0], so it wins over a promoted replica); else keeps
// `current` (-1 when there never was one). Never two: see refuse_other_primaries().
int choose_primary(const std::vector<ServerStatus>& servers, int current);

// Marks every server but `primary` that claims to be primary as refused; returns how many.
int refuse_other_primaries(std::vector<ServerStatus>& servers, int primary);

}  // namespace pgsidecar::proxy
