#include "proxy/routing/primary_choice.h"

namespace pgsidecar::proxy {

bool claims_primary(const ServerStatus& s) { return s.health == ServerHealth::Up && s.role == ServerRole::Primary; }

int choose_primary(const std::vector<ServerStatus>& servers, int current) {
  const int n = static_cast<int>(servers.size());
  if (current >= 0 && current < n && claims_primary(servers[static_cast<std::size_t>(current)])) return current;
  for (int i = 0; i < n; ++i)
    if (claims_primary(servers[static_cast<std::size_t>(i)])) return i;
  return current;
}

int refuse_other_primaries(std::vector<ServerStatus>& servers, int primary) {
  int refused = 0;
  for (int i = 0; i < static_cast<int>(servers.size()); ++i) {
    ServerStatus& s = servers[static_cast<std::size_t>(i)];
    if (i == primary || !claims_primary(s)) continue;
    s.refused = true;
    ++refused;
  }
  return refused;
}

}  // namespace pgsidecar::proxy
