// What every worker's shard of one pool shares: the pool's identity, its global limit on
// server connections, and how many clients wait on all workers. PoolLimits keeps the
// limit exact and global: a server connection exists only while it holds one of the
// pool's slots. The limit is the smallest of three (docs/pooling.md):
//   - the configured `size`;
//   - the effective size: after the database refused a login for lack of room, what the
//     pool held then, growing back by one with each login that succeeds;
//   - the fleet share: this sidecar's part of its entry's fleet_max_connections on the
//     server (FleetBudget, shared by the entry's pools of every user).
// Server logins in flight are limited per server across all pools (LoginGate).
// Everything here is atomics, plus one mutex for the strings a login leaves behind.
#pragma once

#include "proxy/pooling/layer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config/schema.h"
#include "proxy/pooling/parameters.h"

namespace pgsidecar::proxy {

struct PoolKey {
  std::string database;  // the [[databases]] name
  std::string user;      // the client's user
  std::string server;    // server_key() of the server the pool connects to
  bool operator<(const PoolKey& o) const {
    if (database != o.database) return database < o.database;
    if (user != o.user) return user < o.user;
    return server < o.server;
  }
};

// A worker's client waiting this long at the global limit makes other workers hand over
// connections they are not using.
inline constexpr std::chrono::milliseconds kStarvingAfter{50};

// After the database refused a login for lack of room, the next login that probes for
// room waits this long, doubling with each refusal in a row up to the maximum.
inline constexpr std::chrono::milliseconds kCapacityRetryFirst{100};
inline constexpr std::chrono::milliseconds kCapacityRetryMax{2000};

// Each worker is entitled to an even part of a pool's size, the first workers one more
// while the division leaves a remainder; beyond its share a worker only borrows.
constexpr int worker_share(int pool_size, int workers, int worker) {
  if (workers < 1) workers = 1;
  return pool_size / workers + (worker < pool_size % workers ? 1 : 0);
}

// This sidecar's part of a fleet budget: an even part for each of `sidecars` live
// sidecars, one more for those whose identity sorts first (`rank` of them sort before
// this one) while the division leaves a remainder, so the shares add up to the budget;
// never below `min_size`.
constexpr int fleet_share(int budget, int sidecars, int rank, int min_size) {
  if (sidecars < 1) sidecars = 1;
  const int share = budget / sidecars + (rank < budget % sidecars ? 1 : 0);
  return std::max(share, min_size);
}

// Server logins in flight to one server, counted across every pool and worker, so that
// a cold start or a recovery never opens more than max_concurrent_logins at once.
class LoginGate {
 public:
  bool try_enter(int max_in_flight);  // a login may start
  void leave();                       // it ended: logged in, refused or closed
  int in_flight() const { return in_flight_.load(); }
  int peak() const { return peak_.load(); }  // the most in flight at once so far

  // Logins that pools want but the gate holds back: each shard reports changes in what
  // it holds back; a rise counts toward queued_total().
  void add_waiting(int delta);
  int waiting() const { return waiting_.load(); }
  uint64_t queued_total() const { return queued_total_.load(); }

 private:
  std::atomic<int> in_flight_{0};
  std::atomic<int> peak_{0};
  std::atomic<int> waiting_{0};
  std::atomic<uint64_t> queued_total_{0};
};

// This sidecar's part of one [[databases]] entry's fleet_max_connections on one server,
// shared by the entry's pools of every user. Until the fleet has been counted the share
// is min_size: a sidecar that cannot see the fleet yet takes the least.
class FleetBudget {
 public:
  FleetBudget(int budget, int min_size) : budget_(budget), min_size_(min_size), share_(min_size) {}
  // The health monitor counted `sidecars` live sidecars, `rank` of them sorting before this one.
  void set_count(int sidecars, int rank);
  int budget() const { return budget_; }
  int share() const { return share_.load(); }
  int sidecars() const { return sidecars_.load(); }  // 0: not counted yet
  int open() const { return open_.load(); }

  bool try_reserve();
  void release() { open_.fetch_sub(1); }
  // True (and the slot given back at once) when this sidecar holds more than its share.
  bool try_shed();

 private:
  const int budget_;
  const int min_size_;
  std::atomic<int> share_;
  std::atomic<int> sidecars_{0};
  std::atomic<int> open_{0};
};

class PoolLimits {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit PoolLimits(int size, std::shared_ptr<LoginGate> gate = std::make_shared<LoginGate>(),
                      std::shared_ptr<FleetBudget> fleet = nullptr);

  // One more server connection may exist: below the limit, or, after a capacity refusal
  // whose backoff has passed at `now`, one beyond the effective size to probe for room.
  bool try_reserve(TimePoint now);
  void release();  // a server connection is gone
  // A connection of a pool above its fleet share gives its slot back now; the caller
  // closes it without calling release().
  bool try_shed();

  int open() const { return open_.load(); }
  int size() const { return size_; }                      // as configured
  int effective() const { return effective_.load(); }     // what the database let us reach
  int cap() const;                                        // the limit in force
  LoginGate& gate() { return *gate_; }
  const LoginGate& gate() const { return *gate_; }
  FleetBudget* fleet() { return fleet_.get(); }
  const FleetBudget* fleet() const { return fleet_.get(); }

  // Capacity backpressure. The database refused a login for lack of room: the effective
  // size becomes what the pool holds, and the next probing login waits for the backoff.
  void capacity_refused(TimePoint now, std::string reason);
  void login_succeeded();  // one more working connection; the effective size grows by one
  void working_closed();   // a logged-in connection is gone
  int working() const { return working_.load(); }
  bool capacity_limited() const { return effective_.load() < size_; }
  uint64_t capacity_refusals() const { return refusals_.load(); }
  std::string last_refusal() const;  // the server's message

  std::atomic<int> waiting{0};   // clients waiting on all workers
  std::atomic<int> starving{0};  // shards whose oldest waiter waited past kStarvingAfter

  // ParameterStatus values of the latest server login, reported to logging-in clients.
  void store_server_params(const ParamMap& params);
  bool load_server_params(ParamMap& out) const;

 private:
  const int size_;
  std::shared_ptr<LoginGate> gate_;
  std::shared_ptr<FleetBudget> fleet_;  // null: the entry has no fleet budget
  std::atomic<int> open_{0};
  std::atomic<int> working_{0};
  std::atomic<int> effective_;
  std::atomic<int64_t> retry_at_ms_{0};  // steady clock: no probing login before
  std::atomic<int64_t> backoff_ms_{kCapacityRetryFirst.count()};
  std::atomic<uint64_t> refusals_{0};
  mutable std::mutex mu_;
  ParamMap server_params_;
  bool have_params_ = false;
  std::string last_refusal_;
};

// The limits of every pool, shared by all workers; entries live as long as the process.
// Pools of one server share its LoginGate; pools of one entry on one server share its
// FleetBudget.
class PoolRegistry {
 public:
  std::shared_ptr<PoolLimits> get(const PoolKey& key, const config::Database& db);
  template <typename F>
  void for_each(F&& f) {
    std::lock_guard lock(mu_);
    for (auto& [key, limits] : pools_) f(key, *limits);
  }

 private:
  std::mutex mu_;
  std::map<PoolKey, std::shared_ptr<PoolLimits>> pools_;
  std::map<std::string, std::shared_ptr<LoginGate>> gates_;  // by server key
  std::map<std::pair<std::string, std::string>, std::shared_ptr<FleetBudget>> fleets_;  // (entry, server)
};

}  // namespace pgsidecar::proxy
