#include "proxy/admin/admin_console.h"

#include <csignal>
#include <ctime>
#include <optional>
#include <string>

#include "config/url.h"
#include "protocol/error_response.h"
#include "protocol/messages.h"
#include "proxy/core/errors.h"
#include "proxy/admin/admin_show.h"
#include "proxy/admin/admin_table.h"
#include "proxy/core/log.h"

namespace pgsidecar::proxy {

namespace {

using Row = AdminRow;

std::string format_time(std::chrono::system_clock::time_point t) {
  if (t.time_since_epoch().count() == 0) return "";
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S+00", &tm);
  return buf;
}

// Splits a command into words; a single-quoted word keeps its spaces ('' is a quote).
std::vector<std::string> words(std::string_view sql) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ';') {
      ++i;
      continue;
    }
    std::string w;
    if (c == '\'') {
      for (++i; i < sql.size(); ++i) {
        if (sql[i] == '\'') {
          if (i + 1 < sql.size() && sql[i + 1] == '\'') {
            w.push_back('\'');
            ++i;
            continue;
          }
          ++i;
          break;
        }
        w.push_back(sql[i]);
      }
    } else {
      while (i < sql.size() && sql[i] != ' ' && sql[i] != '\t' && sql[i] != '\n' && sql[i] != ';')
        w.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i++]))));
    }
    out.push_back(std::move(w));
  }
  return out;
}

// Database names keep their case: take the original spelling back from the text.
std::string original_word(std::string_view sql, std::size_t index) {
  std::size_t n = 0, i = 0;
  while (i < sql.size()) {
    while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == ';')) ++i;
    const std::size_t start = i;
    while (i < sql.size() && sql[i] != ' ' && sql[i] != '\t' && sql[i] != '\n' && sql[i] != ';') ++i;
    if (start < i && n++ == index) return std::string(sql.substr(start, i - start));
  }
  return {};
}

void show_health(AdminContext& ctx, std::vector<std::byte>& out) {
  std::vector<Row> rows;
  const TopologySnapshot& snap = ctx.topology;
  std::map<std::string, int> open;
  ctx.runtime.pools().for_each([&](const PoolKey& key, PoolLimits& limits) {
    open[key.database + "\n" + key.server] += limits.open();
  });
  for (const auto& [name, db] : snap.databases) {
    for (std::size_t i = 0; i < db.servers.size(); ++i) {
      const ServerStatus& s = db.servers[i];
      const bool is_primary = static_cast<int>(i) == db.primary;
      rows.push_back(Row{name, s.key, std::string(to_string(s.role)), std::string(to_string(s.health)),
                         std::string(is_primary ? "yes" : "no"), std::string(s.refused ? "yes" : "no"),
                         std::to_string(static_cast<long long>(s.lag_seconds * 1000)), format_time(s.last_probe),
                         std::string(s.last_probe_ok ? "ok" : (s.last_probe.time_since_epoch().count() ? "failed" : "")),
                         s.last_error.empty() ? std::nullopt : std::optional<std::string>(s.last_error),
                         std::to_string(open[name + "\n" + s.key]), std::string(db.paused ? "yes" : "no"),
                         s.timeline > 0 ? std::optional<std::string>(std::to_string(s.timeline)) : std::nullopt,
                         s.refused_reason.empty() ? std::nullopt : std::optional<std::string>(s.refused_reason)});
    }
  }
  append_table(out, {"database", "server", "role", "health", "serving_writes", "refused", "lag_ms", "last_probe",
                     "last_probe_result", "last_error", "server_connections", "paused", "timeline",
                     "refused_reason"},
               rows);
}

// Per pool: its sizes (configured, fleet share, in force), what it holds and who waits,
// and the login gate of its server (shared by every pool of that server).
void show_pools(AdminContext& ctx, std::vector<std::byte>& out) {
  std::vector<Row> rows;
  ctx.runtime.pools().for_each([&](const PoolKey& key, PoolLimits& limits) {
    const FleetBudget* fleet = limits.fleet();
    const LoginGate& gate = limits.gate();
    const auto number = [](auto n) { return std::optional<std::string>(std::to_string(n)); };
    rows.push_back(Row{key.database, key.user, key.server, number(limits.size()),
                       fleet != nullptr ? number(fleet->share()) : std::nullopt, number(limits.cap()),
                       number(limits.open()), number(limits.waiting.load()),
                       fleet != nullptr ? number(fleet->sidecars()) : std::nullopt, number(limits.capacity_refusals()),
                       number(gate.in_flight()), number(gate.waiting()), number(gate.queued_total()),
                       number(gate.peak())});
  });
  append_table(out,
               {"database", "user", "server", "size", "fleet_share", "effective_size", "server_connections",
                "clients_waiting", "fleet_sidecars", "capacity_refusals", "logins_in_flight", "logins_waiting",
                "logins_queued", "logins_in_flight_peak"},
               rows);
}

