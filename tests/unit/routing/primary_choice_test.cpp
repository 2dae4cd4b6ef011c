// Which server takes writes, from what the servers report of themselves.
#include <doctest/doctest.h>

#include <string>
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

ServerStatus primary_on(int timeline, const char* key) {
  ServerStatus s = kPrimaryUp;
  s.timeline = timeline;
  s.key = key;
  return s;
}

}  // namespace

TEST_CASE("only a server that is up and not in recovery claims to be primary") {
  CHECK(claims_primary(kPrimaryUp));
  CHECK_FALSE(claims_primary(kReplicaUp));
  CHECK_FALSE(claims_primary(kPrimaryDown));
  CHECK_FALSE(claims_primary(server(ServerHealth::Unknown, ServerRole::Primary)));
}

TEST_CASE("of two primaries the newest timeline wins, whatever was chosen before") {
  // The replica (index 1) was promoted to timeline 2; the configured primary came back as
  // a primary on timeline 1 (restarted, not rewound): writes must stay on the promoted one.
  const std::vector<ServerStatus> servers = {primary_on(1, "old"), primary_on(2, "promoted")};
  CHECK(choose_primary(servers, 1) == 1);
  CHECK(choose_primary(servers, 0) == 1);   // a sidecar that still served the old one
  CHECK(choose_primary(servers, -1) == 1);  // one just started
}

TEST_CASE("on the same timeline the configured order decides, whatever was chosen before") {
  const std::vector<ServerStatus> servers = {kReplicaUp, primary_on(1, "a"), primary_on(1, "b")};
  CHECK(choose_primary(servers, -1) == 1);
  CHECK(choose_primary(servers, 2) == 1);
  CHECK(choose_primary({kPrimaryUp, kPrimaryUp}, 1) == 0);
  // The serving one went down: a promoted replica takes over.
  CHECK(choose_primary({kPrimaryDown, kPrimaryUp}, 0) == 1);
}

TEST_CASE("a refused primary says why") {
  std::vector<ServerStatus> servers = {primary_on(1, "old"), primary_on(2, "promoted")};
  REQUIRE(refuse_other_primaries(servers, 1) == 1);
  CHECK(servers[0].refused);
  CHECK(servers[0].refused_reason.find("newer timeline (2 > 1)") != std::string::npos);
  std::vector<ServerStatus> tie = {primary_on(3, "first"), primary_on(3, "second")};
  REQUIRE(refuse_other_primaries(tie, 0) == 1);
  CHECK(tie[1].refused_reason.find("comes first in the configuration") != std::string::npos);
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
