// Which server takes writes, from what the servers report of themselves.
#include <doctest/doctest.h>

#include <vector>

#include "proxy/routing/primary_choice.h"

using namespace pgsidecar::proxy;

namespace {

ServerStatus server(ServerHealth health, ServerRole role) {
  ServerStatus s;
  s.health = health;
  s.role = role;
  return s;
}

const ServerStatus kPrimaryUp = server(ServerHealth::Up, ServerRole::Primary);
const ServerStatus kReplicaUp = server(ServerHealth::Up, ServerRole::Replica);
const ServerStatus kPrimaryDown = server(ServerHealth::Down, ServerRole::Primary);

}  // namespace

TEST_CASE("only a server that is up and not in recovery claims to be primary") {
  CHECK(claims_primary(kPrimaryUp));
  CHECK_FALSE(claims_primary(kReplicaUp));
  CHECK_FALSE(claims_primary(kPrimaryDown));
  CHECK_FALSE(claims_primary(server(ServerHealth::Unknown, ServerRole::Primary)));
}

TEST_CASE("the serving primary is kept while it still claims the role") {
  // A promoted replica (index 1) serves; the configured primary comes back as primary too.
  const std::vector<ServerStatus> servers = {kPrimaryUp, kPrimaryUp};
  CHECK(choose_primary(servers, 1) == 1);
  CHECK(choose_primary(servers, 0) == 0);
}

TEST_CASE("without a serving primary, the first server that claims the role is chosen") {
  CHECK(choose_primary({kReplicaUp, kPrimaryUp, kPrimaryUp}, -1) == 1);
  // The configured primary (index 0) wins over a promoted replica.
  CHECK(choose_primary({kPrimaryUp, kPrimaryUp}, -1) == 0);
  // The serving one went down: a promoted replica takes over.
  CHECK(choose_primary({kPrimaryDown, kPrimaryUp}, 0) == 1);
}

TEST_CASE("with no server claiming the role, the choice stays where it was") {
  CHECK(choose_primary({kPrimaryDown, kReplicaUp}, 0) == 0);
  CHECK(choose_primary({kReplicaUp, kReplicaUp}, -1) == -1);
  CHECK(choose_primary({}, -1) == -1);
}

TEST_CASE("every other server claiming to be primary is refused") {
  std::vector<ServerStatus> servers = {kPrimaryUp, kReplicaUp, kPrimaryUp};
  CHECK(refuse_other_primaries(servers, 0) == 1);
  CHECK_FALSE(servers[0].refused);
  CHECK_FALSE(servers[1].refused);
  CHECK(servers[2].refused);
}

TEST_CASE("a lone primary refuses nobody") {
  std::vector<ServerStatus> servers = {kPrimaryUp, kReplicaUp, kPrimaryDown};
  CHECK(refuse_other_primaries(servers, 0) == 0);
  for (const ServerStatus& s : servers) CHECK_FALSE(s.refused);
}
