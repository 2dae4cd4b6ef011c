// What a worker offers the client sessions it owns: its loop, the process's services,
// the current configuration and topology snapshots, its pools, the waits it keeps for
// sessions, and the per-worker caches sessions share (SessionResources). The runtime's
// Worker implements it; sessions never see the worker or the process themselves.
#pragma once

#include "proxy/session/layer.h"

#include <chrono>
#include <memory>

#include "config/schema.h"
#include "proxy/core/ids.h"
#include "proxy/admin/runtime_stats.h"
#include "proxy/io/loop.h"
#include "proxy/pooling/pool_shard.h"
#include "proxy/pooling/runtime_services.h"
#include "proxy/routing/topology.h"
#include "proxy/session/client_tls.h"
#include "proxy/session/session_resources.h"

namespace pgsidecar::proxy {

class ClientSession;

class SessionHost {
 public:
  virtual io::Loop& loop() = 0;
  virtual RuntimeServices& runtime() = 0;
  virtual AdminServices& admin() = 0;
  virtual SessionResources& resources() = 0;
  // The snapshot a new session logs in with and keeps for its whole life.
  virtual std::shared_ptr<const config::Config> current_config() const = 0;
  // The TLS context for new client connections, made from current_config()'s [tls] at the
  // same load; null when [tls] is off.
  virtual std::shared_ptr<const ClientTlsContext> client_tls() const = 0;
  // The latest health snapshot; sessions route each transaction with it.
  virtual const TopologySnapshot& topology() const = 0;
  // This worker's shard of the pool for (database, user, server); made on first use and
  // then kept alive with `config` (the snapshot `database` and `user` belong to).
  virtual PoolShard& pool_for(const std::shared_ptr<const config::Config>& config, const config::Database& database,
                              const config::User& user, const config::ServerAddress& server) = 0;
  // A session whose transaction cannot be routed now (primary down, switchover) waits
  // until `deadline`: ClientSession::retry_route() at every new snapshot,
  // route_wait_expired() at the deadline.
  virtual void wait_for_route(SessionId id, std::chrono::steady_clock::time_point deadline) = 0;
  virtual void cancel_route_wait(SessionId id) = 0;
  // ClientSession::resume() of `id` at the end of this loop turn, if it still exists.
  virtual void resume_later(SessionId id) = 0;
  virtual ClientSession* find_session(SessionId id) = 0;
  // The session's last handle closed: free it.
  virtual void forget(ClientSession& session) = 0;

 protected:
  ~SessionHost() = default;
};

}  // namespace pgsidecar::proxy
