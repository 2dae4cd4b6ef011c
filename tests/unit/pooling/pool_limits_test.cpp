// The limits a pool's shards share: capacity backpressure (the effective size), the login
// gate of a server, and this sidecar's part of a fleet budget.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>

#include "config/schema.h"
#include "proxy/pooling/pool_limits.h"

using namespace pgsidecar::proxy;
using namespace std::chrono_literals;

namespace {

const PoolLimits::TimePoint kStart{std::chrono::seconds(1000)};

// Reserves and logs in `n` connections.
void hold(PoolLimits& limits, int n, PoolLimits::TimePoint now) {
  for (int i = 0; i < n; ++i) {
    REQUIRE(limits.try_reserve(now));
    limits.login_succeeded();
  }
}

}  // namespace

TEST_CASE("a capacity refusal lowers the effective size to the working connections") {
  PoolLimits limits(10);
  hold(limits, 3, kStart);
  REQUIRE(limits.try_reserve(kStart));  // a fourth login, refused by the server
  limits.capacity_refused(kStart, "too many connections for role \"app\"");
  limits.release();
  CHECK(limits.effective() == 3);
  CHECK(limits.cap() == 3);
  CHECK(limits.capacity_limited());
  CHECK(limits.capacity_refusals() == 1);
  CHECK(limits.last_refusal() == "too many connections for role \"app\"");
  // Within the backoff nothing beyond what the pool holds may open.
  CHECK_FALSE(limits.try_reserve(kStart + kCapacityRetryFirst - 1ms));
}

TEST_CASE("after the backoff one login probes for room, and each success grows the pool by one") {
  PoolLimits limits(5);
  hold(limits, 2, kStart);
  limits.capacity_refused(kStart, "full");
  const auto later = kStart + kCapacityRetryFirst;
  REQUIRE(limits.try_reserve(later));  // the probe
  CHECK_FALSE(limits.try_reserve(later));  // only one at a time
  limits.login_succeeded();
  CHECK(limits.effective() == 3);
  REQUIRE(limits.try_reserve(later));  // room found: the next probe goes at once
  limits.login_succeeded();
  REQUIRE(limits.try_reserve(later));
  limits.login_succeeded();
  CHECK(limits.effective() == 5);
  CHECK_FALSE(limits.capacity_limited());
  CHECK_FALSE(limits.try_reserve(later));  // never beyond the configured size
}

TEST_CASE("refusals in a row double the backoff up to its maximum, a success resets it") {
  PoolLimits limits(5);
  auto now = kStart;
  auto wait = kCapacityRetryFirst;
  for (int i = 0; i < 8; ++i) {
    CAPTURE(i);
    limits.capacity_refused(now, "full");
    CHECK_FALSE(limits.try_reserve(now + wait - 1ms));
    REQUIRE(limits.try_reserve(now + wait));
    limits.release();
    now += wait;
    wait = std::min<std::chrono::milliseconds>(wait * 2, kCapacityRetryMax);
  }
  CHECK(wait == kCapacityRetryMax);
  REQUIRE(limits.try_reserve(now));
  limits.login_succeeded();
  limits.capacity_refused(now, "full");
  CHECK(limits.effective() == 1);
  CHECK(limits.try_reserve(now + kCapacityRetryFirst));
}

TEST_CASE("a pool that holds nothing when refused still probes after the backoff") {
  PoolLimits limits(4);
  limits.capacity_refused(kStart, "full");
  CHECK(limits.effective() == 0);
  CHECK_FALSE(limits.try_reserve(kStart));
  CHECK(limits.try_reserve(kStart + kCapacityRetryFirst));
}

TEST_CASE("working connections that close leave the effective size alone") {
  PoolLimits limits(4);
  hold(limits, 2, kStart);
  limits.capacity_refused(kStart, "full");
  limits.working_closed();
  limits.release();
  CHECK(limits.working() == 1);
  CHECK(limits.effective() == 2);
  CHECK(limits.try_reserve(kStart));  // back up to what the database allowed
  CHECK_FALSE(limits.try_reserve(kStart));
}

