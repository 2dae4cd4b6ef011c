// The process: workers, the pools' shared limits, and the main thread's signal loop.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "config/schema.h"
#include "proxy/pool.h"

namespace pgsidecar::proxy {

class HealthMonitor;
class Worker;

class App {
 public:
  App(std::shared_ptr<const config::Config> config, std::string config_path);
  App(const App&) = delete;
  App& operator=(const App&) = delete;
  ~App();

  // Binds every listener, runs until SIGTERM/SIGINT, returns the exit code.
  int run();

  PoolRegistry& pools() { return pools_; }
  std::atomic<int>& client_count() { return client_count_; }
  int worker_count() const { return static_cast<int>(workers_.size()); }

  // Any worker thread: tell the shards of `key` on other workers.
  void broadcast_slot_freed(const PoolKey& key, int from_worker);
  void broadcast_server_wanted(const PoolKey& key, int from_worker);
  // Passive health detection: live traffic saw the server fail.
  void suspect(const std::string& server_key);
  HealthMonitor& monitor() { return *monitor_; }
  // Admin SWITCHOVER / reload: pause the database's new transactions, let in-flight ones
  // finish (bounded), repoint to `address`, resume. `done(message)` runs on some thread.
  void switchover(const std::string& database, const config::ServerAddress& address,
                  std::function<void(bool ok, std::string message)> done);
  // A CancelRequest arrived on some worker: route it to the worker owning the session.
  void route_cancel(int32_t virtual_pid, int32_t secret);

 private:
  void reload();  // SIGHUP

  std::shared_ptr<const config::Config> config_;
  std::string config_path_;
  PoolRegistry pools_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<HealthMonitor> monitor_;
  std::mutex switchover_mu_;
  std::vector<std::thread> switchovers_;
  std::atomic<int> client_count_{0};
};

}  // namespace pgsidecar::proxy
