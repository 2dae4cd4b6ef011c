#include "proxy/routing/probe.h"

#include <poll.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "proxy/routing/probe_auth_check.h"

namespace pgsidecar::proxy {
namespace {

// Replay lag counts only while the replica has received WAL it has not replayed: a replica
// of an idle primary is fresh however old its last replayed transaction is.
constexpr const char* kProbeSql =
    "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() AND "
    "pg_last_wal_receive_lsn() IS DISTINCT FROM pg_last_wal_replay_lsn() THEN "
    "COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) ELSE 0 END, "
    // A primary's timeline: the first 8 hex digits of the WAL file it writes to now.
    "CASE WHEN pg_is_in_recovery() THEN 0 "
    "ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END";

// The sidecars whose probe connection is in this database, and how many of their
// identities sort before ours (byte order, the same on every sidecar): one name per
// sidecar, however many sessions a reconnect briefly leaves behind.
constexpr const char* kFleetSql =
    "SELECT count(DISTINCT application_name), "
    "count(DISTINCT application_name) FILTER (WHERE application_name COLLATE \"C\" < $2 COLLATE \"C\") "
    "FROM pg_stat_activity WHERE starts_with(application_name, $1) AND datname = current_database()";

constexpr std::string_view kProbePrefix = "pgsidecar-probe:";
// The identity must fit pg_stat_activity's application_name (NAMEDATALEN - 1 = 63 bytes):
// prefix 16, entry up to 30, ':' and 12 hex digits.
constexpr std::size_t kMaxEntryTag = 30;
constexpr std::size_t kInstanceIdBytes = 6;

std::string trim(const char* s) {
  std::string out = s != nullptr ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string hex(uint64_t v, int digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = kDigits[v & 0xf];
  return out;
}

// PostgreSQL keeps only printable ASCII of an application_name; ':' separates our fields.
bool plain_tag(std::string_view name) {
  if (name.empty() || name.size() > kMaxEntryTag) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string entry_tag(std::string_view database) {
  if (plain_tag(database)) return std::string(database);
  uint32_t h = 2166136261u;  // FNV-1a
  for (const char c : database) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  std::string tag(1, '~');
  tag.append(hex(h, 8));
  return tag;
}

}  // namespace

std::string new_instance_id() {
  std::random_device rd;
  const uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return hex(v, static_cast<int>(kInstanceIdBytes * 2));
}

std::string fleet_prefix(std::string_view database) {
  std::string prefix(kProbePrefix);
  prefix.append(entry_tag(database));
  prefix.push_back(':');
  return prefix;
}

std::string probe_identity(std::string_view database, std::string_view instance) {
  return fleet_prefix(database) + std::string(instance);
}

Prober::Prober(config::ServerAddress address, std::string user, std::string password, std::string dbname,
               std::string identity, std::string fleet_prefix)
    : address_(std::move(address)),
      user_(std::move(user)),
      password_(std::move(password)),
      dbname_(std::move(dbname)),
      identity_(std::move(identity)),
      fleet_prefix_(std::move(fleet_prefix)) {}

Prober::~Prober() { disconnect(); }

void Prober::set_login(const std::string& user, const std::string& password) {
  if (user == user_ && password == password_) return;
  user_ = user;
  password_ = password;
  disconnect();
}

void Prober::disconnect() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
}

bool Prober::wait_socket(bool for_write, std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{};
  p.fd = PQsocket(conn_);
  p.events = for_write ? POLLOUT : POLLIN;
  return ::poll(&p, 1, static_cast<int>(left.count())) > 0;
}

bool Prober::connect(std::chrono::steady_clock::time_point deadline, std::string& error) {
  // libpq 16 and later refuse a cleartext request themselves (require_auth, below).
  if (!password_.empty() && PQlibVersion() < 160000 &&
      !probe_may_send_password(address_, user_, dbname_, deadline, error))
    return false;
  const std::string port = std::to_string(address_.port);
  std::vector<const char*> keys = {"host", "port", "dbname", "user", "application_name", "connect_timeout"};
  std::vector<const char*> values = {address_.host.c_str(), port.c_str(), dbname_.c_str(), user_.c_str(),
                                     identity_.c_str(), "10"};
  if (!password_.empty()) {
    keys.push_back("password");
    values.push_back(password_.c_str());
  }
  if (!address_.sslmode.empty()) {
    keys.push_back("sslmode");
    values.push_back(address_.sslmode.c_str());
  }
  // hostaddr= with a host name beside it: libpq checks the certificate against the name.
  if (const auto name = address_.options.find("host"); name != address_.options.end()) {
    values[0] = name->second.c_str();
    keys.push_back("hostaddr");
    values.push_back(address_.host.c_str());
  }
  // libpq 16 and later take the URL's require_auth; libpq 15 knows none (docs/tls.md).
  if (!address_.require_auth.empty() && PQlibVersion() >= 160000) {
    keys.push_back("require_auth");
    values.push_back(address_.require_auth.c_str());
  }
  // The URL's TLS settings, as the pool's connections use them.
  for (const char* key : {"sslrootcert", "sslcert", "sslkey", "sslcrl", "sslsni", "channel_binding",
                          "ssl_min_protocol_version", "ssl_max_protocol_version"}) {
    const auto it = address_.options.find(key);
    if (it == address_.options.end()) continue;
    keys.push_back(key);
    values.push_back(it->second.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectStartParams(keys.data(), values.data(), 0);
  if (conn_ == nullptr || PQstatus(conn_) == CONNECTION_BAD) {
    error = conn_ != nullptr ? trim(PQerrorMessage(conn_)) : "out of memory";
    disconnect();
    return false;
  }
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK) {
    if (st == PGRES_POLLING_FAILED) {
      error = trim(PQerrorMessage(conn_));
      disconnect();
      return false;
    }
    if (!wait_socket(st == PGRES_POLLING_WRITING, deadline)) {
      error = "timed out connecting";
      disconnect();
      return false;
    }
    st = PQconnectPoll(conn_);
  }
  PQsetnonblocking(conn_, 1);
  return true;
}

ProbeResult Prober::probe(std::chrono::milliseconds timeout, bool count_fleet) {
  return run(timeout, true, count_fleet);
}

ProbeResult Prober::count(std::chrono::milliseconds timeout) { return run(timeout, false, true); }

ProbeResult Prober::run(std::chrono::milliseconds timeout, bool health, bool count_fleet) {
  ProbeResult r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (conn_ != nullptr && PQstatus(conn_) != CONNECTION_OK) disconnect();
  if (conn_ == nullptr && !connect(deadline, r.error)) return r;
  std::vector<std::string> row;
  if (health) {
    if (!query_row(kProbeSql, {}, deadline, row, r.error)) {
      disconnect();
      return r;
    }
    r.in_recovery = row[0] == "t";
    r.lag_seconds = std::atof(row[1].c_str());
    r.timeline = row.size() > 2 ? std::atoi(row[2].c_str()) : 0;
  }
  if (count_fleet && !fleet_prefix_.empty()) {
    if (query_row(kFleetSql, {fleet_prefix_.c_str(), identity_.c_str()}, deadline, row, r.fleet_error)) {
      r.fleet = FleetCount{std::atoi(row[0].c_str()), std::atoi(row[1].c_str())};
    } else if (!health) {
      r.error = r.fleet_error;  // a connection kept for its identity alone: its only job failed
      return r;
    }
  }
  r.ok = true;
  return r;
}

bool Prober::query_row(const char* sql, std::initializer_list<const char*> params,
                       std::chrono::steady_clock::time_point deadline, std::vector<std::string>& row,
                       std::string& error) {
  const std::vector<const char*> values(params);
  if (PQsendQueryParams(conn_, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0) !=
      1) {
    error = trim(PQerrorMessage(conn_));
    disconnect();
    return false;
  }
  while (PQflush(conn_) == 1) {
    if (!wait_socket(true, deadline)) {
      error = "timed out sending the probe";
      disconnect();
      return false;
    }
  }
  bool got_row = false;
  for (;;) {
    while (PQisBusy(conn_)) {
      if (!wait_socket(false, deadline)) {
        error = "timed out waiting for the probe's answer";
        disconnect();
        return false;
      }
      if (PQconsumeInput(conn_) != 1) {
        error = trim(PQerrorMessage(conn_));
        disconnect();
        return false;
      }
    }
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) break;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
      row.clear();
      for (int c = 0; c < PQnfields(res); ++c) row.emplace_back(PQgetvalue(res, 0, c));
      got_row = true;
    } else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
      error = trim(PQresultErrorMessage(res));
    }
    PQclear(res);
  }
  if (!got_row && error.empty()) error = "probe returned no row";
  return got_row;
}

}  // namespace pgsidecar::proxy
