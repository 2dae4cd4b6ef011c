// Small libpq helpers for tests: connect with a deadline, run SQL with a deadline, and
// get rows back as strings or the error's SQLSTATE. Nothing here waits without a bound,
// so a proxy that hangs fails the test instead of hanging it.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgsidecar::testing {

// SQLSTATE reported when libpq could not reach a server at all (refused, timed out, closed
// before any ErrorResponse): the server sent none, so this is libpq's client-side class
// 08001 sqlclient_unable_to_establish_sqlconnection.
inline constexpr std::string_view kNoServerSqlState = "08001";

// SQLSTATE reported when the connection broke without an ErrorResponse explaining why
// (the peer closed or reset it): 08006 connection_failure.
inline constexpr std::string_view kConnectionLostSqlState = "08006";

// SQLSTATE reported when a statement did not complete within its deadline (after a cancel
// request was sent): 57014 query_canceled, whatever the server ended up answering.
inline constexpr std::string_view kTimedOutSqlState = "57014";

// Builds a libpq conninfo string, quoting every value: {{"host", "127.0.0.1"}, ...}.
std::string make_conninfo(
    std::initializer_list<std::pair<std::string_view, std::string_view>> fields);

struct QueryResult {
  bool ok = false;          // the last statement succeeded (PGRES_COMMAND_OK / TUPLES_OK / COPY)
  bool timed_out = false;   // the deadline passed; sqlstate is kTimedOutSqlState
  std::string sqlstate;     // empty when ok
  std::string message;      // the server's primary message, or libpq's when it has none
  std::string command_tag;  // e.g. "INSERT 0 1", "SELECT 3"
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // NULL is "", see is_null()
  std::vector<std::vector<bool>> nulls;

  // The value at (row, col); throws std::out_of_range, which doctest reports with the
  // query's outcome, when there is no such cell.
  const std::string& value(std::size_t row = 0, std::size_t col = 0) const;
  bool is_null(std::size_t row, std::size_t col) const;
  // "ok: SELECT 1" or "ERROR 25006: cannot execute INSERT in a read-only transaction".
  std::string describe() const;
};

class Connection {
 public:
  // Connects (bounded by timeout). Check ok(); on failure sqlstate() is the server's
  // (e.g. 28P01 for a wrong password) or kNoServerSqlState.
  static Connection open(std::string_view conninfo,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

  Connection() = default;
  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool ok() const;
  const std::string& sqlstate() const { return sqlstate_; }
  const std::string& error() const { return error_; }

  // Runs sql (one or more statements, simple protocol). Results of all but the last
  // statement are dropped, except that the first error wins. After timeout a cancel
  // request is sent and the result says timed_out.
  QueryResult exec(std::string_view sql,
                   std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // One statement through the extended protocol ($1, $2 ... parameters, text format).
  QueryResult exec_params(std::string_view sql, const std::vector<std::string>& params,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // A named protocol-level prepared statement (PQsendPrepare: Parse, Sync), and one run of
  // a statement by name (PQsendQueryPrepared: Bind, Describe, Execute, Sync; "" is the
  // unnamed statement).
  QueryResult prepare(std::string_view name, std::string_view sql,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  QueryResult exec_prepared(std::string_view name, const std::vector<std::string>& params,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // NoticeResponse messages received so far ("NOTICE:  relation ... already exists").
  const std::vector<std::string>& notices() const;

  // The server's ParameterStatus value, e.g. "server_version"; "" when unknown.
  std::string parameter(const char* name) const;
  int backend_pid() const;
  PGconn* raw() const { return conn_.get(); }

 private:
  struct Finish {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  QueryResult collect(std::chrono::steady_clock::time_point deadline);
  QueryResult not_connected() const;
  QueryResult send_failed() const;  // a PQsend* call refused: libpq's message

  std::unique_ptr<PGconn, Finish> conn_;
  // On the heap: libpq keeps its address for the notice processor across moves.
  std::unique_ptr<std::vector<std::string>> notices_ = std::make_unique<std::vector<std::string>>();
  std::string sqlstate_;
  std::string error_;
};

// Connects, runs sql, disconnects. A failed connection comes back as a failed result
// carrying the connection's SQLSTATE and message.
QueryResult exec_once(std::string_view conninfo, std::string_view sql,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace pgsidecar::testing
