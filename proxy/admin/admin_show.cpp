#include "proxy/admin/admin_show.h"

#include <string>

#include "proxy/admin/admin_table.h"

namespace pgsidecar::proxy {
namespace {

std::string us(uint64_t ns) { return std::to_string(ns / 1000); }

std::string ms_of(const HistogramSnapshot& h, double q) {
  const auto v = quantile(h, q);
  if (!v) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(v->count()) / 1e6);
  return buf;
}

void show_stats(const RuntimeStats& stats, std::vector<std::byte>& out) {
  std::vector<AdminRow> rows;
  for (const auto& [name, p] : stats.pools) {
    auto avg = [](uint64_t total, uint64_t n) { return std::to_string(n == 0 ? 0 : total / n); };
    rows.push_back(AdminRow{name.first, name.second, std::to_string(p.transactions), std::to_string(p.queries),
                            std::to_string(p.bytes_received), std::to_string(p.bytes_sent),
                            us(p.transaction.sum_ns), us(p.query.sum_ns), us(p.client_wait.sum_ns),
                            avg(p.transaction.sum_ns / 1000, p.transaction.count()),
                            avg(p.query.sum_ns / 1000, p.query.count()),
                            avg(p.client_wait.sum_ns / 1000, p.client_wait.count()),
                            std::to_string(p.server_writes)});
  }
  append_table(out,
               {"database", "user", "total_xact_count", "total_query_count", "total_received", "total_sent",
                "total_xact_time", "total_query_time", "total_wait_time", "avg_xact_time", "avg_query_time",
                "avg_wait_time", "total_server_writes"},
               rows);
}

void show_servers(const RuntimeStats& stats, std::vector<std::byte>& out) {
  std::vector<AdminRow> rows;
  for (const ServerRow& s : stats.servers)
    rows.push_back(AdminRow{"S", s.user, s.database, s.state, s.server, std::to_string(s.connected_seconds),
                            std::to_string(s.backend_pid), s.client != 0 ? std::to_string(s.client) : "",
                            std::to_string(s.worker)});
  append_table(out, {"type", "user", "database", "state", "server", "connected_s", "remote_pid", "link", "worker"},
               rows);
}

void show_clients(const RuntimeStats& stats, std::vector<std::byte>& out) {
  std::vector<AdminRow> rows;
  for (const ClientRow& c : stats.clients)
    rows.push_back(AdminRow{"C", c.user, c.database, c.state,
                            std::to_string(static_cast<int64_t>(c.wait_seconds * 1e6)),
                            c.server_pid != 0 ? std::to_string(c.server_pid) : "", std::to_string(c.virtual_pid),
                            std::to_string(c.id), std::to_string(c.worker), c.pinned});
  append_table(out,
               {"type", "user", "database", "state", "wait_us", "server_pid", "virtual_pid", "ptr", "worker",
                "pinned"},
               rows);
}

void show_lists(const RuntimeStats& stats, const config::Config& config, std::vector<std::byte>& out) {
  int clients = 0, servers = 0, waiting = 0;
  for (const auto& [name, p] : stats.pools) {
    clients += p.clients_active + p.clients_idle + p.clients_waiting;
    servers += p.servers_active + p.servers_idle + p.servers_connecting;
    waiting += p.clients_waiting;
  }
  const std::vector<AdminRow> rows = {
      {"databases", std::to_string(config.databases.size())},
      {"users", std::to_string(config.users.size())},
      {"pools", std::to_string(stats.pools.size())},
      {"used_clients", std::to_string(clients)},
      {"waiting_clients", std::to_string(waiting)},
      {"used_servers", std::to_string(servers)},
      {"connections", std::to_string(stats.clients.size())},
  };
  append_table(out, {"list", "items"}, rows);
}

void show_latency(const RuntimeStats& stats, std::vector<std::byte>& out) {
  std::vector<AdminRow> rows;
  for (const auto& [name, p] : stats.pools) {
    const HistogramSnapshot& q = p.query_last_minute;
    const HistogramSnapshot& x = p.transaction_last_minute;
    rows.push_back(AdminRow{name.first, name.second, std::to_string(q.count()), ms_of(q, 0.5), ms_of(q, 0.95),
                            ms_of(q, 0.99), std::to_string(x.count()), ms_of(x, 0.5), ms_of(x, 0.95), ms_of(x, 0.99)});
  }
  append_table(out,
               {"database", "user", "queries_1m", "query_p50_ms", "query_p95_ms", "query_p99_ms", "xacts_1m",
                "xact_p50_ms", "xact_p95_ms", "xact_p99_ms"},
               rows);
}

std::string duration_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

}  // namespace

