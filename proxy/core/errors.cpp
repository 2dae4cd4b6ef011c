#include "proxy/core/errors.h"

#include <array>

#include "protocol/sqlstate.h"

namespace pgsidecar::proxy {

namespace sqlstate = protocol::sqlstate;

namespace {

// idle_session_timeout, PostgreSQL's own code for a session closed for idling.
constexpr std::string_view kIdleSessionTimeout = "57P05";
// idle_in_transaction_session_timeout, for a client that sat idle inside a transaction.
constexpr std::string_view kIdleInTransactionTimeout = "25P03";
// Server-exit codes: admin_shutdown, crash_shutdown, cannot_connect_now.
constexpr std::string_view kCrashShutdown = "57P02";

struct Entry {
  ProxyErrc code;
  std::string_view sqlstate;
  Severity severity;
  std::string_view message;  // {} marks a placeholder, filled in order
  std::string_view hint = {};
};

using enum ProxyErrc;
constexpr Severity E = Severity::Error;
constexpr Severity F = Severity::Fatal;

// In the enum's order: make_error() indexes it (checked by the static_assert below).
constexpr std::array kTable{
    Entry{ProtocolViolation, sqlstate::kProtocolViolation, F, "{}"},
    Entry{LoginTimeout, sqlstate::kQueryCanceled, F, "canceling authentication due to timeout"},
    Entry{TooManyClients, sqlstate::kTooManyConnections, F,
          "sorry, too many clients already (max_client_connections = {})"},
    Entry{PasswordFailed, sqlstate::kInvalidPassword, F, "password authentication failed for user \"{}\""},
    Entry{AdminNotAllowed, sqlstate::kInvalidAuthorizationSpecification, F,
          "user \"{}\" may not use the admin console (see [admin] users)"},
    Entry{UnknownDatabase, sqlstate::kInvalidCatalogName, F, "database \"{}\" does not exist"},
    Entry{TlsRequired, sqlstate::kInvalidAuthorizationSpecification, F,
          "connection without TLS refused: pgsidecar requires TLS ([tls] client_tls = \"require\"); connect with "
          "sslmode=require or stronger"},
    Entry{ClientCertificateMissing, sqlstate::kInvalidAuthorizationSpecification, F,
          "connection requires a valid client certificate"},
    Entry{CertificateAuthFailed, sqlstate::kInvalidAuthorizationSpecification, F,
          "certificate authentication failed for user \"{}\""},
    Entry{ClientIdleTimeout, kIdleSessionTimeout, F, "terminating connection due to client_idle_timeout ({} ms)"},
    Entry{IdleInTransactionTimeout, kIdleInTransactionTimeout, F,
          "terminating connection due to idle-in-transaction timeout (idle_in_transaction_timeout = {} ms)"},
    Entry{PinnedIdleTimeout, kIdleSessionTimeout, F,
          "terminating connection due to pinned_idle_timeout ({} ms): this client kept its server connection "
          "between transactions ({}) and sat idle"},
    Entry{ShuttingDown, sqlstate::kAdminShutdown, F, "terminating connection: pgsidecar is shutting down"},
    Entry{KilledByAdmin, sqlstate::kAdminShutdown, F,
          "terminating connection: the admin console ran KILL for database \"{}\""},
    Entry{AdminSimpleQueriesOnly, sqlstate::kFeatureNotSupported, F, "the admin console accepts only simple queries"},
    Entry{TooManyPreparedStatements, sqlstate::kProgramLimitExceeded, F,
          "too many prepared statements: this connection has {} (max_prepared_statements); close unused ones "
          "with Close or DEALLOCATE"},
    Entry{ServerLost, sqlstate::kConnectionFailure, F, "server connection for database \"{}\" was lost: {}"},
    Entry{ServerAbandoned, sqlstate::kConnectionFailure, F,
          "server connection for database \"{}\" was abandoned: {}; the outcome of a COMMIT in flight is unknown"},
    Entry{QueryTimeout, sqlstate::kQueryCanceled, F,
          "canceling statement due to query_timeout ({} ms): the server connection was abandoned; the outcome of a "
          "COMMIT in flight is unknown"},
    Entry{FencedBySwitchover, sqlstate::kAdminShutdown, F,
          "terminating connection: database \"{}\" switched over to another primary; reconnect to continue"},
    // PostgreSQL's own code and text for a Bind or Describe of a name never prepared.
    Entry{UnknownPreparedStatement, sqlstate::kInvalidSqlStatementName, E, "prepared statement \"{}\" does not exist"},
    Entry{SessionStateRefused, sqlstate::kFeatureNotSupported, E,
          "{} is not supported in transaction pooling mode with session_state = \"refuse\": it leaves state on "
          "one server connection, which the next transaction may not use",
          "Use session mode for this client, SET LOCAL, pg_advisory_xact_lock(), a temporary table created with ON "
          "COMMIT DROP inside a transaction, or protocol-level prepared statements."},
    Entry{TooManyPreparedBytes, sqlstate::kProgramLimitExceeded, E,
          "too many prepared statement bytes: this statement would bring this connection's prepared statements to {} "
          "bytes, over max_prepared_bytes_per_client ({}); close unused ones with Close or DEALLOCATE"},
    Entry{MessageOverClientBuffer, sqlstate::kProgramLimitExceeded, E,
          "message of {} bytes is over max_client_buffer ({} bytes): pgsidecar reads this kind of message whole "
          "before forwarding it"},
    // PostgreSQL's own code and text: the transaction failed before any statement ran.
    Entry{InFailedTransaction, sqlstate::kInFailedSqlTransaction, E,
          "current transaction is aborted, commands ignored until end of transaction block"},
    Entry{NoServerKnown, sqlstate::kConnectionFailure, E, "no server is known for database \"{}\""},
    Entry{PrimaryUnavailable, sqlstate::kConnectionFailure, E, "primary for database \"{}\" is unavailable"},
    Entry{NoHealthyServer, sqlstate::kConnectionFailure, E,
          "primary for database \"{}\" is unavailable and no replica is healthy and within max_replica_lag"},
    Entry{WriteWaitExpired, sqlstate::kReadOnlySqlTransaction, E,
          "primary for database \"{}\" is unavailable: this write waited {} ms (write_wait) for it to return"},
    Entry{SwitchoverPauseExpired, sqlstate::kCannotConnectNow, E,
          "database \"{}\" is paused for a switchover that did not finish within {} ms"},
    Entry{QueryWaitTimeout, sqlstate::kTooManyConnections, E,
          "query_wait_timeout: no server connection for database \"{}\" and user \"{}\" became free within {} ms "
          "(pool size {}, all in use)"},
    Entry{CapacityWaitTimeout, sqlstate::kTooManyConnections, E,
          "the database refused more connections for database \"{}\" ({}), and none of the pool's {} server "
          "connections became free within {} ms (query_wait_timeout)"},
    Entry{ServerUnreachable, sqlstate::kSqlclientUnableToEstablishSqlconnection, E,
          "cannot reach the server of database \"{}\": {}"},
    Entry{ServerConnectionFailed, sqlstate::kSqlclientUnableToEstablishSqlconnection, E,
          "server connection for database \"{}\" failed: {}"},
    Entry{ServerConnectFailed, sqlstate::kSqlclientUnableToEstablishSqlconnection, E,
          "could not connect to server {}: {}"},
    Entry{ServerClosedDuringLogin, sqlstate::kSqlclientUnableToEstablishSqlconnection, E,
          "server closed the connection during login"},
    Entry{ServerProtocolViolation, sqlstate::kProtocolViolation, E, "{}"},
    Entry{ServerNeedsPassword, sqlstate::kSqlserverRejectedEstablishmentOfSqlconnection, E,
          "server asked for a password for user \"{}\", but no plain-text server password is configured"},
    Entry{ServerAuthFailed, sqlstate::kSqlserverRejectedEstablishmentOfSqlconnection, E, "{}"},
    Entry{ServerTlsFailed, sqlstate::kSqlclientUnableToEstablishSqlconnection, E, "TLS with server {} failed: {}"},
    Entry{ServerAuthRefused, sqlstate::kSqlclientUnableToEstablishSqlconnection, E, "{}"},
    // Refused before any PBKDF2: each iteration is an HMAC, and a hostile or misconfigured
    // server (a SWITCHOVER target, say) could otherwise ask for minutes of CPU per login.
    Entry{ServerScramIterations, sqlstate::kSqlserverRejectedEstablishmentOfSqlconnection, E,
          "server asked for {} SCRAM iterations, more than max_scram_iterations ({}); raise [limits] "
          "max_scram_iterations if the server is trusted"},
    Entry{AdminUnknownCommand, sqlstate::kSyntaxError, E,
          "unknown admin command \"{}\"; try SHOW HEALTH | POOLS | DATABASES | STATS | SERVERS | CLIENTS | CONFIG | "
          "LISTS | VERSION | LATENCY, PAUSE db, RESUME db, RELOAD, KILL db, SWITCHOVER db TO 'postgres://...', "
          "SHUTDOWN"},
    Entry{AdminBadArgument, sqlstate::kInvalidParameterValue, E, "{}"},
    Entry{AdminUnknownDatabase, sqlstate::kInvalidCatalogName, E, "database \"{}\" is not configured"},
    Entry{SwitchoverFailed, sqlstate::kObjectNotInPrerequisiteState, E, "SWITCHOVER failed: {}"},
};

constexpr bool table_in_enum_order() {
  for (std::size_t i = 0; i < kTable.size(); ++i)
    if (static_cast<std::size_t>(kTable[i].code) != i) return false;
  return true;
}
static_assert(table_in_enum_order(), "kTable must list every ProxyErrc in the enum's order");
static_assert(kTable.size() == static_cast<std::size_t>(SwitchoverFailed) + 1, "every ProxyErrc has an entry");

std::string fill(std::string_view format, std::initializer_list<std::string_view> args) {
  std::string out;
  out.reserve(format.size() + 32);
  auto arg = args.begin();
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] == '{' && i + 1 < format.size() && format[i + 1] == '}') {
      if (arg != args.end()) out.append(*arg++);
      ++i;
      continue;
    }
    out.push_back(format[i]);
  }
  return out;
}

}  // namespace

