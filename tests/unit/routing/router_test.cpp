// route_transaction() and usable_replica() on hand-built topologies: where writes and
// reads go while all is healthy, while the primary is down, and around lagging, refused
// and avoided servers.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "config/schema.h"
#include "proxy/routing/router.h"
#include "proxy/routing/topology.h"

using namespace pgsidecar::proxy;
namespace config = pgsidecar::config;

using config::PrimaryDownPolicy;
using config::ReadPolicy;

namespace {

// One [[databases]] entry and what the health monitor knows of it: the primary at [0],
// then the replicas, every server up and fresh unless a test says otherwise.
struct Cluster {
  config::Database db;
  DatabaseTopology topology;

  Cluster(int replicas, ReadPolicy reads, PrimaryDownPolicy on_primary_down = PrimaryDownPolicy::ReplicaReads) {
    db.name = "app";
    db.reads = reads;
    db.on_primary_down = on_primary_down;
    db.max_replica_lag = std::chrono::seconds(5);
    topology.name = "app";
    topology.servers.push_back(status(ServerRole::Primary, 5432));
    for (int i = 0; i < replicas; ++i)
      topology.servers.push_back(status(ServerRole::Replica, static_cast<uint16_t>(5433 + i)));
    topology.primary = 0;
  }

  ServerStatus& server(int index) { return topology.servers.at(static_cast<std::size_t>(index)); }

  Route route(Intent intent, unsigned rotation = 0, int avoid = -1) const {
    return route_transaction(intent, db, topology, avoid, rotation);
  }

  static ServerStatus status(ServerRole role, uint16_t port) {
    ServerStatus s;
    s.address.host = "10.0.0.5";
    s.address.port = port;
    s.address.dbname = "app";
    s.key = server_key(s.address);
    s.role = role;
    s.health = ServerHealth::Up;
    s.last_probe_ok = true;
    return s;
  }
};

// A route as one comparable line, so a failed check says where the transaction went.
std::string shown(const Route& r) {
  switch (r.kind) {
    case Route::Kind::Server: return "server " + std::to_string(r.server);
    case Route::Kind::WaitForPrimary: return "wait for primary";
    case Route::Kind::Paused: return "paused";
    case Route::Kind::Fail: return "fail";
  }
  return "?";
}

}  // namespace

TEST_CASE("writes go to the primary whatever the read policy") {
  for (ReadPolicy reads : {ReadPolicy::Primary, ReadPolicy::Replicas, ReadPolicy::Any}) {
    CAPTURE(config::to_string(reads));
    Cluster c(2, reads);
    for (unsigned rotation = 0; rotation < 6; ++rotation) {
      CAPTURE(rotation);
      const Route r = c.route(Intent::Write, rotation);
      CHECK(shown(r) == "server 0");
      CHECK(r.failure == Route::Failure::None);
    }
  }
}

TEST_CASE("a primary not probed yet takes writes: the connect attempt will tell") {
  Cluster c(1, ReadPolicy::Primary);
  c.server(0).health = ServerHealth::Unknown;
  c.server(0).role = ServerRole::Unknown;
  CHECK(shown(c.route(Intent::Write)) == "server 0");
}

TEST_CASE("writes follow the primary index, not the first server, after a promotion") {
  Cluster c(2, ReadPolicy::Replicas);
  c.server(0).health = ServerHealth::Down;
  c.server(1).role = ServerRole::Primary;
  c.topology.primary = 1;
  CHECK(shown(c.route(Intent::Write)) == "server 1");
  // The promoted server is no replica any more: reads go to the one replica left.
  for (unsigned rotation = 0; rotation < 4; ++rotation) CHECK(shown(c.route(Intent::Read, rotation)) == "server 2");
}

TEST_CASE("reads = primary sends reads to the primary even with healthy replicas") {
  Cluster c(2, ReadPolicy::Primary);
  for (unsigned rotation = 0; rotation < 6; ++rotation) {
    CAPTURE(rotation);
    CHECK(shown(c.route(Intent::Read, rotation)) == "server 0");
  }
}

TEST_CASE("reads = replicas sends reads to replicas only while one is usable") {
  Cluster c(2, ReadPolicy::Replicas);
  for (unsigned rotation = 0; rotation < 6; ++rotation) {
    CAPTURE(rotation);
    CHECK(c.route(Intent::Read, rotation).server != 0);
  }
  // Without a usable replica the primary is the fallback.
  c.server(1).health = ServerHealth::Down;
  c.server(2).lag_seconds = 60;
  for (unsigned rotation = 0; rotation < 4; ++rotation) CHECK(shown(c.route(Intent::Read, rotation)) == "server 0");
}