bool is_gathered_view(std::string_view what) {
  return what == "STATS" || what == "SERVERS" || what == "CLIENTS" || what == "LISTS" || what == "LATENCY";
}

void append_gathered_view(std::string_view what, const RuntimeStats& stats, const config::Config& config,
                          std::vector<std::byte>& out) {
  if (what == "STATS") show_stats(stats, out);
  if (what == "SERVERS") show_servers(stats, out);
  if (what == "CLIENTS") show_clients(stats, out);
  if (what == "LISTS") show_lists(stats, config, out);
  if (what == "LATENCY") show_latency(stats, out);
}

void append_config_view(const config::Config& c, std::vector<std::byte>& out) {
  const config::PoolSettings defaults;
  const config::Listen listen_defaults;
  const config::PoolSettings& p = c.pool_defaults;
  auto row = [](std::string key, std::string value, std::string fallback) {
    return AdminRow{std::move(key), std::move(value), std::move(fallback), std::string("yes")};
  };
  const std::vector<AdminRow> rows = {
      row("listen.address", c.listen.address, listen_defaults.address),
      row("listen.port", std::to_string(c.listen.port), std::to_string(listen_defaults.port)),
      row("listen.workers", std::to_string(c.listen.workers), std::to_string(listen_defaults.workers)),
      row("listen.max_client_connections", std::to_string(c.listen.max_client_connections),
          std::to_string(listen_defaults.max_client_connections)),
      row("listen.admin_reserved_connections", std::to_string(c.listen.admin_reserved_connections),
          std::to_string(listen_defaults.admin_reserved_connections)),
      row("listen.drain_timeout", duration_text(c.listen.drain_timeout), duration_text(listen_defaults.drain_timeout)),
      row("listen.shutdown_delay", duration_text(c.listen.shutdown_delay),
          duration_text(listen_defaults.shutdown_delay)),
      row("http.address", c.http.address, config::Http{}.address),
      row("http.port", std::to_string(c.http.port), std::to_string(config::Http{}.port)),
      row("auth.login_timeout", duration_text(c.auth.login_timeout), duration_text(config::Auth{}.login_timeout)),
      row("limits.max_scram_iterations", std::to_string(c.limits.max_scram_iterations),
          std::to_string(config::Limits{}.max_scram_iterations)),
      row("pool_defaults.mode", std::string(config::to_string(p.mode)), std::string(config::to_string(defaults.mode))),
      row("pool_defaults.size", std::to_string(p.size), std::to_string(defaults.size)),
      row("pool_defaults.min_idle", std::to_string(p.min_idle), std::to_string(defaults.min_idle)),
      row("pool_defaults.query_wait_timeout", duration_text(p.query_wait_timeout),
          duration_text(defaults.query_wait_timeout)),
      row("pool_defaults.server_connect_timeout", duration_text(p.server_connect_timeout),
          duration_text(defaults.server_connect_timeout)),
      row("pool_defaults.server_idle_timeout", duration_text(p.server_idle_timeout),
          duration_text(defaults.server_idle_timeout)),
      row("pool_defaults.server_lifetime", duration_text(p.server_lifetime), duration_text(defaults.server_lifetime)),
      row("pool_defaults.client_idle_timeout", duration_text(p.client_idle_timeout),
          duration_text(defaults.client_idle_timeout)),
      row("pool_defaults.idle_in_transaction_timeout", duration_text(p.idle_in_transaction_timeout),
          duration_text(defaults.idle_in_transaction_timeout)),
      row("pool_defaults.max_prepared_statements", std::to_string(p.max_prepared_statements),
          std::to_string(defaults.max_prepared_statements)),
      row("pool_defaults.max_prepared_bytes_per_client", std::to_string(p.max_prepared_bytes_per_client),
          std::to_string(defaults.max_prepared_bytes_per_client)),
      row("pool_defaults.max_statements_per_server", std::to_string(p.max_statements_per_server),
          std::to_string(defaults.max_statements_per_server)),
      row("limits.max_client_buffer", std::to_string(c.limits.max_client_buffer),
          std::to_string(config::Limits{}.max_client_buffer)),
      row("health.interval", duration_text(c.health.interval), duration_text(config::Health{}.interval)),
      row("health.timeout", duration_text(c.health.timeout), duration_text(config::Health{}.timeout)),
      row("health.failures_before_down", std::to_string(c.health.failures_before_down),
          std::to_string(config::Health{}.failures_before_down)),
  };
  append_table(out, {"key", "value", "default", "changeable"}, rows);
}

}  // namespace pgsidecar::proxy