ErrorClass classify_sqlstate(std::string_view s) {
  if (s.substr(0, 2) == sqlstate::kConnectionException.substr(0, 2)) return ErrorClass::Connection;
  if (is_server_exit(s)) return ErrorClass::ServerExit;
  return ErrorClass::Other;
}

bool is_server_exit(std::string_view s) {
  return s == sqlstate::kAdminShutdown || s == kCrashShutdown || s == sqlstate::kCannotConnectNow;
}

LoginRefusal classify_login_refusal(std::string_view s) {
  if (s == sqlstate::kTooManyConnections) return LoginRefusal::Full;
  if (s == sqlstate::kCannotConnectNow) return LoginRefusal::NotNow;
  return LoginRefusal::None;
}

std::string_view login_failure_sqlstate(std::string_view server_sqlstate) {
  if (classify_sqlstate(server_sqlstate) == ErrorClass::Connection || server_sqlstate == sqlstate::kInvalidPassword ||
      server_sqlstate == sqlstate::kInvalidCatalogName)
    return server_sqlstate;
  return sqlstate::kSqlclientUnableToEstablishSqlconnection;
}

protocol::ErrorFields success_notice(std::string message) {
  return protocol::make_error("NOTICE", sqlstate::kSuccessfulCompletion, std::move(message));
}

std::string_view sqlstate_of(ProxyErrc code) { return kTable[static_cast<std::size_t>(code)].sqlstate; }

ProxyError make_error(ProxyErrc code, std::initializer_list<std::string_view> args) {
  const Entry& e = kTable[static_cast<std::size_t>(code)];
  ProxyError out;
  out.code = code;
  out.severity = e.severity;
  out.sqlstate = e.sqlstate;
  out.message = fill(e.message, args);
  out.hint = e.hint;
  return out;
}

protocol::ErrorFields ProxyError::fields() const {
  protocol::ErrorFields f = protocol::make_error(severity == Severity::Fatal ? "FATAL" : "ERROR", sqlstate, message);
  f.hint = hint;
  return f;
}

}  // namespace pgsidecar::proxy
