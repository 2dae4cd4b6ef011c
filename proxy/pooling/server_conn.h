// One connection to a PostgreSQL server: dial, log in (ServerLogin), then forward the
// server's bytes to the session that leases it, watching the few messages that matter to
// pooling (ReadyForQuery, ParameterStatus, ParseComplete/CloseComplete of injected
// messages, ErrorResponse). Large DataRow/CopyData messages stream through unbuffered.
//
// What the server still owes (expected replies) and what it holds (prepared statements,
// the settings it carries) live here alone: the leasing session tells the connection what
// it sends, and the connection keeps its own books.
#pragma once

#include "proxy/pooling/layer.h"

#include <uv.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/framer.h"
#include "proxy/core/errors.h"
#include "proxy/core/ids.h"
#include "proxy/io/input_buffer.h"
#include "proxy/io/loop.h"
#include "proxy/io/outbound_batch.h"
#include "proxy/io/tls_stream.h"
#include "proxy/io/uv_handle.h"
#include "proxy/pooling/parameters.h"
#include "proxy/pooling/pool_metrics.h"
#include "proxy/pooling/release_kind.h"
#include "proxy/pooling/response_expectations.h"
#include "proxy/pooling/server_login.h"
#include "proxy/pooling/server_lessee.h"
#include "proxy/pooling/server_statements.h"

namespace pgsidecar::proxy {

class PoolShard;

// What a client's session may leave on a server connection that outlives its
// transactions, and that the next client must not inherit. Each kind has its own reset,
// injected before the next client's first request (ServerConn::sync_settings).
struct SessionLeftovers {
  // Settings (SET, RESET, set_config(..., false)), SET ROLE / SET SESSION AUTHORIZATION,
  // or other startup defaults: RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL.
  bool settings = false;
  // Statements made by SQL PREPARE (or a DEALLOCATE the books may not follow): DEALLOCATE ALL.
  bool sql_statements = false;
  // LISTEN: UNLISTEN *. Until then the channel's notifications reach only the listener.
  bool listens = false;
  bool any() const { return settings || sql_statements || listens; }
};

enum class ServerState {
  Connecting,     // TCP connect, then (tls_step_) SSLRequest and TLS handshake; no login sent
  LoggingIn,      // StartupMessage sent; authentication and ParameterStatus in progress
  Idle,           // last ReadyForQuery was 'I'; in the pool's idle list
  Active,         // leased to a session; bytes flow both ways
  Resetting,      // released with injected reset SQL in flight; back to idle at its ReadyForQuery
  Closing,        // handles closing; the pool frees the object when the last one is closed
};

class ServerConn {
 public:
  ServerConn(io::Loop& loop, PoolShard& pool, ServerId id);
  ServerConn(const ServerConn&) = delete;
  ServerConn& operator=(const ServerConn&) = delete;
  ~ServerConn();

  void connect();
  // Idempotent. The leasing session (if any) is told with on_server_lost (ServerLost).
  void close(ServerCloseReason why, std::string_view detail = {});
  // Gives up on the server without waiting for it (declared down, or a request past
  // query_timeout): a login in progress fails with a connection error, the leasing
  // session gets `why` (or replays its read elsewhere), and the socket is closed.
  void abandon(const ProxyError& why);
  // From the pool's tick: a request unanswered for health.suspect_after makes the health
  // monitor probe this server at once (once per silence); one older than the pool's
  // query_timeout is abandoned with 57014.
  void watch_request(std::chrono::steady_clock::time_point now);

  ServerId id() const { return id_; }
  ServerState state() const { return state_; }
  bool closing() const { return state_ == ServerState::Closing; }
  bool logging_in() const { return state_ == ServerState::Connecting || state_ == ServerState::LoggingIn; }
  bool leased_or_resetting() const { return state_ == ServerState::Active || state_ == ServerState::Resetting; }
  PoolShard& pool() { return pool_; }
  const ServerLessee* lessee() const { return session_; }
  io::Sink stream() { return {stream_->stream, tls_.get()}; }
  bool encrypted() const { return tls_ != nullptr; }
  int32_t backend_pid() const { return backend_pid_; }
  int32_t backend_secret() const { return backend_secret_; }
  char transaction_status() const { return tx_status_; }
  bool idle_in_sync() const { return expectations_.pending_ready() == 0; }
  std::chrono::steady_clock::time_point created_at() const { return created_at_; }
  std::chrono::steady_clock::time_point idle_since() const { return idle_since_; }

  // Pool side.
  void make_idle();
  void activate(ServerLessee& session);  // lease to a session
  void detach();                         // the session let go (the pool decides what next)
  void start_reset();  // session mode: injected DISCARD ALL, swallowed; then on_server_ready

  // A CancelRequest aimed at this connection's current lease, sent and not yet taken by
  // the server (which closes the cancel connection once it has signalled the backend).
  // Until then the connection goes to no other client, whose query the signal could
  // interrupt: a release meanwhile is held and done by cancel_done().
  bool cancel_in_flight() const { return cancel_in_flight_; }
  void cancel_sent() { cancel_in_flight_ = true; }
  void cancel_done();
  void hold_release(ReleaseKind kind) { held_release_ = kind; }

