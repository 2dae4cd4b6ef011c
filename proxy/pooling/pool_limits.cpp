#include "proxy/pooling/pool_limits.h"

namespace pgsidecar::proxy {

bool PoolLimits::try_reserve() {
  int open = open_.load();
  while (open < size_) {
    if (open_.compare_exchange_weak(open, open + 1)) return true;
  }
  return false;
}

void PoolLimits::release() { open_.fetch_sub(1); }

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

std::shared_ptr<PoolLimits> PoolRegistry::get(const PoolKey& key, int size) {
  std::lock_guard lock(mu_);
  auto& slot = pools_[key];
  if (!slot) slot = std::make_shared<PoolLimits>(size);
  return slot;
}

}  // namespace pgsidecar::proxy
