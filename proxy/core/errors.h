// Every error pgsidecar itself reports, as one enum. What a client sees of it (SQLSTATE,
// severity, message) comes from one table in errors.cpp, the only place in the runtime
// that names a SQLSTATE. Call sites pass the variable parts of the message in order.
#pragma once

#include "proxy/core/layer.h"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "protocol/error_response.h"

namespace pgsidecar::proxy {

enum class ProxyErrc : uint8_t {
  // Malformed or unexpected input from a client; the connection closes.
  ProtocolViolation,          // {what}
  // Logging in.
  LoginTimeout,
  TooManyClients,             // {max_client_connections}
  PasswordFailed,             // {user}
  AdminNotAllowed,            // {user}
  UnknownDatabase,            // {database}
  TlsRequired,                // a plain login while [tls] client_tls = "require"
  ClientCertificateMissing,   // auth_method "cert" without a verified client certificate
  CertificateAuthFailed,      // {user}: the certificate's CN is not the user name
  // A logged-in client's connection ends.
  ClientIdleTimeout,          // {ms}
  IdleInTransactionTimeout,   // {ms}
  PinnedIdleTimeout,          // {ms} {why pinned}
  ShuttingDown,
  KilledByAdmin,              // {database}
  AdminSimpleQueriesOnly,
  TooManyPreparedStatements,  // {count}
  ServerLost,                 // {database} {reason}
  ServerAbandoned,            // {database} {why}: declared down by the health monitor
  QueryTimeout,               // {ms}
  FencedBySwitchover,         // {database}
  // A request answered by pgsidecar itself; the connection goes on.
  UnknownPreparedStatement,   // {name}
  SessionStateRefused,        // {statement} (session_state = "refuse"), with a hint
  TooManyPreparedBytes,       // {bytes it would take} {max_prepared_bytes_per_client} (fatal inside an exchange)
  MessageOverClientBuffer,    // {message bytes} {max_client_buffer} (fatal inside an exchange)
  InFailedTransaction,        // a transaction whose deferred BEGIN could not get a server
  // Routing a transaction.
  NoServerKnown,              // {database}
  PrimaryUnavailable,         // {database}
  NoHealthyServer,            // {database}
  WriteWaitExpired,           // {database} {ms}
  SwitchoverPauseExpired,     // {database} {ms}
  // Getting a server connection from a pool.
  QueryWaitTimeout,           // {database} {user} {ms} {pool size}
  CapacityWaitTimeout,        // {database} {server's reason} {server connections} {ms}
  ServerUnreachable,          // {database} {reason}
  ServerConnectionFailed,     // {database} {reason}
  // Why a server connection could not log in (the reason in ServerConnectionFailed).
  ServerConnectFailed,        // {host:port} {reason}
  ServerClosedDuringLogin,
  ServerProtocolViolation,    // {what}
  ServerNeedsPassword,        // {user}
  ServerAuthFailed,           // {what}
  ServerTlsFailed,            // {host:port} {reason}
  ServerAuthRefused,          // {what}: the URL's require_auth, channel_binding or sslmode forbids it
  ServerScramIterations,      // {iterations} {max_scram_iterations}
  // The admin console.
  AdminUnknownCommand,        // {command}
  AdminBadArgument,           // {what}
  AdminUnknownDatabase,       // {database}
  SwitchoverFailed,           // {why}
};

enum class Severity : uint8_t { Error, Fatal };

// What a SQLSTATE's class says about the connection it came on, for decisions that
// depend on a server's own error codes.
enum class ErrorClass : uint8_t {
  Connection,    // class 08: the connection failed or could not be made
  ServerExit,    // 57P01..57P03: the server is shutting down, crashed or starting
  Other,
};
ErrorClass classify_sqlstate(std::string_view sqlstate);
// A server is going away (admin shutdown, crash shutdown, cannot connect now).
bool is_server_exit(std::string_view sqlstate);
// 08 or 57P0x: trouble with the connection or the server, not with the request.
inline bool is_connection_trouble(std::string_view sqlstate) {
  return classify_sqlstate(sqlstate) != ErrorClass::Other;
}

// A server refusing a login for lack of room, as its SQLSTATE tells.
enum class LoginRefusal : uint8_t {
  None,    // refused for another reason, or not refused
  Full,    // 53300 too_many_connections: max_connections, a role's or a database's
           // connection limit, or "remaining connection slots are reserved"
  NotNow,  // 57P03 cannot_connect_now: starting up, shutting down, not yet consistent
};
LoginRefusal classify_login_refusal(std::string_view sqlstate);

// An error on its way to a client. `sqlstate` is the table's, unless a server's own code
// is passed through (a server refusing a login says why, e.g. 28P01 or 3D000).
struct ProxyError {
  ProxyErrc code = ProxyErrc::ProtocolViolation;
  Severity severity = Severity::Error;
  std::string sqlstate;
  std::string message;
  std::string hint;  // empty: none

  bool fatal() const { return severity == Severity::Fatal; }
  ProxyError& as_fatal() {
    severity = Severity::Fatal;
    return *this;
  }
  protocol::ErrorFields fields() const;
};

// The table's SQLSTATE, severity and message for `code`, with `args` in its placeholders.
ProxyError make_error(ProxyErrc code, std::initializer_list<std::string_view> args = {});
std::string_view sqlstate_of(ProxyErrc code);
// A NOTICE (00000 successful_completion) that reports how a command went.
protocol::ErrorFields success_notice(std::string message);
// The SQLSTATE a failed server login gives the clients waiting for it: the server's own
// when it is a connection error or names the login's problem (password, database),
// otherwise 08001.
std::string_view login_failure_sqlstate(std::string_view server_sqlstate);

}  // namespace pgsidecar::proxy