  // Session side: what the leasing session sends, so the books stay right. Messages the
  // connection injects go into `to_server`, the session's batch, ahead of its own bytes.
  void client_sent_sync();                                        // Sync, Query or FunctionCall
  void client_sent_close(char kind, std::string_view name);      // Close: CloseComplete is owed
  void client_deallocated(std::string_view name) { statements_.erase(name); }
  // A client's Parse of `statement` under `name` (empty: the unnamed statement, and then
  // `statement` may be null). Another client's statement of the same name here is closed first.
  void client_sent_parse(std::string_view name, StatementRef statement, OutboundBatch& to_server);
  // Before a Bind or Describe of `name`: re-Parse it here, unseen by the client, unless
  // this connection already holds that statement (same text and parameter types).
  void ensure_statement(std::string_view name, const StatementRef& statement, OutboundBatch& to_server);
  // Before a Bind or Describe of a statement the leasing client never prepared: one of
  // that name here (the unnamed one included) is another client's, so it is closed first,
  // unseen, and the server answers 26000 as it would to this client alone.
  void close_foreign_statement(std::string_view name, OutboundBatch& to_server);
  // At the start of a lease (no portal is open then): true when this connection keeps
  // more named statements than max_statements_per_server.
  bool statements_over_limit() const;
  // Closes the least recently used statements past max_statements_per_server (Close...
  // Sync, replies swallowed); a client that needs one again gets it re-Parsed
  // (ensure_statement). Evicting only between transactions keeps a portal made from a
  // statement from being closed with it.
  void trim_statements(OutboundBatch& to_server);
  uint64_t statements_evicted() const { return statements_evicted_; }
  // The leasing client ran something that changes its session's settings with no SET
  // command tag to show it (set_config(..., false), a FunctionCall).
  void client_changed_settings() { carry(&SessionLeftovers::settings); }

  // A statement the client sent earlier and pgsidecar answered itself (a deferred BEGIN):
  // it runs here ahead of the client's next bytes, its replies swallowed.
  void send_answered(std::string_view sql, OutboundBatch& to_server) { inject_query(sql, to_server); }
  // Whether `session` left state here that outlives its transactions (settings, LISTEN,
  // SQL-prepared statements): statements that reset such state must then run here.
  bool carries_state_of(SessionId session) const { return carried_owner_ == session && carried_.any(); }

  // The settings this connection carries, for the session's settings sync.
  const ParamMap& params() const { return params_; }
  uint64_t params_version() const { return params_version_; }
  uint64_t defaults_fp() const { return defaults_fp_; }
  // The leasing session's statements changed the settings this connection carries: it
  // now carries the settings of fingerprint `fp` (kSettingsUnknown: none known, reset first).
  void settings_now(uint64_t fp) { defaults_fp_ = fp; }
  static constexpr uint64_t kSettingsUnknown = ~uint64_t{0};
  // What `session` (whose startup defaults are `defaults_fp`) must not inherit here:
  // another session's SETs, role or SQL-prepared statements, or other startup defaults.
  SessionLeftovers leftovers_for(SessionId session, uint64_t defaults_fp) const {
    SessionLeftovers out = carried_owner_ != session ? carried_ : SessionLeftovers{};
    if (defaults_fp_ != defaults_fp) out.settings = true;
    return out;
  }
  // The client settings list last made to match here, and the server's settings version
  // then. Clients with equal settings share one list (ParamSets), so the next client with
  // that list, or the same client with nothing changed, needs no comparison at all.
  bool settings_match(const std::shared_ptr<const ParamList>& client_settings) const {
    return synced_settings_ == client_settings && synced_version_ == params_version_;
  }
  // Injects the reset of `leftovers`, then `settings_sql` (which makes this connection
  // carry the session's settings and defaults `defaults_fp`), each its own Query so that
  // a failing SET cannot undo the reset; replies swallowed. Either may be empty.
  void sync_settings(SessionLeftovers leftovers, std::string_view settings_sql, uint64_t defaults_fp,
                     std::shared_ptr<const ParamList> client_settings, OutboundBatch& to_server);

  // The session queued bytes for us and may want to hear when they are written.
  void resume_reading();

 private:
  static void on_connect(uv_connect_t* req, int status);
  static void on_connect_timeout(uv_timer_t* t);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  void read(ssize_t nread, const uv_buf_t* buf);
  static void on_forward_written(uv_write_t* req, int status);
  static void on_last_handle_closed(void* self);

