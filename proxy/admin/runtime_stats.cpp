#include "proxy/admin/runtime_stats.h"

namespace pgsidecar::proxy {

void PoolStats::add_metrics(const PoolMetrics& m, std::chrono::steady_clock::time_point now) {
  client_wait += m.client_wait.snapshot();
  query += m.query.snapshot();
  transaction += m.transaction.snapshot();
  server_connect += m.server_connect.snapshot();
  query_last_minute += m.query_window.last_minute(now);
  transaction_last_minute += m.transaction_window.last_minute(now);
  transactions += m.transactions;
  queries += m.queries;
  bytes_received += m.bytes_received;
  bytes_sent += m.bytes_sent;
  servers_opened += m.servers_opened;
  server_writes += m.server_writes;
  for (std::size_t i = 0; i < servers_closed.size(); ++i) servers_closed[i] += m.servers_closed[i];
}

PoolStats& PoolStats::operator+=(const PoolStats& o) {
  pool_size = std::max(pool_size, o.pool_size);  // the same pool seen by several workers
  servers_active += o.servers_active;
  servers_idle += o.servers_idle;
  servers_connecting += o.servers_connecting;
  clients_active += o.clients_active;
  clients_idle += o.clients_idle;
  clients_waiting += o.clients_waiting;
  client_wait += o.client_wait;
  query += o.query;
  transaction += o.transaction;
  server_connect += o.server_connect;
  query_last_minute += o.query_last_minute;
  transaction_last_minute += o.transaction_last_minute;
  transactions += o.transactions;
  queries += o.queries;
  bytes_received += o.bytes_received;
  bytes_sent += o.bytes_sent;
  servers_opened += o.servers_opened;
  server_writes += o.server_writes;
  for (std::size_t i = 0; i < servers_closed.size(); ++i) servers_closed[i] += o.servers_closed[i];
  return *this;
}

void RuntimeStats::merge(RuntimeStats&& other) {
  for (auto& [name, p] : other.pools) pools[name] += p;
  for (auto& s : other.servers) servers.push_back(std::move(s));
  for (auto& c : other.clients) clients.push_back(std::move(c));
  for (const auto& [db, c] : other.counters.databases) {
    DatabaseCounters& mine = counters.databases[db];
    mine.logins += c.logins;
    mine.replica_reads += c.replica_reads;
    mine.reads_replayed += c.reads_replayed;
    mine.writes_resumed += c.writes_resumed;
    mine.writes_failed += c.writes_failed;
    mine.local_answers += c.local_answers;
  }
  for (const auto& [state, n] : other.counters.errors) counters.errors[state] += n;
  for (const auto& [reason, n] : other.counters.pins) counters.pins[reason] += n;
  for (const auto& [state, n] : other.counters.login_failures) counters.login_failures[state] += n;
  counters.statements_classified += other.counters.statements_classified;
  workers_answered += other.workers_answered;
}

}  // namespace pgsidecar::proxy
