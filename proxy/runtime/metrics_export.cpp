#include "proxy/runtime/metrics_export.h"

#include "proxy/http/metrics_text.h"

namespace pgsidecar::proxy {

using http::Label;
using http::MetricsText;

std::string render_metrics(const RuntimeStats& stats, const TopologySnapshot& topology,
                           const ProcessGauges& process) {
  MetricsText m;
  const auto client_wait = m.histogram("pgsidecar_client_wait_seconds", "Time a client waited for a server connection.");
  const auto query = m.histogram("pgsidecar_query_duration_seconds",
                                 "Time from a request's first message to its ReadyForQuery.");
  const auto transaction = m.histogram("pgsidecar_transaction_duration_seconds",
                                       "Time from a transaction's first message to ReadyForQuery idle.");
  const auto connect = m.histogram("pgsidecar_server_connect_seconds", "Server connection connect plus login time.");
  const auto transactions = m.counter("pgsidecar_transactions_total", "Transactions completed.");
  const auto queries = m.counter("pgsidecar_queries_total", "Requests answered with ReadyForQuery.");
  const auto received = m.counter("pgsidecar_client_bytes_received_total", "Bytes from clients forwarded to servers.");
  const auto sent = m.counter("pgsidecar_client_bytes_sent_total", "Bytes from servers forwarded to clients.");
  const auto server_writes = m.counter("pgsidecar_server_writes_total",
                                       "Writes of client requests to servers (round trips to the database).");
  const auto opened = m.counter("pgsidecar_server_connections_opened_total", "Server connections logged in.");
  const auto closed = m.counter("pgsidecar_server_connections_closed_total", "Server connections closed, by reason.");
  const auto clients = m.gauge("pgsidecar_clients", "Clients by state: active (holding a server), idle, waiting.");
  const auto servers = m.gauge("pgsidecar_servers", "Server connections by state: active, idle, connecting.");
  const auto pool_size = m.gauge("pgsidecar_pool_size", "Configured pool size.");
  for (const auto& [name, p] : stats.pools) {
    const Label pool[] = {{"database", name.first}, {"user", name.second}};
    m.add(client_wait, pool, p.client_wait);
    m.add(query, pool, p.query);
    m.add(transaction, pool, p.transaction);
    m.add(connect, pool, p.server_connect);
    m.add(transactions, pool, p.transactions);
    m.add(queries, pool, p.queries);
    m.add(received, pool, p.bytes_received);
    m.add(sent, pool, p.bytes_sent);
    m.add(opened, pool, p.servers_opened);
    m.add(server_writes, pool, p.server_writes);
    for (std::size_t i = 0; i < kServerCloseReasons; ++i) {
      const Label l[] = {{"database", name.first},
                         {"user", name.second},
                         {"reason", to_string(static_cast<ServerCloseReason>(i))}};
      m.add(closed, l, p.servers_closed[i]);
    }
    const std::pair<std::string_view, int> client_states[] = {
        {"active", p.clients_active}, {"idle", p.clients_idle}, {"waiting", p.clients_waiting}};
    for (const auto& [state, n] : client_states) {
      const Label l[] = {{"database", name.first}, {"user", name.second}, {"state", state}};
      m.add(clients, l, n);
    }
    const std::pair<std::string_view, int> server_states[] = {
        {"active", p.servers_active}, {"idle", p.servers_idle}, {"connecting", p.servers_connecting}};
    for (const auto& [state, n] : server_states) {
      const Label l[] = {{"database", name.first}, {"user", name.second}, {"state", state}};
      m.add(servers, l, n);
    }
    m.add(pool_size, pool, p.pool_size);
  }

  const auto logins = m.counter("pgsidecar_client_logins_total", "Client logins, by database.");
  const auto replica_reads = m.counter("pgsidecar_replica_reads_total", "Transactions routed to a replica.");
  const auto replayed = m.counter("pgsidecar_reads_replayed_total", "Reads replayed after their server died.");
  const auto local = m.counter("pgsidecar_local_answers_total", "Requests answered without a server.");
  const auto held = m.counter("pgsidecar_writes_held_total", "Writes held by write_wait, by how the wait ended.");
  for (const auto& [db, c] : stats.counters.databases) {
    const Label l[] = {{"database", db}};
    m.add(logins, l, c.logins);
    m.add(replica_reads, l, c.replica_reads);
    m.add(replayed, l, c.reads_replayed);
    m.add(local, l, c.local_answers);
    const Label resumed[] = {{"database", db}, {"outcome", "resumed"}};
    const Label failed[] = {{"database", db}, {"outcome", "failed"}};
    m.add(held, resumed, c.writes_resumed);
    m.add(held, failed, c.writes_failed);
  }
  const auto login_failures = m.counter("pgsidecar_client_login_failures_total", "Failed client logins, by SQLSTATE.");
  for (const auto& [state, n] : stats.counters.login_failures) m.add(login_failures, {{"sqlstate", state}}, n);
  const auto errors = m.counter("pgsidecar_errors_total", "Errors pgsidecar itself sent to clients, by SQLSTATE.");
  for (const auto& [state, n] : stats.counters.errors) m.add(errors, {{"sqlstate", state}}, n);
  const auto pins = m.counter("pgsidecar_client_pins_total",
                              "Transaction mode: times a client was pinned to its server connection, by reason.");
  for (const auto& [reason, n] : stats.counters.pins) m.add(pins, {{"reason", reason}}, n);
  const auto classified = m.counter("pgsidecar_statements_classified_total",
                                    "SQL texts parsed by the read-only classifier (not found in its cache).");
  m.add(classified, std::span<const Label>(), stats.counters.statements_classified);
  const auto switchovers = m.counter("pgsidecar_switchovers_total", "Switchovers completed, by database.");
  for (const auto& [db, n] : process.switchovers) m.add(switchovers, {{"database", db}}, n);

  const auto up = m.gauge("pgsidecar_server_up", "1 while the server's health is up.");
  const auto primary = m.gauge("pgsidecar_server_primary", "1 for the server that takes the database's writes.");
  const auto lag = m.gauge("pgsidecar_replica_lag_seconds", "Replay lag of a replica, as last probed.");
  const auto probe = m.gauge("pgsidecar_probe_duration_seconds", "Duration of the server's last health probe.");
  for (const auto& [db, t] : topology.databases) {
    for (std::size_t i = 0; i < t.servers.size(); ++i) {
      const ServerStatus& s = t.servers[i];
      const Label l[] = {{"database", db}, {"server", s.key}};
      m.add(up, l, s.health == ServerHealth::Up ? 1.0 : 0.0);
      m.add(primary, l, static_cast<int>(i) == t.primary ? 1.0 : 0.0);
      m.add(lag, l, s.role == ServerRole::Replica ? s.lag_seconds : 0.0);
      m.add(probe, l, s.last_probe_seconds);
    }
  }
  const auto effective = m.gauge("pgsidecar_pool_effective_size",
                                 "Server connections the pool may hold now: its size, lowered while the database "
                                 "refuses more, and capped by the fleet share.");
  const auto share = m.gauge("pgsidecar_pool_fleet_share", "This sidecar's part of fleet_max_connections.");
  const auto sidecars = m.gauge("pgsidecar_fleet_sidecars", "Sidecars counted serving the entry (0 until counted).");
  const auto refusals = m.counter("pgsidecar_capacity_refusals_total",
                                  "Server logins the database refused for lack of connection slots (53300, 57P03).");
  const auto in_flight = m.gauge("pgsidecar_server_logins_in_flight", "Server logins in flight to the server.");
  const auto logins_held = m.gauge("pgsidecar_server_logins_waiting", "Server logins held back by max_concurrent_logins.");
  const auto queued = m.counter("pgsidecar_server_logins_queued_total",
                                "Server logins that had to wait for max_concurrent_logins.");
  for (const PoolCapacity& c : process.capacity) {
    const Label pool[] = {{"database", c.database}, {"user", c.user}, {"server", c.server}};
    const Label server[] = {{"server", c.server}};
    m.add(effective, pool, c.effective);
    m.add(refusals, pool, c.capacity_refusals);
    if (c.fleet_share >= 0) {
      m.add(share, pool, c.fleet_share);
      const Label entry[] = {{"database", c.database}, {"server", c.server}};
      m.add(sidecars, entry, c.fleet_sidecars);
    }
    if (c.logins_in_flight < 0) continue;  // this server's gate was written with another pool
    m.add(in_flight, server, c.logins_in_flight);
    m.add(logins_held, server, c.logins_waiting);
    m.add(queued, server, c.logins_queued);
  }
  m.add(m.gauge("pgsidecar_ready", "1 while /readyz answers 200 (listening, not draining)."), {}, process.ready ? 1 : 0);
  m.add(m.gauge("pgsidecar_draining", "1 once SIGTERM started the drain."), {}, process.draining ? 1 : 0);
  return m.render();
}

}  // namespace pgsidecar::proxy
