// Which server of a database entry takes writes, from what the servers say of themselves.
// Pure: the health monitor calls it on every new probe result.
#pragma once

#include "proxy/routing/layer.h"

#include <vector>

#include "proxy/routing/topology.h"

namespace pgsidecar::proxy {

// A server claims to be primary when it is up and not in recovery.
bool claims_primary(const ServerStatus& s);

// Of the servers that claim to be primary, the one on the newest timeline; on a tie, the
// first in configured order (the configured primary is servers[0]). It depends only on
// what the servers report now, not on what was chosen before, so every sidecar (and one
// restarted) that sees the same servers chooses the same one. With no claimant it keeps
// `current` (-1 when there never was one). Never two: see refuse_other_primaries().
//
// Newest timeline first, not configured primary first: after a promotion the old primary
// may come back as a primary on the old timeline (restarted, not yet rewound), and
// preferring it would send writes back to a server that lacks those made on the promoted
// one.
int choose_primary(const std::vector<ServerStatus>& servers, int current);

// Marks every server but `primary` that claims to be primary as refused, with the reason
// in refused_reason; returns how many.
int refuse_other_primaries(std::vector<ServerStatus>& servers, int primary);

}  // namespace pgsidecar::proxy
