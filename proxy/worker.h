// One event-loop thread. A worker owns its listeners, client sessions, server connections
// and pool shards; the hot path touches nothing else. Other threads reach it only through
// its Mailbox.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/schema.h"
#include "protocol/scram.h"
#include "proxy/classify_cache.h"
#include "proxy/ids.h"
#include "proxy/input_buffer.h"
#include "proxy/outbound_batch.h"
#include "proxy/pool.h"
#include "proxy/topology.h"
#include "proxy/uv/mailbox.h"

namespace pgsidecar::proxy {

class App;
class ClientSession;
class Listener;

class Worker {
 public:
  Worker(App& app, int id, std::shared_ptr<const config::Config> config);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  // Binds this worker's listeners (on the calling thread, before start) — false on error.
  bool listen(std::string& error);
  void start();  // runs the loop on a new thread
  void join();
  void post(uv::Mailbox::Task task) { mailbox_->post(std::move(task)); }
  void request_stop();  // any thread: stop accepting, close clients, end the loop

  // Loop thread only from here on.
  int id() const { return id_; }
  App& app() { return app_; }
  uv_loop_t* loop() { return &loop_; }
  BufferPool& buffers() { return buffers_; }
  ParamSets& param_sets() { return param_sets_; }
  OutboundBatchPool& batches() { return batches_; }
  const config::Config& config() const { return *config_; }
  std::mt19937_64& rng() { return rng_; }
  ClassificationCache& classifier() { return classifier_; }
  // The loop's time, taken once per loop iteration (milliseconds, from the same monotonic
  // clock as steady_clock): enough for timeouts, and no clock read per message.
  std::chrono::steady_clock::time_point now() const {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(uv_now(&loop_)));
  }

  void accept_client(uv_stream_t* listener, bool is_tcp);
  bool stopping() const { return stopping_; }
  void forget_session(ClientSession* session);  // frees it
  ClientSession* find_session(SessionId id);
  ClientSession* find_session_by_pid(int32_t virtual_pid);
  PoolShard& pool_for(const config::Database& db, const config::User& user, const config::ServerAddress& server);
  PoolShard* find_pool(const PoolKey& key);
  template <typename F>
  void for_each_pool(F&& f) {
    for (auto& [key, pool] : pools_) f(*pool);
  }

  // The latest health snapshot; sessions route each transaction with it.
  const TopologySnapshot& topology() const { return *topology_; }
  void set_topology(std::shared_ptr<const TopologySnapshot> snapshot);
  void set_config(std::shared_ptr<const config::Config> config) { config_ = std::move(config); }
  std::shared_ptr<const config::Config> config_ptr() const { return config_; }
  // A session whose transaction cannot be routed now (primary down, switchover) waits until
  // `deadline`; it is asked to route again at every new snapshot.
  void wait_for_route(SessionId id, std::chrono::steady_clock::time_point deadline);
  void cancel_route_wait(SessionId id);

  // SCRAM verifiers of users configured with plain-text passwords, made once per worker.
  const protocol::ScramVerifier& scram_verifier_for(const config::User& user);
  const std::vector<std::byte>& mock_secret() const { return mock_secret_; }

  std::size_t session_count() const { return sessions_.size(); }
  std::atomic<int>& client_count();  // across workers, for max_client_connections

 private:
  static void on_tick(uv_timer_t* t);
  void run();
  void stop_on_loop();
  void continue_stop();

  App& app_;
  int id_;
  std::shared_ptr<const config::Config> config_;
  uv_loop_t loop_{};
  std::unique_ptr<uv::Mailbox> mailbox_;
  uv_timer_t tick_{};
  std::thread thread_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  BufferPool buffers_;
  ParamSets param_sets_;
  OutboundBatchPool batches_;
  ClassificationCache classifier_;
  std::mt19937_64 rng_;
  uint32_t next_session_ = 1;
  uint32_t next_pid_ = 1;
  std::unordered_map<int32_t, std::unique_ptr<ClientSession>> sessions_;  // by virtual pid
  std::map<PoolKey, std::unique_ptr<PoolShard>> pools_;
  std::shared_ptr<const TopologySnapshot> topology_ = std::make_shared<TopologySnapshot>();
  struct RouteWaiter {
    SessionId session;
    std::chrono::steady_clock::time_point deadline;
  };
  std::vector<RouteWaiter> route_waiters_;
  void expire_route_waiters(std::chrono::steady_clock::time_point now);
  std::map<std::string, protocol::ScramVerifier> verifiers_;
  std::vector<std::byte> mock_secret_;
  bool stopping_ = false;  // draining: no new clients
  bool finished_ = false;  // handles closing, the loop is ending
  std::chrono::steady_clock::time_point drain_deadline_{};
};

// Virtual BackendKeyData process ids carry the worker id so any worker can route a
// CancelRequest: bits 24..30 worker, bits 0..23 a per-worker counter.
constexpr int32_t make_virtual_pid(int worker, uint32_t seq) {
  return static_cast<int32_t>((static_cast<uint32_t>(worker & 0x7f) << 24) | ((seq & 0xffffffu) | 1u));
}
constexpr int worker_of_virtual_pid(int32_t pid) { return static_cast<int>((static_cast<uint32_t>(pid) >> 24) & 0x7f); }

}  // namespace pgsidecar::proxy