TEST_CASE("the login gate admits max logins at once, remembers its peak and counts queued logins") {
  LoginGate gate;
  CHECK(gate.try_enter(2));
  CHECK(gate.try_enter(2));
  CHECK_FALSE(gate.try_enter(2));
  CHECK(gate.try_enter(3));  // a pool with a larger limit on the same server
  CHECK(gate.in_flight() == 3);
  gate.leave();
  gate.leave();
  CHECK(gate.in_flight() == 1);
  CHECK(gate.peak() == 3);
  gate.add_waiting(5);
  gate.add_waiting(-2);
  gate.add_waiting(1);
  CHECK(gate.waiting() == 4);
  CHECK(gate.queued_total() == 6);
}

TEST_CASE("pools of one server share its login gate; pools of one entry on one server share its fleet budget") {
  PoolRegistry registry;
  pgsidecar::config::Database fleet_db;
  fleet_db.name = "app";
  fleet_db.pool.size = 20;
  fleet_db.fleet_max_connections = 30;
  pgsidecar::config::Database plain_db;
  plain_db.name = "other";
  const auto a = registry.get({"app", "alice", "db:5432/app"}, fleet_db);
  const auto b = registry.get({"app", "bob", "db:5432/app"}, fleet_db);
  const auto c = registry.get({"other", "alice", "db:5432/app"}, plain_db);
  const auto d = registry.get({"app", "alice", "replica:5432/app"}, fleet_db);
  CHECK(&a->gate() == &b->gate());
  CHECK(&a->gate() == &c->gate());
  CHECK(&a->gate() != &d->gate());
  REQUIRE(a->fleet() != nullptr);
  CHECK(a->fleet() == b->fleet());
  CHECK(c->fleet() == nullptr);
  CHECK(a->fleet() != d->fleet());
  CHECK(registry.get({"app", "alice", "db:5432/app"}, fleet_db) == a);
}

TEST_CASE("a fleet budget caps the pools of its entry together, at min_size until the fleet is counted") {
  auto fleet = std::make_shared<FleetBudget>(30, 1);
  PoolLimits alice(20, std::make_shared<LoginGate>(), fleet);
  PoolLimits bob(20, std::make_shared<LoginGate>(), fleet);
  CHECK(fleet->sidecars() == 0);
  CHECK(alice.cap() == 1);
  CHECK(alice.try_reserve(kStart));
  CHECK_FALSE(bob.try_reserve(kStart));
  fleet->set_count(4, 3);  // the last of four: 7
  CHECK(fleet->share() == 7);
  CHECK(alice.cap() == 7);
  for (int i = 0; i < 6; ++i) CHECK(bob.try_reserve(kStart));
  CHECK_FALSE(alice.try_reserve(kStart));
  CHECK_FALSE(bob.try_reserve(kStart));
  CHECK(fleet->open() == 7);
  CHECK(alice.open() + bob.open() == 7);
}

TEST_CASE("a fleet share that shrinks sheds connections one at a time, each exactly once") {
  auto fleet = std::make_shared<FleetBudget>(30, 1);
  fleet->set_count(2, 0);
  PoolLimits limits(20, std::make_shared<LoginGate>(), fleet);
  for (int i = 0; i < 15; ++i) REQUIRE(limits.try_reserve(kStart));
  CHECK_FALSE(limits.try_shed());
  fleet->set_count(3, 0);  // another sidecar: 10
  int shed = 0;
  while (limits.try_shed()) ++shed;
  CHECK(shed == 5);
  CHECK(limits.open() == 10);
  CHECK(fleet->open() == 10);
  fleet->set_count(1, 0);  // the others are gone: the whole budget, within size
  CHECK(limits.cap() == 20);
  CHECK(fleet->share() == 30);
}
