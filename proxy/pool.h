// Server connection pools per (database, user). Each worker owns a PoolShard per pool:
// its idle servers, its FIFO of waiting clients. PoolLimits is shared by the shards of all
// workers and keeps the configured size exact and global: a server connection exists only
// while it holds one of `size` slots.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/schema.h"
#include "protocol/error_response.h"
#include "proxy/ids.h"
#include "proxy/server_address.h"
#include "proxy/ring_queue.h"
#include "proxy/session_params.h"

namespace pgsidecar::proxy {

class ClientSession;
class ServerConn;
class Worker;

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

// Shared by every worker's shard of one pool.
// A worker's client waiting this long at the global limit makes other workers hand over
// connections they are not using.
inline constexpr std::chrono::milliseconds kStarvingAfter{50};

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

enum class ReleaseKind {
  Reusable,  // at ReadyForQuery 'I' with nothing outstanding: straight back to idle
  Reset,     // session mode: DISCARD ALL first
  Close,     // state unknown (client left mid-transaction, error): close it
};

class PoolShard {
 public:
  PoolShard(Worker& worker, PoolKey key, std::shared_ptr<const config::Config> config, const config::Database& db,
            const config::User& user, const config::ServerAddress& server, std::shared_ptr<PoolLimits> limits);
  PoolShard(const PoolShard&) = delete;
  PoolShard& operator=(const PoolShard&) = delete;
  ~PoolShard();

  const PoolKey& key() const { return key_; }
  const config::Database& database() const { return db_; }
  const config::PoolSettings& settings() const { return db_.pool; }
  const ServerTarget& target() const { return target_; }
  const ResolvedAddress& address() const { return address_; }
  PoolLimits& limits() { return *limits_; }

  // A session wants a server: assigned now or later (ClientSession::on_server_assigned),
  // or refused (ClientSession::on_server_unavailable) on timeout or connect failure.
  void acquire(ClientSession& session);
  void cancel_wait(SessionId id);
  void release(ServerConn& server, ReleaseKind kind);

  // From ServerConn.
  void on_server_ready(ServerConn& server);  // logged in, or reset done: serve a waiter or idle
  void on_server_failed(ServerConn& server, const protocol::ErrorFields& why);  // login failed
  void on_server_closing(ServerConn& server);  // close() began: never lease it again
  void on_server_closed(ServerConn& server);   // last handle closed: frees the object

  // From the worker.
  void tick(std::chrono::steady_clock::time_point now);
  void on_slot_freed();         // another worker closed a server of this pool
  void on_server_wanted();      // another worker has waiters: give back an idle slot
  void close_all();             // shutdown
  void close_idle();            // the server is no longer a target (switchover)

  int idle_count() const { return static_cast<int>(idle_.size()); }
  int active_count() const;
  int waiting_count() const { return static_cast<int>(waiters_.size()); }
  int connecting_count() const;

 private:
  struct Waiter {
    SessionId session;
    std::chrono::steady_clock::time_point since;
  };
  void serve_waiters();
  void open_connections();
  void spawn_server();  // the caller holds a slot
  int count_in(std::initializer_list<int> states) const;
  int owned() const { return static_cast<int>(servers_.size()); }  // slots this shard holds
  bool should_return_slot() const;
  bool other_worker_starving() const;
  void update_starving(std::chrono::steady_clock::time_point now);
  int waiting_elsewhere() const;  // clients of this pool waiting on other workers
  bool give_to_waiter(ServerConn& server);
  void fail_waiters(const protocol::ErrorFields& why);
  void make_idle(ServerConn& server);
  void remove_idle(ServerConn& server);

  Worker& worker_;
  PoolKey key_;
  const config::Database& db_;
  ServerTarget target_;
  ResolvedAddress address_;
  std::string address_error_;  // non-empty: the host did not resolve
  std::shared_ptr<const config::Config> config_;  // keeps db_ alive
  std::shared_ptr<PoolLimits> limits_;
  RingQueue<Waiter> waiters_;
  std::vector<ServerConn*> idle_;  // most recently used last
  std::map<ServerId, std::unique_ptr<ServerConn>> servers_;
  ServerId next_server_ = 1;
  int share_ = 0;  // this worker's part of the pool's size
  bool starving_ = false;  // counted in limits_->starving
  std::chrono::steady_clock::time_point last_failure_{};
};

}  // namespace pgsidecar::proxy
