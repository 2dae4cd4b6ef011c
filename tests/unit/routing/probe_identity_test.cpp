// The application_name of probe connections: how sidecars of one entry find each other
// in pg_stat_activity.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "proxy/routing/probe.h"

using namespace pgsidecar::proxy;

TEST_CASE("a probe identity names the entry and the instance after a common prefix") {
  CHECK(fleet_prefix("app") == "pgsidecar-probe:app:");
  CHECK(probe_identity("app", "0123456789ab") == "pgsidecar-probe:app:0123456789ab");
  CHECK(probe_identity("app", "x").starts_with(fleet_prefix("app")));
  // One entry's prefix is never the start of another's.
  CHECK_FALSE(probe_identity("app2", "x").starts_with(fleet_prefix("app")));
}

TEST_CASE("instance ids are 12 hex digits and differ between calls") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = new_instance_id();
    CHECK(id.size() == 12);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(id);
  }
  CHECK(seen.size() == 100);
}

TEST_CASE("an identity always fits pg_stat_activity and survives its ASCII cleaning") {
  const std::string id = new_instance_id();
  for (const std::string& name : {std::string("app"), std::string(30, 'a'), std::string(31, 'a'), std::string(200, 'b'),
                                 std::string("a:b"), std::string("caf\xc3\xa9"), std::string("with space")}) {
    CAPTURE(name);
    const std::string identity = probe_identity(name, id);
    CHECK(identity.size() <= 63);
    CHECK(identity.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:~") ==
          std::string::npos);
    CHECK(identity.starts_with(fleet_prefix(name)));
  }
  // Hashed names stay apart.
  CHECK(fleet_prefix(std::string(31, 'a')) != fleet_prefix(std::string(31, 'b')));
  CHECK(fleet_prefix("a:b") != fleet_prefix("a;b"));
}
