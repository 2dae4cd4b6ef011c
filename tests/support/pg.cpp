#include "tests/support/pg.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <regex>
#include <stdexcept>
#include <thread>

namespace pgsidecar::testing {
namespace {

using Clock = std::chrono::steady_clock;

// How long a timed-out statement gets to answer its cancel request before the
// connection is dropped.
constexpr std::chrono::seconds kCancelGrace{5};

int millis_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(left.count(), 0, 60'000));
}

// Waits until the connection's socket has the events, or the deadline passes.
bool wait_socket(PGconn* conn, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd fd{PQsocket(conn), events, 0};
    if (fd.fd < 0) return true;  // libpq reports the broken connection itself
    const int timeout = millis_until(deadline);
    const int n = poll(&fd, 1, timeout);
    if (n > 0) return true;
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && timeout > 0) continue;  // the clamp cut a longer wait short
    return n < 0;                         // a poll error: let libpq find out what is wrong
  }
}

// With PQERRORS_VERBOSE libpq writes "FATAL:  28P01:  password authentication failed":
// the only place a connection failure's SQLSTATE can be read in libpq 15.
std::string sqlstate_from_message(const std::string& message) {
  static const std::regex pattern("(?:ERROR|FATAL|PANIC):  ([0-9A-Z]{5}): ");
  std::smatch m;
  if (std::regex_search(message, m, pattern)) return m[1].str();
  return std::string(kNoServerSqlState);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The parameter values as libpq takes them; valid while `params` lives.
std::vector<const char*> c_strings(const std::vector<std::string>& params) {
  std::vector<const char*> out;
  out.reserve(params.size());
  for (const auto& p : params) out.push_back(p.c_str());
  return out;
}

void append_quoted(std::string& out, std::string_view value) {
  out += '\'';
  for (const char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
}

// Fills r from one PGresult: the first error wins; otherwise the last result's rows.
void absorb(QueryResult& r, PGresult* res, PGconn* conn) {
  const ExecStatusType status = PQresultStatus(res);
  if (status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR ||
      status == PGRES_BAD_RESPONSE) {
    if (!r.sqlstate.empty()) return;
    r.ok = false;
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (state != nullptr) {
      r.sqlstate = state;
    } else {
      r.sqlstate = PQstatus(conn) == CONNECTION_BAD ? std::string(kConnectionLostSqlState)
                                                    : std::string(kNoServerSqlState);
    }
    r.message = primary != nullptr ? primary : trimmed(PQresultErrorMessage(res));
    return;
  }
  if (!r.sqlstate.empty()) return;
  r.ok = true;
  r.command_tag = PQcmdStatus(res);
  r.columns.clear();
  r.rows.clear();
  r.nulls.clear();
  if (status != PGRES_TUPLES_OK && status != PGRES_SINGLE_TUPLE) return;
  const int ncols = PQnfields(res);
  const int nrows = PQntuples(res);
  for (int c = 0; c < ncols; ++c) r.columns.emplace_back(PQfname(res, c));
  for (int row = 0; row < nrows; ++row) {
    std::vector<std::string> values;
    std::vector<bool> nulls;
    for (int c = 0; c < ncols; ++c) {
      const bool null = PQgetisnull(res, row, c) != 0;
      values.emplace_back(null ? "" : PQgetvalue(res, row, c));
      nulls.push_back(null);
    }
    r.rows.push_back(std::move(values));
    r.nulls.push_back(std::move(nulls));
  }
}

}  // namespace

std::string make_conninfo(
    std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  std::string out;
  for (const auto& [key, value] : fields) {
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    append_quoted(out, value);
  }
  return out;
}

const std::string& QueryResult::value(std::size_t row, std::size_t col) const {
  if (row >= rows.size() || col >= rows[row].size()) {
    throw std::out_of_range("no cell (" + std::to_string(row) + ", " + std::to_string(col) +
                            ") in result: " + describe());
  }
  return rows[row][col];
}

bool QueryResult::is_null(std::size_t row, std::size_t col) const {
  return row < nulls.size() && col < nulls[row].size() && nulls[row][col];
}

std::string QueryResult::describe() const {
  if (ok) return "ok: " + command_tag + " (" + std::to_string(rows.size()) + " rows)";
  return std::string(timed_out ? "TIMED OUT " : "ERROR ") + sqlstate + ": " + message;
}

Connection Connection::open(std::string_view conninfo, std::chrono::milliseconds timeout) {
  Connection c;
  const auto deadline = Clock::now() + timeout;
  const std::string info(conninfo);
  c.conn_.reset(PQconnectStart(info.c_str()));
  if (!c.conn_) {
    c.sqlstate_ = kNoServerSqlState;
    c.error_ = "libpq could not allocate a connection";
    return c;
  }
  PGconn* conn = c.conn_.get();
  PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
  // Keep notices for the test instead of libpq's default of printing them to stderr.
  PQsetNoticeProcessor(
      conn,
      [](void* arg, const char* message) {
        static_cast<std::vector<std::string>*>(arg)->push_back(trimmed(message));
      },
      c.notices_.get());
  PostgresPollingStatusType poll_status = PGRES_POLLING_WRITING;
  if (PQstatus(conn) == CONNECTION_BAD) poll_status = PGRES_POLLING_FAILED;
  while (poll_status != PGRES_POLLING_OK && poll_status != PGRES_POLLING_FAILED) {
    const short events = poll_status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (!wait_socket(conn, events, deadline) || Clock::now() >= deadline) {
      c.sqlstate_ = kNoServerSqlState;
      c.error_ = "timed out after " + std::to_string(timeout.count()) + " ms connecting";
      c.conn_.reset();
      return c;
    }
    poll_status = PQconnectPoll(conn);
  }
  if (poll_status == PGRES_POLLING_FAILED) {
    c.error_ = trimmed(PQerrorMessage(conn));
    c.sqlstate_ = sqlstate_from_message(c.error_);
    c.conn_.reset();
    return c;
  }
  PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
  // Non-blocking so that sending a query to a peer that stopped reading cannot hang.
  PQsetnonblocking(conn, 1);
  return c;
}

const std::vector<std::string>& Connection::notices() const {
  static const std::vector<std::string> none;
  return notices_ ? *notices_ : none;
}

bool Connection::ok() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }

