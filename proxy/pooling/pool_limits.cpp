#include "proxy/pooling/pool_limits.h"

namespace pgsidecar::proxy {

namespace {

// Adds one to `counter` while it stays below `limit`.
bool increment_below(std::atomic<int>& counter, int limit) {
  int n = counter.load();
  while (n < limit) {
    if (counter.compare_exchange_weak(n, n + 1)) return true;
  }
  return false;
}

int64_t to_ms(PoolLimits::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

bool LoginGate::try_enter(int max_in_flight) {
  if (!increment_below(in_flight_, max_in_flight)) return false;
  const int now = in_flight_.load();
  int peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  return true;
}

void LoginGate::leave() { in_flight_.fetch_sub(1); }

void LoginGate::add_waiting(int delta) {
  waiting_.fetch_add(delta);
  if (delta > 0) queued_total_.fetch_add(static_cast<uint64_t>(delta));
}

void FleetBudget::set_count(int sidecars, int rank) {
  sidecars_.store(sidecars);
  share_.store(fleet_share(budget_, sidecars, rank, min_size_));
}

bool FleetBudget::try_reserve() { return increment_below(open_, share_.load()); }

bool FleetBudget::try_shed() {
  int n = open_.load();
  while (n > share_.load()) {
    if (open_.compare_exchange_weak(n, n - 1)) return true;
  }
  return false;
}

PoolLimits::PoolLimits(int size, std::shared_ptr<LoginGate> gate, std::shared_ptr<FleetBudget> fleet)
    : size_(size), gate_(std::move(gate)), fleet_(std::move(fleet)), effective_(size) {}

int PoolLimits::cap() const {
  const int own = std::min(size_, effective_.load());
  return fleet_ != nullptr ? std::min(own, fleet_->share()) : own;
}

bool PoolLimits::try_reserve(TimePoint now) {
  const int effective = effective_.load();
  int limit = std::min(size_, effective);
  // Held below its size by the database: once the backoff has passed, one login more
  // than the pool holds finds out whether there is room again.
  if (effective < size_ && to_ms(now) >= retry_at_ms_.load()) ++limit;
  if (!increment_below(open_, limit)) return false;
  if (fleet_ != nullptr && !fleet_->try_reserve()) {
    open_.fetch_sub(1);
    return false;
  }
  return true;
}

void PoolLimits::release() {
  open_.fetch_sub(1);
  if (fleet_ != nullptr) fleet_->release();
}

bool PoolLimits::try_shed() {
  if (fleet_ == nullptr || !fleet_->try_shed()) return false;
  open_.fetch_sub(1);
  return true;
}

void PoolLimits::capacity_refused(TimePoint now, std::string reason) {
  effective_.store(std::min(working_.load(), size_));
  const int64_t backoff = backoff_ms_.load();
  retry_at_ms_.store(to_ms(now) + backoff);
  backoff_ms_.store(std::min<int64_t>(backoff * 2, kCapacityRetryMax.count()));
  refusals_.fetch_add(1);
  std::lock_guard lock(mu_);
  last_refusal_ = std::move(reason);
}

void PoolLimits::login_succeeded() {
  const int working = working_.fetch_add(1) + 1;
  backoff_ms_.store(kCapacityRetryFirst.count());
  int e = effective_.load();
  while (e < size_ && !effective_.compare_exchange_weak(e, std::min(size_, std::max(e + 1, working)))) {
  }
}

void PoolLimits::working_closed() { working_.fetch_sub(1); }

std::string PoolLimits::last_refusal() const {
  std::lock_guard lock(mu_);
  return last_refusal_;
}

void PoolLimits::store_server_params(const ParamMap& params) {
  std::lock_guard lock(mu_);
  server_params_ = params;
  have_params_ = true;
}

bool PoolLimits::load_server_params(ParamMap& out) const {
  std::lock_guard lock(mu_);
  if (!have_params_) return false;
  out = server_params_;
  return true;
}

std::shared_ptr<PoolLimits> PoolRegistry::get(const PoolKey& key, const config::Database& db) {
  std::lock_guard lock(mu_);
  auto& slot = pools_[key];
  if (slot) return slot;
  auto& gate = gates_[key.server];
  if (!gate) gate = std::make_shared<LoginGate>();
  std::shared_ptr<FleetBudget> fleet;
  if (db.fleet_max_connections > 0) {
    auto& budget = fleets_[{key.database, key.server}];
    if (!budget) budget = std::make_shared<FleetBudget>(db.fleet_max_connections, db.pool.min_size);
    fleet = budget;
  }
  slot = std::make_shared<PoolLimits>(db.pool.size, gate, std::move(fleet));
  return slot;
}

}  // namespace pgsidecar::proxy
