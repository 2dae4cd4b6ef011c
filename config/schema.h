// The validated configuration: plain immutable structs with defaults in place.
// config::load() builds one; reload builds a new one and swaps the shared_ptr.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgsidecar::config {

using Duration = std::chrono::milliseconds;

enum class PoolMode { Session, Transaction };
enum class AuthMethod { ScramSha256, Md5, Trust, Cert };
enum class ClientTlsMode { Disable, Allow, Require };
enum class ReadPolicy { Primary, Replicas, Any };
enum class PrimaryDownPolicy { Fail, ReplicaReads };
// Transaction mode: what a statement that leaves state on its server connection does.
enum class SessionStatePolicy { Pin, Refuse };

// The spellings used in the configuration file (and in SHOW CONFIG).
constexpr std::string_view to_string(PoolMode m) {
  switch (m) {
    case PoolMode::Session: return "session";
    case PoolMode::Transaction: return "transaction";
  }
  return "?";
}
constexpr std::string_view to_string(SessionStatePolicy p) {
  switch (p) {
    case SessionStatePolicy::Pin: return "pin";
    case SessionStatePolicy::Refuse: return "refuse";
  }
  return "?";
}
constexpr std::string_view to_string(AuthMethod m) {
  switch (m) {
    case AuthMethod::ScramSha256: return "scram-sha-256";
    case AuthMethod::Md5: return "md5";
    case AuthMethod::Trust: return "trust";
    case AuthMethod::Cert: return "cert";
  }
  return "?";
}
constexpr std::string_view to_string(ClientTlsMode m) {
  switch (m) {
    case ClientTlsMode::Disable: return "disable";
    case ClientTlsMode::Allow: return "allow";
    case ClientTlsMode::Require: return "require";
  }
  return "?";
}
constexpr std::string_view to_string(ReadPolicy p) {
  switch (p) {
    case ReadPolicy::Primary: return "primary";
    case ReadPolicy::Replicas: return "replicas";
    case ReadPolicy::Any: return "any";
  }
  return "?";
}
constexpr std::string_view to_string(PrimaryDownPolicy p) {
  switch (p) {
    case PrimaryDownPolicy::Fail: return "fail";
    case PrimaryDownPolicy::ReplicaReads: return "replica_reads";
  }
  return "?";
}

// A server address parsed from a postgres:// URL with libpq's conninfo parser.
struct ServerAddress {
  std::string url;       // as written (after ${VAR} interpolation), for logs and SHOW
  // Where to connect: a host name, an IP address, or a Unix socket directory (starts with
  // '/'). When the URL gave hostaddr, this is that address, and a host name given beside it
  // stays in options["host"] (libpq uses it for TLS certificate checks).
  std::string host;
  uint16_t port = 5432;
  std::string dbname;    // empty: the client's database name
  std::string user;      // empty: the client's user (else a forced user for every client)
  std::string password;  // only with user
  std::string sslmode;   // empty when the URL does not say
  // The server authentication methods allowed (require_auth=, as libpq 16 spells it:
  // a comma list of password, md5, scram-sha-256, none). Empty: password (over TLS only),
  // md5 and scram-sha-256, but never none (docs/tls.md).
  std::string require_auth;
  // Every other conninfo option the URL carried (application_name, options, ...).
  std::map<std::string, std::string> options;
};

struct Listen {
  std::string address = "127.0.0.1";
  uint16_t port = 6432;
  std::string unix_socket_dir;  // empty: no Unix socket
  int workers = 0;              // 0: one per core
  int max_client_connections = 10000;
  // Connections admitted above max_client_connections for admin-console logins only.
  int admin_reserved_connections = 3;
  Duration drain_timeout{std::chrono::seconds(10)};  // SIGTERM: how long transactions may finish
  // SIGTERM: how long to keep serving, with /readyz failing, before the drain starts.
  Duration shutdown_delay{0};
};

struct Http {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: no HTTP endpoint
};

struct Auth {
  AuthMethod method = AuthMethod::ScramSha256;
  Duration login_timeout{std::chrono::seconds(10)};  // startup + authentication must finish by then
};

// [tls]: TLS toward clients (docs/tls.md). The files are read when the process starts and
// at every reload (SIGHUP), into a new TLS context for new connections.
struct Tls {
  std::string cert_file;  // PEM: the certificate (chain) pgsidecar shows clients
  std::string key_file;   // PEM: its private key
  std::string ca_file;    // PEM: CAs for client certificates; empty: none asked for
  // Default: "allow" when cert_file is set, else "disable".
  ClientTlsMode client_tls = ClientTlsMode::Disable;
  std::string min_protocol = "TLSv1.2";  // TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3
  bool enabled() const { return client_tls != ClientTlsMode::Disable; }
};

struct Limits {
  uint32_t max_message_size = 256u * 1024u * 1024u;  // bytes; larger is a protocol violation
  // Bytes one client may have pgsidecar hold for it: a message read whole before it is
  // forwarded (Parse, Describe, Close, a short Query), and replies pgsidecar wrote itself
  // that the client has not read yet (reading from the client pauses past this).
  uint32_t max_client_buffer = 16u * 1024u * 1024u;
  // A server login whose server-first-message asks for more SCRAM iterations fails (08004)
  // before any key derivation. PostgreSQL's default is 4096; this leaves room for hardened
  // servers (scram_iterations raised 25-fold) while refusing a count meant to burn CPU.
  int max_scram_iterations = 100'000;
};

