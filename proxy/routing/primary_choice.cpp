#include "proxy/routing/primary_choice.h"

#include <string>

namespace pgsidecar::proxy {

bool claims_primary(const ServerStatus& s) { return s.health == ServerHealth::Up && s.role == ServerRole::Primary; }

int choose_primary(const std::vector<ServerStatus>& servers, int current) {
  int chosen = -1;
  for (int i = 0; i < static_cast<int>(servers.size()); ++i) {
    const ServerStatus& s = servers[static_cast<std::size_t>(i)];
    if (!claims_primary(s)) continue;
    if (chosen < 0 || s.timeline > servers[static_cast<std::size_t>(chosen)].timeline) chosen = i;
  }
  return chosen >= 0 ? chosen : current;
}

int refuse_other_primaries(std::vector<ServerStatus>& servers, int primary) {
  int refused = 0;
  const bool known = primary >= 0 && primary < static_cast<int>(servers.size());
  const ServerStatus* serving = known ? &servers[static_cast<std::size_t>(primary)] : nullptr;
  for (int i = 0; i < static_cast<int>(servers.size()); ++i) {
    ServerStatus& s = servers[static_cast<std::size_t>(i)];
    if (i == primary || !claims_primary(s)) continue;
    s.refused = true;
    if (serving == nullptr) {
      s.refused_reason = "another server claims to be primary";
    } else if (serving->timeline > s.timeline) {
      s.refused_reason = "both report they are not in recovery; " + serving->key + " is on a newer timeline (" +
                         std::to_string(serving->timeline) + " > " + std::to_string(s.timeline) + ")";
    } else {
      s.refused_reason = "both report they are not in recovery, on timeline " + std::to_string(s.timeline) + "; " +
                         serving->key + " comes first in the configuration";
    }
    ++refused;
  }
  return refused;
}

}  // namespace pgsidecar::proxy