void show_databases(AdminContext& ctx, std::vector<std::byte>& out) {
  std::vector<Row> rows;
  for (const auto& db : ctx.config.databases) {
    std::string replicas;
    for (const auto& r : db.replicas) {
      if (!replicas.empty()) replicas.push_back(',');
      replicas.append(config::redacted_url(r));
    }
    rows.push_back(Row{db.name, config::redacted_url(db.primary), replicas, std::string(config::to_string(db.reads)),
                       std::string(config::to_string(db.on_primary_down)), std::string(config::to_string(db.pool.mode)),
                       std::to_string(db.pool.size)});
  }
  append_table(out, {"name", "primary", "replicas", "reads", "on_primary_down", "mode", "size"}, rows);
}

void error(std::vector<std::byte>& out, ProxyErrc code, std::initializer_list<std::string_view> args) {
  protocol::append_error_response(out, make_error(code, args).fields());
}

}  // namespace

void append_admin_parameters(std::vector<std::byte>& out) {
  protocol::append_parameter_status(out, "server_version", "15.0 (pgsidecar " PGSIDECAR_VERSION ")");
  protocol::append_parameter_status(out, "server_encoding", "UTF8");
  protocol::append_parameter_status(out, "client_encoding", "UTF8");
  protocol::append_parameter_status(out, "DateStyle", "ISO, MDY");
  protocol::append_parameter_status(out, "standard_conforming_strings", "on");
  protocol::append_parameter_status(out, "integer_datetimes", "on");
}

bool run_admin_command(AdminContext& ctx, std::string_view sql, std::vector<std::byte>& out,
                       std::function<void(std::vector<std::byte>)> later) {
  const std::vector<std::string> w = words(sql);
  if (w.empty()) {
    protocol::append_empty_query_response(out);
    return true;
  }
  if (w[0] == "SHOW" && w.size() == 2) {
    if (w[1] == "HEALTH") return show_health(ctx, out), true;
    if (w[1] == "POOLS") return show_pools(ctx, out), true;
    if (w[1] == "DATABASES") return show_databases(ctx, out), true;
    if (w[1] == "CONFIG") return append_config_view(ctx.config, out), true;
    if (w[1] == "VERSION") {
      append_table(out, {"version"}, {Row{std::string("pgsidecar " PGSIDECAR_VERSION)}});
      return true;
    }
    if (is_gathered_view(w[1])) {
      // Every worker adds its part on its own loop; the reply comes back on ours.
      io::Loop* home = &ctx.loop;
      auto config = std::make_shared<config::Config>(ctx.config);
      ctx.admin.gather(w[1] == "SERVERS" || w[1] == "CLIENTS",
                       [home, later, what = w[1], config](RuntimeStats stats) {
                         std::vector<std::byte> reply;
                         append_gathered_view(what, stats, *config, reply);
                         home->post([later, reply = std::move(reply)]() mutable { later(std::move(reply)); });
                       });
      return false;
    }
  }
  if (w[0] == "RELOAD" && w.size() == 1) {
    log_warn("admin_reload");
    ctx.admin.reload();
    protocol::append_command_complete(out, "RELOAD");
    return true;
  }
  if (w[0] == "KILL" && w.size() == 2) {
    const std::string db = original_word(sql, 1);
    if (!ctx.admin.kill(db)) {
      error(out, ProxyErrc::AdminUnknownDatabase, {db});
      return true;
    }
    protocol::append_command_complete(out, "KILL");
    return true;
  }
  if ((w[0] == "PAUSE" || w[0] == "RESUME") && w.size() == 2) {
    const std::string db = original_word(sql, 1);
    if (!ctx.runtime.pause(db, w[0] == "PAUSE")) {
      error(out, ProxyErrc::AdminUnknownDatabase, {db});
      return true;
    }
    log_warn(w[0] == "PAUSE" ? "paused" : "resumed").kv("database", db);
    protocol::append_command_complete(out, w[0]);
    return true;
  }
  if (w[0] == "SWITCHOVER" && (w.size() == 4 || (w.size() == 5 && w[4] == "FORCE")) && w[2] == "TO") {
    const std::string db = original_word(sql, 1);
    config::ServerAddress address;
    std::string problem;
    if (!config::parse_server_url(w[3], address, problem)) {
      error(out, ProxyErrc::AdminBadArgument, {"SWITCHOVER: " + problem});
      return true;
    }
    const config::Database* entry = ctx.config.find_database(db);
    if (entry == nullptr) {
      error(out, ProxyErrc::AdminUnknownDatabase, {db});
      return true;
    }
    io::Loop* home = &ctx.loop;
    const bool force = w.size() == 5;
    const auto bound = switchover_drain_bound(*entry);
    ctx.runtime.switchover(db, address, bound, force, [home, later](bool ok, std::string message) {
      std::vector<std::byte> reply;
      if (ok) {
        protocol::append_notice_response(reply, success_notice(message));
        protocol::append_command_complete(reply, "SWITCHOVER");
      } else {
        protocol::append_error_response(reply, make_error(ProxyErrc::SwitchoverFailed, {message}).fields());
      }
      home->post([later, reply = std::move(reply)]() mutable { later(std::move(reply)); });
    });
    return false;
  }
  if (w[0] == "SHUTDOWN" && w.size() == 1) {
    log_warn("admin_shutdown");
    std::raise(SIGTERM);
    protocol::append_command_complete(out, "SHUTDOWN");
    return true;
  }
  error(out, ProxyErrc::AdminUnknownCommand, {sql});
  return true;
}

}  // namespace pgsidecar::proxy