struct User {
  std::string name;
  std::string password;         // plain text, "md5<hex>" or a SCRAM-SHA-256 verifier
  // Plain text for server logins. Defaults to password when that is plain text; empty
  // when password is a verifier or hash and no server_password was given.
  std::string server_password;
  std::optional<AuthMethod> auth_method;  // overrides [auth].method for this user
};

// Every key of [pool_defaults]; each [[databases]] entry may override any of them.
struct PoolSettings {
  PoolMode mode = PoolMode::Transaction;
  int size = 20;
  int min_idle = 0;
  Duration query_wait_timeout{std::chrono::seconds(5)};
  Duration server_connect_timeout{std::chrono::seconds(2)};
  Duration server_idle_timeout{std::chrono::seconds(60)};
  Duration server_lifetime{std::chrono::seconds(3600)};
  Duration client_idle_timeout{0};  // 0: never
  // A client idle inside a transaction holds a server from everyone else: close it after
  // this long (25P03), its transaction rolled back. 0: never.
  Duration idle_in_transaction_timeout{0};
  // A request (Query, or extended messages up to their Sync) that a server has not
  // finished answering this long: its server connection is abandoned and the client gets
  // FATAL 57014. 0: never.
  Duration query_timeout{0};
  // Transaction mode: state a statement leaves on its server connection (temp table,
  // session advisory lock, WITH HOLD cursor, LISTEN, SQL PREPARE) pins the client to that
  // connection, or the statement is refused (0A000). docs/pooling.md.
  SessionStatePolicy session_state = SessionStatePolicy::Pin;
  // A pinned client idle this long between transactions is closed (57P05). 0: never.
  Duration pinned_idle_timeout{0};
  int max_prepared_statements = 1000;  // per client, in transaction mode
  // Text and name bytes of one client's prepared statements, in transaction mode.
  int64_t max_prepared_bytes_per_client = 16 * 1024 * 1024;
  // Named statements kept on one server connection; the least recently used go first.
  int max_statements_per_server = 1000;
  int max_concurrent_logins = 4;  // server logins in flight per server, across all pools and workers
  int min_size = 1;               // a fleet share never caps the pool below this
  // Transaction mode: BEGIN from a client holding no server is answered at once and sent
  // with the transaction's first statement (docs/pooling.md, "Round trips saved").
  bool defer_begin = true;
  // Transaction mode: the empty query and SELECT 1 from a client holding no server are
  // answered without one while the route's server is healthy.
  bool answer_pings = false;
};

struct Health {
  Duration interval{std::chrono::milliseconds(500)};
  Duration timeout{std::chrono::seconds(1)};
  int failures_before_down = 2;
  int successes_before_up = 1;
  // A request its server has not answered (no byte back) for this long makes the health
  // monitor probe that server at once. 0: never.
  Duration suspect_after{std::chrono::seconds(1)};
  // Server sockets: unacknowledged data older than this (TCP_USER_TIMEOUT), or a silent
  // peer that fails tcp_keepalive_count keepalive probes, breaks the connection. 0: off.
  Duration tcp_user_timeout{std::chrono::seconds(15)};
  Duration tcp_keepalive_idle{std::chrono::seconds(15)};
  Duration tcp_keepalive_interval{std::chrono::seconds(5)};
  int tcp_keepalive_count = 3;
};

struct Database {
  std::string name;  // what clients put in dbname
  ServerAddress primary;
  std::vector<ServerAddress> replicas;
  ReadPolicy reads = ReadPolicy::Primary;
  PrimaryDownPolicy on_primary_down = PrimaryDownPolicy::ReplicaReads;
  Duration write_wait{std::chrono::seconds(10)};
  Duration max_replica_lag{std::chrono::seconds(5)};
  // Server connections that all sidecars serving this entry hold together, per server;
  // each takes a fair share (docs/pooling.md). 0: no fleet budget.
  int fleet_max_connections = 0;
  PoolSettings pool;  // [pool_defaults] with this entry's overrides applied
};

struct Config {
  std::string source_path;  // the file it was loaded from
  Listen listen;
  Http http;
  Auth auth;
  Tls tls;
  Limits limits;
  std::vector<std::string> admin_users;
  std::vector<User> users;
  PoolSettings pool_defaults;
  Health health;
  std::vector<Database> databases;

  const User* find_user(std::string_view name) const {
    for (const auto& u : users)
      if (u.name == name) return &u;
    return nullptr;
  }
  const Database* find_database(std::string_view name) const {
    for (const auto& d : databases)
      if (d.name == name) return &d;
    return nullptr;
  }
  AuthMethod auth_method_for(const User& u) const { return u.auth_method.value_or(auth.method); }
  bool is_admin(std::string_view user) const {
    for (const auto& a : admin_users)
      if (a == user) return true;
    return false;
  }
};

}  // namespace pgsidecar::config