  void set_state(ServerState next, const char* why);
  void start_reading();
  void ask_for_tls();         // SSLRequest, or straight to the login when the URL does not want TLS
  void answer_to_tls();       // the server's one-byte answer: 'S' handshake, 'N' plain or refuse
  void drain_tls();           // handshake, then decrypt into input_ while there is room
  void start_login();
  void open_stream();  // a new socket to the server, then ask_for_tls()
  // sslmode=allow, as libpq: a plain login the server refused is tried again over TLS.
  bool retry_with_tls();
  void process_input();
  bool process_login();  // false when the connection closed
  bool handle_login_message(char tag, std::span<const std::byte> body);
  bool process_forwarding();  // false when the connection was closed
  bool forward_pass();        // one pass over the input; false when the connection was closed
  // A message pgsidecar reads whole (framed in the buffer); false when it closed us.
  bool handle_inspected(char tag, std::span<const std::byte> body, bool& forward, bool& boundary);
  bool handle_idle_message(const protocol::FrameHeader& h, std::span<const std::byte> in, bool& stop);
  void finish_boundary(bool forwarded);
  void fail_login(const ProxyError& why);
  void close_for(ServerCloseReason why, const std::string& reason, const ProxyError& for_lessee);
  void derive_keys_off_loop();
  void send_own(std::vector<std::byte> bytes);
  bool flush_forward();  // true: written at once (no completion callback follows)
  void note_response_started();
  void note_command_complete(std::span<const std::byte> body);  // a client command's tag
  void carry(bool SessionLeftovers::*kind);  // the leasing session left this kind of state
  void inject_query(std::string_view sql, OutboundBatch& to_server);
  void inject_close(std::string_view name, OutboundBatch& to_server);
  void note_skipped(const ResponseExpectations::Entry& skipped);
  // A NotificationResponse goes to the leasing client only if that client listened here.
  bool notification_for_lessee() const;
  void set_param(std::string_view name, std::string_view value);
  void maybe_free();

  io::Loop& loop_;
  PoolShard& pool_;
  ServerId id_;
  ServerState state_ = ServerState::Connecting;
  io::HandleGroup handles_;
  // The connection's socket: streams_[0], or streams_[1] once sslmode=allow retried with
  // TLS (the first one may still be closing then).
  std::array<io::Stream, 2> streams_;
  io::Stream* stream_ = &streams_[0];
  uv_timer_t connect_timer_{};
  uv_connect_t connect_req_{};
  int own_writes_ = 0;
  bool reading_ = false;
  bool cancel_in_flight_ = false;
  std::optional<ReleaseKind> held_release_;

  // TLS toward the server: None before asking (and on plain connections), AwaitingAnswer
  // once SSLRequest is sent, Handshaking after its 'S'; None again once established.
  enum class TlsStep : uint8_t { None, AwaitingAnswer, Handshaking };
  TlsStep tls_step_ = TlsStep::None;
  std::unique_ptr<io::TlsStream> tls_;  // null: plain
  bool tls_retry_ = false;              // this is sslmode=allow's second attempt, over TLS
  bool deriving_keys_ = false;  // a SCRAM key derivation runs on the thread pool

  InputBuffer input_;
  OutboundBatch forward_;           // to the leasing session's client
  io::Sink forward_dest_;
  std::size_t passthrough_ = 0;     // bytes of a streaming message still to forward
  std::size_t skip_ = 0;            // bytes of a swallowed streaming message still to drop

  ServerLessee* session_ = nullptr;
  std::unique_ptr<ServerLogin> login_;  // while logging in
  int32_t backend_pid_ = 0;
  int32_t backend_secret_ = 0;
  char tx_status_ = 'I';
  ParamMap params_;
  uint64_t params_version_ = 0;  // bumped whenever a value in params_ changes
  std::shared_ptr<const ParamList> synced_settings_;
  uint64_t synced_version_ = 0;
  ServerStatements statements_;
  uint64_t statements_evicted_ = 0;
  ResponseExpectations expectations_;
  uint64_t defaults_fp_ = 0;
  bool response_started_ = false;  // a byte went to the leasing session's client
  // The request the server is answering: when it was sent, when the server was last
  // heard from, and whether its silence was already reported (watch_request).
  struct RequestWatch {
    std::chrono::steady_clock::time_point sent;
    std::chrono::steady_clock::time_point heard;
    bool suspected = false;
  } watch_;
  static constexpr SessionId kNoSession = 0;
  // No session's id (their low 32 bits are a virtual pid, below 2^31).
  static constexpr SessionId kUnknownSession = ~SessionId{0};
  SessionLeftovers carried_;              // session state a client left here: another must not inherit it
  SessionId carried_owner_ = kNoSession;  // whose it is
  // Whose Parse made the unnamed statement here: kNoSession for none, kUnknownSession when
  // one may be there from a Close the server skipped (a client's own simple Query drops it
  // too, unless skipped: never counted on).
  SessionId unnamed_owner_ = kNoSession;
  std::chrono::steady_clock::time_point created_at_;
  uint64_t connect_started_ns_ = 0;  // uv_hrtime() at connect(), for the connect + login time
  std::chrono::steady_clock::time_point idle_since_;
};

}  // namespace pgsidecar::proxy
