// Server connection pools per (database, user, server). Each worker owns a PoolShard per
// pool: its server connections, its idle list and its FIFO of waiting clients; PoolLimits
// (pool_limits.h) is what the shards of all workers share.
#pragma once

#include "proxy/pooling/layer.h"

#include <chrono>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/schema.h"
#include "proxy/core/errors.h"
#include "proxy/core/ids.h"
#include "proxy/io/loop.h"
#include "proxy/io/ring_queue.h"
#include "proxy/pooling/pool_limits.h"
#include "proxy/pooling/pool_metrics.h"
#include "proxy/pooling/release_kind.h"
#include "proxy/pooling/runtime_services.h"
#include "proxy/pooling/server_address.h"
#include "proxy/pooling/server_tls.h"
#include "proxy/pooling/server_lessee.h"

namespace pgsidecar::proxy {

class ServerConn;

// The answer to a session asking for a server.
struct Acquired {
  enum class Kind {
    Leased,   // `server` is the session's now
    Queued,   // the pool calls ServerLessee::on_server_assigned / on_server_unavailable later
    Refused,  // `error` says why; nothing comes later
  };
  Kind kind = Kind::Queued;
  ServerConn* server = nullptr;
  ProxyError error;
};

class PoolShard {
 public:
  // `config` keeps `db` and `user` alive for as long as the shard lives.
  PoolShard(io::Loop& loop, RuntimeServices& runtime, LesseeDirectory& lessees, PoolKey key,
            std::shared_ptr<const config::Config> config, const config::Database& db, const config::User& user,
            const config::ServerAddress& server, std::shared_ptr<PoolLimits> limits);
  PoolShard(const PoolShard&) = delete;
  PoolShard& operator=(const PoolShard&) = delete;
  ~PoolShard();

  const PoolKey& key() const { return key_; }
  const config::Database& database() const { return db_; }
  const config::PoolSettings& settings() const { return db_.pool; }
  const config::Config& config() const { return *config_; }
  const ServerTarget& target() const { return target_; }
  // A reload: logins from now on use the server password `config` gives this pool (a
  // rotated password), whatever snapshot the shard was made with.
  void refresh_login(const config::Config& config);
  const ResolvedAddress& address() const { return address_; }
  const ServerTls& tls() const { return tls_; }
  PoolLimits& limits() { return *limits_; }
  io::Loop& loop() { return loop_; }
  PoolMetrics& metrics() { return metrics_; }
  const PoolMetrics& metrics() const { return metrics_; }

  // A session wants a server: an idle one now, or a place in the queue, or a refusal.
  Acquired acquire(ServerLessee& session);
  void cancel_wait(SessionId id);
  void release(ServerConn& server, ReleaseKind kind);
  ServerConn* find_server(ServerId id);  // nullptr once it has been freed

  // From ServerConn.
  void on_server_ready(ServerConn& server);  // logged in, or reset done: serve a waiter or idle
  void on_server_failed(ServerConn& server, const ProxyError& why);  // login failed
  void on_login_ended(bool logged_in);  // left Connecting/LoggingIn: its login slot is free
  void on_working_closed();             // a logged-in connection began closing
  void on_server_closing(ServerConn& server);  // close() began: never lease it again
  void on_server_closed(ServerConn& server);   // last handle closed: frees the object
  void suspect_server() { runtime_.suspect(key_.server); }  // it failed in live traffic

  // From the worker.
  void tick(std::chrono::steady_clock::time_point now);
  void on_slot_freed();         // a pool slot or a login slot came free (any worker)
  void on_server_wanted();      // another worker has waiters: give back an idle slot
  void close_all();             // shutdown
  void close_idle();            // the server is no longer a target (switchover)
  // The server was declared down: every connection to it is abandoned (ServerConn::abandon)
  // and every waiter gets a connection error, so that nothing waits on it.
  void abandon_all(const ProxyError& why);

  template <typename F>
  void for_each_server(F&& f) const {
    for (const auto& [id, s] : servers_) f(*s.conn);
  }
  int idle_count() const { return static_cast<int>(idle_.size()); }
  int active_count() const;
  int waiting_count() const { return static_cast<int>(waiters_.size()); }
  int connecting_count() const;

 private:
  struct Waiter {
    SessionId session;
    std::chrono::steady_clock::time_point since;
  };
  enum class Opening { Started, NoSlot, Gated };
  void open_connections();
  Opening try_open();   // a pool slot, then a login slot, then a new server connection
  void spawn_server();  // the caller holds a pool slot and a login slot
  void shed(ServerConn& server);  // above the fleet share: its slot is already given back
  void set_logins_held_back(int n);
  int share() const;    // this worker's part of the pool's limit in force
  int owned() const { return slots_held_; }  // slots this shard holds
  ProxyError wait_timeout_error() const;
  bool should_return_slot() const;
  bool other_worker_starving() const;
  void update_starving(std::chrono::steady_clock::time_point now);
  int waiting_elsewhere() const;  // clients of this pool waiting on other workers
  bool give_to_waiter(ServerConn& server);
  // Takes the oldest waiter still connected out of the queue, or nullptr.
  ServerLessee* pop_waiter();
  void fail_waiters(const ProxyError& why);
  void remove_idle(ServerConn& server);
  static const config::ServerAddress& entry_address(const config::Database& db, const config::ServerAddress& server);
  static void server_login(const config::User& user, const config::ServerAddress& address, std::string& login_user,
                           std::string& password);

  io::Loop& loop_;
  RuntimeServices& runtime_;
  LesseeDirectory& lessees_;
  PoolKey key_;
  std::shared_ptr<const config::Config> config_;  // keeps db_ alive
  const config::Database& db_;
  ServerTarget target_;
  config::ServerAddress server_;  // as the topology names it (the first entry's URL, or a SWITCHOVER's)
  ResolvedAddress address_;
  std::string address_error_;  // non-empty: the host did not resolve
  std::shared_ptr<PoolLimits> limits_;
  ServerTls tls_;  // the URL's sslmode, certificates and authentication policy
  RingQueue<Waiter> waiters_;
  std::vector<ServerConn*> idle_;  // most recently used last
  struct Owned {
    std::unique_ptr<ServerConn> conn;
    bool holds_slot = true;  // false once shed: its slot was given back before it closed
  };
  std::map<ServerId, Owned> servers_;
  int slots_held_ = 0;
  int logins_held_back_ = 0;  // counted in limits_->gate().waiting()
  bool starving_ = false;  // counted in limits_->starving
  std::chrono::steady_clock::time_point last_failure_{};
  PoolMetrics metrics_;
};

}  // namespace pgsidecar::proxy
