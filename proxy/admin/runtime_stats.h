// What the admin console and the metrics endpoint read of the running proxy: per pool
// totals and latencies, one row per server connection and per client, and the per
// database and per error counters. Each worker fills one on its own loop thread
// (Worker::collect); the copies of all workers are merged anywhere, as plain values.
#pragma once

#include "proxy/admin/layer.h"

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "proxy/core/histogram.h"
#include "proxy/pooling/pool_metrics.h"

namespace pgsidecar::proxy {

struct PoolStats {  // one (database, user), summed over its servers and the workers
  int pool_size = 0;
  int servers_active = 0;
  int servers_idle = 0;
  int servers_connecting = 0;
  int clients_active = 0;   // holding a server
  int clients_idle = 0;     // logged in, between transactions
  int clients_waiting = 0;  // waiting for a server or for a route
  HistogramSnapshot client_wait;
  HistogramSnapshot query;
  HistogramSnapshot transaction;
  HistogramSnapshot server_connect;
  HistogramSnapshot query_last_minute;
  HistogramSnapshot transaction_last_minute;
  uint64_t transactions = 0;
  uint64_t queries = 0;
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t server_writes = 0;
  uint64_t servers_opened = 0;
  std::array<uint64_t, kServerCloseReasons> servers_closed{};

  void add_metrics(const PoolMetrics& m, std::chrono::steady_clock::time_point now);
  PoolStats& operator+=(const PoolStats& o);
};

struct ServerRow {
  int worker = 0;
  uint64_t id = 0;
  std::string database, user, server, state;
  int32_t backend_pid = 0;
  int64_t connected_seconds = 0;
  uint64_t client = 0;  // the session it is leased to, or 0
};

struct ClientRow {
  int worker = 0;
  uint64_t id = 0;
  int32_t virtual_pid = 0;
  std::string user, database, state;
  int32_t server_pid = 0;  // the backend it holds, or 0
  double wait_seconds = 0;  // how long it has been waiting for a server or route (0: not waiting)
  std::string pinned;       // why it is pinned to its server, if it is
};

using PoolName = std::pair<std::string, std::string>;  // database, user

struct RuntimeStats {
  std::map<PoolName, PoolStats> pools;
  std::vector<ServerRow> servers;
  std::vector<ClientRow> clients;
  SessionCounters counters;
  int workers_answered = 0;

  void merge(RuntimeStats&& other);
};

// What the admin console needs of the runtime beyond RuntimeServices: a gathered view of
// every worker, and the process-level commands. Implemented by App.
class AdminServices {
 public:
  // Asks every worker for its part; `done` runs on some other thread with all of them.
  // `rows`: also one row per server connection and client (SHOW SERVERS, SHOW CLIENTS).
  virtual void gather(bool rows, std::function<void(RuntimeStats)> done) = 0;
  virtual void reload() = 0;                          // as SIGHUP
  virtual bool kill(const std::string& database) = 0;  // close its clients and servers now

 protected:
  ~AdminServices() = default;
};

}  // namespace pgsidecar::proxy
