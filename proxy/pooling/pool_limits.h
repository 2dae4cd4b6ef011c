// What every worker's shard of one pool shares: the pool's identity, its global limit on
// server connections, and how many clients wait on all workers. PoolLimits keeps the
// configured size exact and global: a server connection exists only while it holds one
// of `size` slots.
#pragma once

#include "proxy/pooling/layer.h"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

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

// Each worker is entitled to an even part of a pool's size, the first workers one more
// while the division leaves a remainder; beyond its share a worker only borrows.
constexpr int worker_share(int pool_size, int workers, int worker) {
  if (workers < 1) workers = 1;
  return pool_size / workers + (worker < pool_size % workers ? 1 : 0);
}

class PoolLimits {
 public:
  explicit PoolLimits(int size) : size_(size) {}
  bool try_reserve();  // one more server connection may exist
  void release();      // a server connection is gone
  int open() const { return open_.load(); }
  int size() const { return size_; }

  std::atomic<int> waiting{0};   // clients waiting on all workers
  std::atomic<int> starving{0};  // shards whose oldest waiter waited past kStarvingAfter

  // ParameterStatus values of the latest server login, reported to logging-in clients.
  void store_server_params(const ParamMap& params);
  bool load_server_params(ParamMap& out) const;

 private:
  const int size_;
  std::atomic<int> open_{0};
  mutable std::mutex mu_;
  ParamMap server_params_;
  bool have_params_ = false;
};

// The limits of every pool, shared by all workers; entries live as long as the process.
class PoolRegistry {
 public:
  std::shared_ptr<PoolLimits> get(const PoolKey& key, int size);
  template <typename F>
  void for_each(F&& f) {
    std::lock_guard lock(mu_);
    for (auto& [key, limits] : pools_) f(key, *limits);
  }

 private:
  std::mutex mu_;
  std::map<PoolKey, std::shared_ptr<PoolLimits>> pools_;
};

}  // namespace pgsidecar::proxy
