// The process: workers, the pools' shared limits, the health monitor, and the main
// thread's signal loop. It is the RuntimeServices the layers below use.
#pragma once

#include "proxy/runtime/layer.h"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <uv.h>

#include "config/schema.h"
#include "proxy/admin/runtime_stats.h"
#include "proxy/pooling/pool_limits.h"
#include "proxy/pooling/runtime_services.h"
#include "proxy/session/client_tls.h"

namespace pgsidecar::http {
class HttpServer;
}

namespace pgsidecar::proxy {

class HealthMonitor;
class Worker;

class App final : public RuntimeServices, public AdminServices {
 public:
  App(std::shared_ptr<const config::Config> config, std::string config_path);
  // [tls]'s context for client connections (null when off); false with `error`.
  static bool load_client_tls(const config::Config& config, std::shared_ptr<const ClientTlsContext>& out,
                              std::string& error);
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
  void route_cancel(int32_t virtual_pid, int32_t secret, std::function<void()> done) override;
  PoolRegistry& pools() override { return pools_; }
  std::atomic<int>& client_count() override { return client_count_; }
  bool pause(const std::string& database, bool paused) override;
  void switchover(const std::string& database, const config::ServerAddress& address,
                  std::chrono::milliseconds drain_bound, bool force,
                  std::function<void(bool ok, std::string message)> done) override;

  // AdminServices: safe from any thread.
  void gather(bool rows, std::function<void(RuntimeStats)> done) override;
  void reload() override;  // as SIGHUP: runs on the main thread
  bool kill(const std::string& database) override;

 private:
  void reload_now();  // SIGHUP, on the main thread
  int in_flight_on(const std::string& database, const std::string& server_key);
  bool start_http(std::string& error);
  std::string metrics_text();  // on an HTTP thread: gathers from every worker, bounded
  bool loops_alive(std::string& stale) const;
  bool databases_usable(std::string& why) const;
  void begin_shutdown(const char* signal_name);  // readiness fails now, the drain follows shutdown_delay
  static void on_stop_signal(uv_signal_t* h, int signum);
  static void on_reload_signal(uv_signal_t* h, int signum);
  static void on_reload_async(uv_async_t* h);
  static void on_shutdown_delay(uv_timer_t* t);

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
  std::atomic<bool> listening_{false};
  std::atomic<bool> draining_{false};
  std::mutex switchover_count_mu_;
  std::map<std::string, uint64_t> switchover_count_;  // by database
  std::unique_ptr<http::HttpServer> http_;
  // The main thread's loop: signals, reload requests and the shutdown delay.
  uv_loop_t main_loop_{};
  uv_signal_t sigterm_{};
  uv_signal_t sigint_{};
  uv_signal_t sighup_{};
  uv_async_t reload_async_{};
  std::mutex reload_mu_;     // reload_open_: reload_async_ may be sent to
  bool reload_open_ = false;
  uv_timer_t shutdown_timer_{};
};

}  // namespace pgsidecar::proxy