std::string Connection::parameter(const char* name) const {
  if (!conn_) return {};
  const char* v = PQparameterStatus(conn_.get(), name);
  return v != nullptr ? v : "";
}

int Connection::backend_pid() const { return conn_ ? PQbackendPID(conn_.get()) : 0; }

QueryResult Connection::exec(std::string_view sql, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!conn_) return not_connected();
  const std::string text(sql);
  if (PQsendQuery(conn_.get(), text.c_str()) == 0) return send_failed();
  return collect(deadline);
}

QueryResult Connection::exec_params(std::string_view sql, const std::vector<std::string>& params,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!conn_) return not_connected();
  const std::vector<const char*> values = c_strings(params);
  const std::string text(sql);
  if (PQsendQueryParams(conn_.get(), text.c_str(), static_cast<int>(values.size()), nullptr,
                        values.data(), nullptr, nullptr, 0) == 0)
    return send_failed();
  return collect(deadline);
}

QueryResult Connection::prepare(std::string_view name, std::string_view sql, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!conn_) return not_connected();
  const std::string n(name);
  const std::string text(sql);
  if (PQsendPrepare(conn_.get(), n.c_str(), text.c_str(), 0, nullptr) == 0) return send_failed();
  return collect(deadline);
}

QueryResult Connection::exec_prepared(std::string_view name, const std::vector<std::string>& params,
                                      std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!conn_) return not_connected();
  const std::vector<const char*> values = c_strings(params);
  const std::string n(name);
  if (PQsendQueryPrepared(conn_.get(), n.c_str(), static_cast<int>(values.size()), values.data(), nullptr, nullptr,
                          0) == 0)
    return send_failed();
  return collect(deadline);
}

QueryResult Connection::not_connected() const {
  QueryResult r;
  r.sqlstate = kConnectionLostSqlState;
  r.message = "not connected" + (error_.empty() ? std::string() : ": " + error_);
  return r;
}

QueryResult Connection::send_failed() const {
  QueryResult r;
  r.sqlstate = kConnectionLostSqlState;
  r.message = trimmed(PQerrorMessage(conn_.get()));
  return r;
}