TEST_CASE("rotation spreads reads evenly over the replicas") {
  Cluster c(3, ReadPolicy::Replicas);
  std::map<int, int> reads_per_server;
  for (unsigned rotation = 0; rotation < 300; ++rotation) ++reads_per_server[c.route(Intent::Read, rotation).server];
  CHECK(reads_per_server == std::map<int, int>{{1, 100}, {2, 100}, {3, 100}});
  // Consecutive rotations go to different replicas.
  CHECK(c.route(Intent::Read, 7).server != c.route(Intent::Read, 8).server);
}

TEST_CASE("reads = any alternates between the primary and a replica") {
  Cluster c(1, ReadPolicy::Any);
  for (unsigned rotation = 0; rotation < 6; ++rotation) {
    CAPTURE(rotation);
    CHECK(shown(c.route(Intent::Read, rotation)) == (rotation % 2 == 0 ? "server 0" : "server 1"));
  }
  // Without a usable replica every read goes to the primary.
  c.server(1).health = ServerHealth::Down;
  for (unsigned rotation = 0; rotation < 4; ++rotation) CHECK(shown(c.route(Intent::Read, rotation)) == "server 0");
}

TEST_CASE("reads = any with two replicas gives every odd rotation to the second replica") {
  // The rotation that decides "primary or replica" (its parity) also picks the replica, so
  // with an even number of replicas only the odd-indexed candidates get reads. This pins
  // what the router does today; the first replica idles while the primary is up.
  Cluster c(2, ReadPolicy::Any);
  std::map<int, int> reads_per_server;
  for (unsigned rotation = 0; rotation < 100; ++rotation) ++reads_per_server[c.route(Intent::Read, rotation).server];
  CHECK(reads_per_server == std::map<int, int>{{0, 50}, {2, 50}});
}

TEST_CASE("reads = any uses only replicas while the primary is down") {
  Cluster c(2, ReadPolicy::Any);
  c.server(0).health = ServerHealth::Down;
  std::map<int, int> reads_per_server;
  for (unsigned rotation = 0; rotation < 10; ++rotation) ++reads_per_server[c.route(Intent::Read, rotation).server];
  CHECK(reads_per_server == std::map<int, int>{{1, 5}, {2, 5}});
}

TEST_CASE("with the primary down and replica_reads, reads go to a healthy fresh replica and writes wait") {
  for (ReadPolicy reads : {ReadPolicy::Primary, ReadPolicy::Replicas, ReadPolicy::Any}) {
    CAPTURE(config::to_string(reads));
    Cluster c(3, reads, PrimaryDownPolicy::ReplicaReads);
    c.server(0).health = ServerHealth::Down;
    c.server(1).health = ServerHealth::Down;
    c.server(2).lag_seconds = 30;  // behind: no reads
    for (unsigned rotation = 0; rotation < 4; ++rotation) {
      CAPTURE(rotation);
      CHECK(shown(c.route(Intent::Read, rotation)) == "server 3");
      const Route w = c.route(Intent::Write, rotation);
      CHECK(shown(w) == "wait for primary");
      CHECK(w.server == -1);
      CHECK(w.failure == Route::Failure::None);
    }
  }
}

TEST_CASE("with the primary down and replica_reads but no usable replica, reads fail: no healthy server") {
  for (ReadPolicy reads : {ReadPolicy::Primary, ReadPolicy::Replicas, ReadPolicy::Any}) {
    CAPTURE(config::to_string(reads));
    Cluster c(2, reads, PrimaryDownPolicy::ReplicaReads);
    c.server(0).health = ServerHealth::Down;
    c.server(1).health = ServerHealth::Down;
    c.server(2).refused = true;
    const Route r = c.route(Intent::Read);
    CHECK(shown(r) == "fail");
    CHECK(r.failure != Route::Failure::None);
    CHECK(r.failure == Route::Failure::NoHealthyServer);
    CHECK(r.server == -1);
    // Writes still wait for the primary.
    CHECK(shown(c.route(Intent::Write)) == "wait for primary");
  }
}

