// One event-loop thread. A worker owns its listeners, client sessions, server connections
// and pool shards; the hot path touches nothing else. Other threads reach it only through
// its loop's mailbox. It is what its sessions see of the runtime (SessionHost) and how
// its pools find the sessions waiting in them (LesseeDirectory).
#pragma once

#include "proxy/runtime/layer.h"

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/schema.h"
#include "proxy/core/ids.h"
#include "proxy/admin/runtime_stats.h"
#include "proxy/io/loop.h"
#include "proxy/pooling/pool_shard.h"
#include "proxy/pooling/runtime_services.h"
#include "proxy/routing/topology.h"
#include "proxy/session/client_session.h"
#include "proxy/session/session_host.h"
#include "proxy/session/session_resources.h"

namespace pgsidecar::proxy {

class Listener;

// Virtual BackendKeyData process ids carry the worker id, so any worker can route a
// CancelRequest: bits 24..30 the worker, bits 0..23 random and unique among the worker's
// live clients (never 0).
inline constexpr int kVirtualPidWorkerShift = 24;
inline constexpr uint32_t kVirtualPidWorkerMask = 0x7f;
inline constexpr uint32_t kVirtualPidLowMask = 0xffffff;
inline constexpr int kMaxWorkers = static_cast<int>(kVirtualPidWorkerMask) + 1;
constexpr int32_t make_virtual_pid(int worker, uint32_t low) {
  return static_cast<int32_t>(((static_cast<uint32_t>(worker) & kVirtualPidWorkerMask) << kVirtualPidWorkerShift) |
                              (low & kVirtualPidLowMask));
}
constexpr int worker_of_virtual_pid(int32_t pid) {
  return static_cast<int>((static_cast<uint32_t>(pid) >> kVirtualPidWorkerShift) & kVirtualPidWorkerMask);
}

class Worker final : public SessionHost, public LesseeDirectory {
 public:
  Worker(RuntimeServices& runtime, AdminServices& admin, int id, std::shared_ptr<const config::Config> config);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  // Binds this worker's listeners (on the calling thread, before start) — false on error.
  bool listen(std::string& error);
  void start();  // runs the loop on a new thread
  void join();
  void post(uv::Mailbox::Task task) { loop_.post(std::move(task)); }
  void request_stop();  // any thread: stop accepting, close clients, end the loop

  // Loop thread only from here on.
  int id() const { return loop_.id(); }
  void accept_client(uv_stream_t* listener, bool is_tcp);
  ClientSession* find_session_by_pid(int32_t virtual_pid);
  PoolShard* find_pool(const PoolKey& key);
  template <typename F>
  void for_each_pool(F&& f) {
    for (auto& [key, pool] : pools_) f(*pool);
  }
  void set_topology(std::shared_ptr<const TopologySnapshot> snapshot);
  // A reload (also the start): the new snapshot, and the TLS context new clients get.
  void set_config(std::shared_ptr<const config::Config> config, std::shared_ptr<const ClientTlsContext> tls);
  std::size_t session_count() const { return sessions_.size(); }
  // This worker's part of the runtime's statistics (on the loop thread).
  void collect(RuntimeStats& out, bool rows);
  // KILL db: every client of `database` gets FATAL now, its idle servers close.
  void kill(const std::string& database);
  // Called every tick: the loop turns (liveness for /healthz).
  std::atomic<int64_t>& heartbeat() { return heartbeat_; }

  // SessionHost
  io::Loop& loop() override { return loop_; }
  RuntimeServices& runtime() override { return runtime_; }
  AdminServices& admin() override { return admin_; }
  SessionResources& resources() override { return resources_; }
  std::shared_ptr<const config::Config> current_config() const override { return config_; }
  std::shared_ptr<const ClientTlsContext> client_tls() const override { return client_tls_; }
  const TopologySnapshot& topology() const override { return *topology_; }
  PoolShard& pool_for(const std::shared_ptr<const config::Config>& config, const config::Database& database,
                      const config::User& user, const config::ServerAddress& server) override;
  void wait_for_route(SessionId id, std::chrono::steady_clock::time_point deadline) override;
  void cancel_route_wait(SessionId id) override;
  void resume_later(SessionId id) override;
  ClientSession* find_session(SessionId id) override;
  void forget(ClientSession& session) override;  // frees it

  // LesseeDirectory
  ServerLessee* find_lessee(SessionId id) override { return find_session(id); }

 private:
  void fence_sessions();  // set_topology: session-mode clients on a server that left the topology
  static void on_tick(uv_timer_t* t);
  static void on_resume(void* self, uint64_t session);
  void run();
  void stop_on_loop();
  void continue_stop();
  void expire_route_waiters(std::chrono::steady_clock::time_point now);
  void check_client_timeouts(std::chrono::steady_clock::time_point now);
  int32_t new_virtual_pid();
  bool apply_fleet_count(PoolShard& pool);

  RuntimeServices& runtime_;
  AdminServices& admin_;
  std::shared_ptr<const config::Config> config_;  // for new logins; sessions keep their own
  std::shared_ptr<const ClientTlsContext> client_tls_;  // from config_'s [tls]; null: off
  io::Loop loop_;
  SessionResources resources_;
  uv_timer_t tick_{};
  unsigned ticks_ = 0;
  std::thread thread_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  uint32_t next_session_ = 1;
  std::unordered_map<int32_t, std::unique_ptr<ClientSession>> sessions_;  // by virtual pid
  std::map<PoolKey, std::unique_ptr<PoolShard>> pools_;
  std::shared_ptr<const TopologySnapshot> topology_ = std::make_shared<TopologySnapshot>();
  struct RouteWaiter {
    SessionId session;
    std::chrono::steady_clock::time_point deadline;
  };
  std::vector<RouteWaiter> route_waiters_;
  std::atomic<int64_t> heartbeat_{0};  // steady_clock ns of the last tick
  bool stopping_ = false;  // draining: no new clients
  std::size_t clients_at_drain_ = 0;
  bool finished_ = false;  // handles closing, the loop is ending
  std::chrono::steady_clock::time_point drain_deadline_{};
};

}  // namespace pgsidecar::proxy