QueryResult Connection::collect(Clock::time_point deadline) {
  QueryResult r;
  PGconn* conn = conn_.get();
  bool cancelled = false;
  // COPY TO STDOUT data, one row per line, reported under the "COPY n" result after it.
  std::vector<std::vector<std::string>> copy_rows;
  bool copy_out_done = false;
  auto broken = [&](const char* why) {
    if (r.sqlstate.empty()) {
      r.ok = false;
      r.sqlstate = kConnectionLostSqlState;
      r.message = why + std::string(": ") + trimmed(PQerrorMessage(conn));
    }
    conn_.reset();
    return r;
  };
  // Flush what PQsendQuery could not write at once.
  for (;;) {
    const int flushed = PQflush(conn);
    if (flushed == 0) break;
    if (flushed < 0) return broken("sending the query failed");
    if (!wait_socket(conn, POLLIN | POLLOUT, deadline) || Clock::now() >= deadline) {
      r.timed_out = true;
      r.sqlstate = kTimedOutSqlState;
      r.message = "timed out sending the query; connection dropped";
      return broken("timed out");
    }
    if (PQconsumeInput(conn) == 0) return broken("reading failed");
  }
  for (;;) {
    while (PQisBusy(conn) != 0) {
      if (Clock::now() >= deadline) {
        if (cancelled) {
          r.timed_out = true;
          r.sqlstate = kTimedOutSqlState;
          r.message = "no answer, not even to a cancel request; connection dropped";
          return broken("timed out");
        }
        // PQcancel blocks until the server closes the cancel connection, with no
        // timeout of its own: run it aside so that a frozen peer cannot hang the test.
        if (PGcancel* cancel = PQgetCancel(conn); cancel != nullptr) {
          std::thread([cancel] {
            char err[256];
            PQcancel(cancel, err, sizeof err);
            PQfreeCancel(cancel);
          }).detach();
        }
        cancelled = true;
        r.timed_out = true;
        deadline = Clock::now() + kCancelGrace;
      }
      wait_socket(conn, POLLIN, deadline);
      if (PQconsumeInput(conn) == 0) {
        // libpq queued an error result describing the failure; read it below.
        break;
      }
    }
    PGresult* res = PQgetResult(conn);
    if (res == nullptr) break;
    const ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_COPY_IN) {
      // The server answers with an ErrorResponse naming this reason.
      PQputCopyEnd(conn, "COPY FROM STDIN is not supported by the test helper");
      PQflush(conn);
    } else if (status == PGRES_COPY_OUT) {
      copy_rows.clear();
      char* line = nullptr;
      int n = 0;
      while ((n = PQgetCopyData(conn, &line, 1)) != -1) {
        if (n == -2) {
          PQclear(res);
          return broken("COPY OUT failed");
        }
        if (n == 0) {
          if (!wait_socket(conn, POLLIN, deadline) || Clock::now() >= deadline) {
            r.timed_out = true;
            r.sqlstate = kTimedOutSqlState;
            r.message = "timed out during COPY OUT; connection dropped";
            PQclear(res);
            return broken("timed out");
          }
          PQconsumeInput(conn);
          continue;
        }
        copy_rows.push_back({trimmed(std::string(line, static_cast<std::size_t>(n)))});
        PQfreemem(line);
      }
      copy_out_done = true;
      PQclear(res);
      continue;
    } else {
      absorb(r, res, conn);
      if (copy_out_done && r.ok) {
        r.columns = {"copy"};
        r.nulls.assign(copy_rows.size(), {false});
        r.rows = std::move(copy_rows);
        copy_rows.clear();
      }
      copy_out_done = false;
    }
    PQclear(res);
    if (PQstatus(conn) == CONNECTION_BAD) {
      conn_.reset();
      break;
    }
  }
  if (cancelled) {
    r.ok = false;
    r.sqlstate = kTimedOutSqlState;
    if (r.message.empty()) r.message = "timed out; cancel request sent";
  }
  return r;
}

QueryResult exec_once(std::string_view conninfo, std::string_view sql,
                      std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Connection c = Connection::open(conninfo, timeout);
  if (!c.ok()) {
    QueryResult r;
    r.sqlstate = c.sqlstate();
    r.message = c.error();
    return r;
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return c.exec(sql, std::max(left, std::chrono::milliseconds(1)));
}

}  // namespace pgsidecar::testing