TEST_CASE("with the primary down and on_primary_down = fail, writes and primary reads fail at once") {
  Cluster c(2, ReadPolicy::Primary, PrimaryDownPolicy::Fail);
  c.server(0).health = ServerHealth::Down;
  const Route w = c.route(Intent::Write);
  CHECK(shown(w) == "fail");
  CHECK(w.failure == Route::Failure::PrimaryUnavailable);
  const Route r = c.route(Intent::Read);
  CHECK(shown(r) == "fail");
  CHECK(r.failure == Route::Failure::PrimaryUnavailable);
}

TEST_CASE("with on_primary_down = fail, reads = replicas or any still use a replica while the primary is down") {
  // docs/failover.md says "fail" fails reads at once; the router lets the read policy pick
  // a replica first, so only reads = primary fail. This pins the router's behaviour.
  for (ReadPolicy reads : {ReadPolicy::Replicas, ReadPolicy::Any}) {
    CAPTURE(config::to_string(reads));
    Cluster c(1, reads, PrimaryDownPolicy::Fail);
    c.server(0).health = ServerHealth::Down;
    CHECK(shown(c.route(Intent::Read, 0)) == "server 1");
    CHECK(shown(c.route(Intent::Read, 1)) == "server 1");
    CHECK(shown(c.route(Intent::Write)) == "fail");
    // No replica either: the short message, the primary being the only cause named.
    c.server(1).health = ServerHealth::Down;
    const Route r = c.route(Intent::Read);
    CHECK(shown(r) == "fail");
    CHECK(r.failure == Route::Failure::PrimaryUnavailable);
  }
}

TEST_CASE("a database without a primary routes like one whose primary is down") {
  Cluster waits(1, ReadPolicy::Primary, PrimaryDownPolicy::ReplicaReads);
  waits.server(0).role = ServerRole::Replica;  // demoted, nothing promoted yet
  waits.server(0).health = ServerHealth::Up;
  waits.topology.primary = -1;
  CHECK(shown(waits.route(Intent::Write)) == "wait for primary");
  // Both servers are now replicas, and both take reads.
  CHECK(shown(waits.route(Intent::Read, 0)) == "server 0");
  CHECK(shown(waits.route(Intent::Read, 1)) == "server 1");

  Cluster fails(1, ReadPolicy::Primary, PrimaryDownPolicy::Fail);
  fails.topology.primary = -1;
  CHECK(shown(fails.route(Intent::Write)) == "fail");
  CHECK(shown(fails.route(Intent::Read)) == "fail");
}

TEST_CASE("a replica over max_replica_lag is not used; one exactly at it is") {
  Cluster c(1, ReadPolicy::Replicas);
  c.server(1).lag_seconds = 5.001;
  CHECK_FALSE(usable_replica(c.server(1), c.db));
  CHECK(shown(c.route(Intent::Read)) == "server 0");

  c.server(1).lag_seconds = 5.0;
  CHECK(usable_replica(c.server(1), c.db));
  CHECK(shown(c.route(Intent::Read)) == "server 1");

  // The limit is the entry's own.
  c.db.max_replica_lag = std::chrono::milliseconds(4999);
  CHECK_FALSE(usable_replica(c.server(1), c.db));
  CHECK(shown(c.route(Intent::Read)) == "server 0");
}

TEST_CASE("usable_replica wants a replica that is up, fresh and not refused") {
  Cluster c(1, ReadPolicy::Replicas);
  ServerStatus s = c.server(1);
  CHECK(usable_replica(s, c.db));

  SUBCASE("down") { s.health = ServerHealth::Down; }
  SUBCASE("not probed yet") { s.health = ServerHealth::Unknown; }
  SUBCASE("a primary") { s.role = ServerRole::Primary; }
  SUBCASE("role unknown") { s.role = ServerRole::Unknown; }
  SUBCASE("refused") { s.refused = true; }
  SUBCASE("behind") { s.lag_seconds = 6; }
  CHECK_FALSE(usable_replica(s, c.db));
}

TEST_CASE("a refused server is never used") {
  // A refused primary takes neither writes nor reads.
  Cluster refused_primary(1, ReadPolicy::Primary);
  refused_primary.server(0).refused = true;
  CHECK(shown(refused_primary.route(Intent::Write)) == "wait for primary");
  CHECK(shown(refused_primary.route(Intent::Read)) == "server 1");

  // A refused replica gets no reads, whatever the rotation.
  Cluster refused_replica(2, ReadPolicy::Replicas);
  refused_replica.server(1).refused = true;
  for (unsigned rotation = 0; rotation < 6; ++rotation) {
    CAPTURE(rotation);
    CHECK(shown(refused_replica.route(Intent::Read, rotation)) == "server 2");
  }
  refused_replica.server(2).refused = true;
  CHECK(shown(refused_replica.route(Intent::Read)) == "server 0");
}

