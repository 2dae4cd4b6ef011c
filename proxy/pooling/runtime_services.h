// What the runtime offers the layers below it: the few process-wide services a pool, a
// session or the admin console needs, without reaching for the process itself. The
// runtime (App) implements it; every method is safe to call from any worker thread.
#pragma once

#include "proxy/pooling/layer.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <chrono>
#include <functional>
#include <string>

#include "config/schema.h"
#include "proxy/pooling/pool_limits.h"

namespace pgsidecar::proxy {

// A switchover lets transactions on the old primary finish for the database's
// query_wait_timeout, and at least this long.
inline constexpr std::chrono::milliseconds kMinSwitchoverDrain{1000};
inline std::chrono::milliseconds switchover_drain_bound(const config::Database& db) {
  return std::max<std::chrono::milliseconds>(db.pool.query_wait_timeout, kMinSwitchoverDrain);
}

class RuntimeServices {
 public:
  virtual ~RuntimeServices() = default;

  virtual int worker_count() const = 0;
  // Passive health detection: live traffic saw this server fail; probe it now.
  virtual void suspect(const std::string& server_key) = 0;
  // Tell the shards of `key` on the other workers that a slot was freed, or that this
  // worker's clients starve for one.
  virtual void broadcast_slot_freed(const PoolKey& key, int from_worker) = 0;
  virtual void broadcast_server_wanted(const PoolKey& key, int from_worker) = 0;
  // A login to `server_key` ended while logins were held back: every worker, this one
  // included, tries again on its next loop turn.
  virtual void broadcast_login_slot_freed(const std::string& server_key) = 0;
  // A CancelRequest arrived: route it to the worker that owns the virtual pid. `done` runs
  // (on some thread) once the server has taken the cancel, or it was dropped: the client's
  // cancel connection stays open until then, as PostgreSQL's does until the signal is sent.
  virtual void route_cancel(int32_t virtual_pid, int32_t secret, std::function<void()> done) = 0;
  // Every pool's shared limits, and the number of clients on all workers.
  virtual PoolRegistry& pools() = 0;
  virtual std::atomic<int>& client_count() = 0;
  // PAUSE / RESUME of a database's new transactions; false for an unknown database.
  virtual bool pause(const std::string& database, bool paused) = 0;
  // SWITCHOVER: unless `force`, first check that `address` answers and is a primary (not
  // in recovery), else done(false, why) and nothing changes; then pause `database`'s new
  // transactions, let in-flight ones finish within `drain_bound`, repoint it to `address`,
  // resume. `done` runs on some other thread.
  virtual void switchover(const std::string& database, const config::ServerAddress& address,
                          std::chrono::milliseconds drain_bound, bool force,
                          std::function<void(bool ok, std::string message)> done) = 0;
};

}  // namespace pgsidecar::proxy
