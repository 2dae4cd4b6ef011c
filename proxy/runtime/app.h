// The process: workers, the pools' shared limits, the health monitor, and the main
// thread's signal loop. It is the RuntimeServices the layers below use.
#pragma once

#include "proxy/runtime/layer.h"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/schema.h"
#include "proxy/pooling/pool_limits.h"
#include "proxy/pooling/runtime_services.h"

namespace pgsidecar::proxy {

class HealthMonitor;
class Worker;

class App final : public RuntimeServices {
 public:
  App(std::shared_ptr<const config::Config> config, std::string config_path);
  App(const App&) = delete;
  App& operator=(const App&) = delete;
  ~App() override;

  // Binds every listener, runs until SIGTERM/SIGINT, returns the exit code.
  int run();

  // RuntimeServices: safe from any thread.
  int worker_count() const override { return static_cast<int>(workers_.size()); }
  void suspect(const std::string& server_key) override;
  void broadcast_slot_freed(const PoolKey& key, int from_worker) override;
  void broadcast_server_wanted(const PoolKey& key, int from_worker) override;
  void broadcast_login_slot_freed(const std::string& server_key) override;
  void route_cancel(int32_t virtual_pid, int32_t secret) override;
  PoolRegistry& pools() override { return pools_; }
  std::atomic<int>& client_count() override { return client_count_; }
  bool pause(const std::string& database, bool paused) override;
  void switchover(const std::string& database, const config::ServerAddress& address,
                  std::chrono::milliseconds drain_bound, std::function<void(bool ok, std::string message)> done) override;

 private:
  void reload();  // SIGHUP, on the main thread
  int in_flight_on(const std::string& database, const std::string& server_key);

  // The current snapshot: read and replaced on the main thread only. Workers get their
  // own copy through their mailbox; sessions keep the one they logged in with.
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