TEST_CASE("avoid skips the server a read just failed on") {
  SUBCASE("a replica: the other replica takes every read") {
    Cluster c(2, ReadPolicy::Replicas);
    for (unsigned rotation = 0; rotation < 6; ++rotation) {
      CAPTURE(rotation);
      CHECK(shown(c.route(Intent::Read, rotation, 1)) == "server 2");
    }
  }
  SUBCASE("the only replica: the primary takes the read") {
    Cluster c(1, ReadPolicy::Replicas);
    CHECK(shown(c.route(Intent::Read, 0, 1)) == "server 0");
  }
  SUBCASE("the primary with replica_reads: a replica takes the read") {
    Cluster c(1, ReadPolicy::Primary, PrimaryDownPolicy::ReplicaReads);
    CHECK(shown(c.route(Intent::Read, 0, 0)) == "server 1");
  }
  SUBCASE("the primary with fail: the read fails") {
    Cluster c(1, ReadPolicy::Primary, PrimaryDownPolicy::Fail);
    const Route r = c.route(Intent::Read, 0, 0);
    CHECK(shown(r) == "fail");
    CHECK(r.failure == Route::Failure::PrimaryUnavailable);
  }
  SUBCASE("the primary under reads = any: only the replica is left") {
    Cluster c(1, ReadPolicy::Any);
    for (unsigned rotation = 0; rotation < 4; ++rotation)
      CHECK(shown(c.route(Intent::Read, rotation, 0)) == "server 1");
  }
}

TEST_CASE("a paused database pauses reads and writes, healthy or not") {
  Cluster c(1, ReadPolicy::Replicas);
  c.topology.paused = true;
  for (Intent intent : {Intent::Read, Intent::Write}) {
    const Route r = c.route(intent);
    CHECK(shown(r) == "paused");
    CHECK(r.server == -1);
    CHECK(r.failure == Route::Failure::None);
  }
  c.server(0).health = ServerHealth::Down;
  c.server(1).health = ServerHealth::Down;
  CHECK(shown(c.route(Intent::Read)) == "paused");
  CHECK(shown(c.route(Intent::Write)) == "paused");
}

TEST_CASE("with no usable server, reads fail under either policy") {
  for (PrimaryDownPolicy down : {PrimaryDownPolicy::ReplicaReads, PrimaryDownPolicy::Fail}) {
    CAPTURE(config::to_string(down));
    for (ReadPolicy reads : {ReadPolicy::Primary, ReadPolicy::Replicas, ReadPolicy::Any}) {
      CAPTURE(config::to_string(reads));
      Cluster c(2, reads, down);
      c.server(0).health = ServerHealth::Down;
      c.server(1).health = ServerHealth::Down;
      c.server(2).lag_seconds = 100;
      const Route r = c.route(Intent::Read);
      CHECK(r.kind == Route::Kind::Fail);
      CHECK(r.failure != Route::Failure::None);
      CHECK(r.failure == (down == PrimaryDownPolicy::Fail ? Route::Failure::PrimaryUnavailable : Route::Failure::NoHealthyServer));
    }
  }
}

TEST_CASE("a primary not probed yet gives reads to a replica known to be up") {
  // Just started with the primary down or hung: reads must not wait for its first probe.
  Cluster c(1, ReadPolicy::Primary);
  c.server(0).health = ServerHealth::Unknown;
  CHECK(shown(c.route(Intent::Read)) == "server 1");
  CHECK(shown(c.route(Intent::Write)) == "server 0");
  // Without a replica known to be up, the primary is tried.
  c.server(1).health = ServerHealth::Unknown;
  CHECK(shown(c.route(Intent::Read)) == "server 0");
  // With on_primary_down = "fail" reads stay with the read policy.
  Cluster fail(1, ReadPolicy::Primary, PrimaryDownPolicy::Fail);
  fail.server(0).health = ServerHealth::Unknown;
  CHECK(shown(fail.route(Intent::Read)) == "server 0");
}
