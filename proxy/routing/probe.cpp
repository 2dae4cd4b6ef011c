#include "proxy/routing/probe.h"

#include <poll.h>

#include <cstdlib>
#include <vector>

namespace pgsidecar::proxy {
namespace {

// Replay lag counts only while the replica has received WAL it has not replayed: a replica
// of an idle primary is fresh however old its last replayed transaction is.
constexpr const char* kProbeSql =
    "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() AND "
    "pg_last_wal_receive_lsn() IS DISTINCT FROM pg_last_wal_replay_lsn() THEN "
    "COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) ELSE 0 END";

std::string trim(const char* s) {
  std::string out = s != nullptr ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

Prober::Prober(config::ServerAddress address, std::string user, std::string password, std::string dbname)
    : address_(std::move(address)), user_(std::move(user)), password_(std::move(password)), dbname_(std::move(dbname)) {}

Prober::~Prober() { disconnect(); }

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
  const std::string port = std::to_string(address_.port);
  std::vector<const char*> keys = {"host", "port", "dbname", "user", "application_name", "connect_timeout"};
  std::vector<const char*> values = {address_.host.c_str(), port.c_str(), dbname_.c_str(), user_.c_str(),
                                     "pgsidecar-health", "10"};
  if (!password_.empty()) {
    keys.push_back("password");
    values.push_back(password_.c_str());
  }
  if (!address_.sslmode.empty()) {
    keys.push_back("sslmode");
    values.push_back(address_.sslmode.c_str());
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

ProbeResult Prober::probe(std::chrono::milliseconds timeout) {
  ProbeResult r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (conn_ != nullptr && PQstatus(conn_) != CONNECTION_OK) disconnect();
  if (conn_ == nullptr && !connect(deadline, r.error)) return r;
  if (PQsendQuery(conn_, kProbeSql) != 1) {
    r.error = trim(PQerrorMessage(conn_));
    disconnect();
    return r;
  }
  while (PQflush(conn_) == 1) {
    if (!wait_socket(true, deadline)) {
      r.error = "timed out sending the probe";
      disconnect();
      return r;
    }
  }
  bool got_row = false;
  for (;;) {
    while (PQisBusy(conn_)) {
      if (!wait_socket(false, deadline)) {
        r.error = "timed out waiting for the probe's answer";
        disconnect();
        return r;
      }
      if (PQconsumeInput(conn_) != 1) {
        r.error = trim(PQerrorMessage(conn_));
        disconnect();
        return r;
      }
    }
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) break;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
      r.in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
      r.lag_seconds = std::atof(PQgetvalue(res, 0, 1));
      got_row = true;
    } else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
      r.error = trim(PQresultErrorMessage(res));
    }
    PQclear(res);
  }
  if (!got_row) {
    if (r.error.empty()) r.error = "probe returned no row";
    disconnect();
    return r;
  }
  r.ok = true;
  return r;
}

}  // namespace pgsidecar::proxy
