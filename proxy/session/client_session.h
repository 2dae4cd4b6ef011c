// One client connection: startup and authentication (client_login.cpp), routing and
// replay (client_routing.cpp), the admin console (client_admin.cpp), and the forwarding
// state machine (client_session.cpp): frames the client's messages in place, leases a
// server from the pool when work arrives, has the server re-create prepared statements
// and settings it lacks, and forwards the rest as slices of its input buffer.
#pragma once

#include "proxy/session/layer.h"

#include <uv.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/schema.h"
#include "protocol/framer.h"
#include "protocol/frontend.h"
#include "protocol/scram.h"
#include "protocol/startup.h"
#include "proxy/core/errors.h"
#include "proxy/core/ids.h"
#include "proxy/io/input_buffer.h"
#include "proxy/io/outbound_batch.h"
#include "proxy/io/uv_handle.h"
#include "proxy/pooling/parameters.h"
#include "proxy/pooling/pool_shard.h"
#include "proxy/pooling/server_lessee.h"
#include "proxy/routing/router.h"
#include "proxy/session/client_statements.h"
#include "proxy/session/local_answers.h"
#include "proxy/session/session_host.h"
#include "proxy/session/session_tracker.h"

namespace pgsidecar::proxy {

class ServerConn;

// A FATAL error the client does not read (it stopped reading a large result, say) keeps
// its socket no longer than this: then the connection is closed without it.
inline constexpr std::chrono::seconds kFatalLinger{2};
// Replies queued to a client that has not logged in yet (and does not read them): more
// closes the connection. A whole login (authentication, settings, key) takes under 2 KiB.
inline constexpr std::size_t kMaxLoginReplyBytes = 16 * 1024;

enum class ClientPhase {
  Startup,         // waiting for StartupMessage, SSLRequest, GSSENCRequest or CancelRequest
  Authenticating,  // an authentication exchange is in progress
  LoggingIn,       // authenticated; learning the ParameterStatus values to report from a
                   // pool (lease_ says whether a server is awaited for that)
  Ready,           // logged in; forwarding, with or without a server (lease_)
  Admin,           // logged into the admin console, ready for a command
  AdminBusy,       // an admin command's reply is still to come; further commands wait
  Failing,         // a FATAL error is being written; nothing more is read; then Closed
  Closed,          // handles closing; the worker frees the object after the last one
};

// What the session holds or awaits from the pools, in LoggingIn and Ready.
enum class Lease {
  None,             // no server, none asked for
  WaitingInPool,    // queued in pool_ for a server
  WaitingForRoute,  // no server can take the transaction now (primary down, switchover):
                    // waiting for a new topology snapshot or route_wait_.deadline
  Linked,           // server_ is ours; bytes flow both ways
};

class ClientSession final : public ServerLessee {
 public:
  ClientSession(SessionHost& host, SessionId id, int32_t virtual_pid, int32_t virtual_secret);
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;
  ~ClientSession();

  // Takes an accepted connection from the listener's stream.
  bool accept_from(uv_stream_t* listener, bool is_tcp);
  void close(std::string_view reason);  // idempotent

  SessionId id() const { return id_; }
  int32_t virtual_pid() const { return virtual_pid_; }
  int32_t virtual_secret() const { return virtual_secret_; }
  ClientPhase phase() const { return phase_; }
  Lease lease() const { return lease_; }
  // uv_hrtime() since when it has waited for a server or a route; 0 when not waiting.
  uint64_t waiting_since() const { return timing_.wait_started; }
  // A word for SHOW CLIENTS: login, idle, waiting, active, admin, closing.
  const char* state_name() const;
  // Shutting down or KILL: close now if idle, else at the transaction's end, with `why`.
  void terminate(ProxyErrc why);
  void kill();  // KILL db: FATAL now; a server mid-transaction is closed
  ServerConn* server() { return server_; }
  // Transaction mode: why this client keeps its server between transactions ("" when it does not).
  std::string pin_reason() const;
  const std::string& user_name() const { return user_name_; }
  const std::string& database_name() const { return database_name_; }

  // From the worker, once a second: a time limit this session has run past, and what
  // running past it does (expire).
  enum class Overdue : uint8_t {
    None,
    Login,              // [auth] login_timeout: 57014, closed
    Idle,               // client_idle_timeout: 57P05, closed
    IdleInTransaction,  // idle_in_transaction_timeout: 25P03, closed with its server
    FatalReply,         // a FATAL the client has not read for kFatalLinger: closed anyway
    PinnedIdle,         // pinned_idle_timeout: 57P05, closed; its server is reset (DISCARD ALL)
  };
  Overdue overdue(std::chrono::steady_clock::time_point now) const;
  void expire(Overdue what);
  void reject_too_many(int limit);  // max_client_connections reached
  // Over max_client_connections but within admin_reserved_connections: only an admin
  // user's login to the admin console goes on; any other is refused (53300) at its startup.
  void admit_admin_only(int limit) { login_->admin_only_limit = limit; }
  void drain() { terminate(ProxyErrc::ShuttingDown); }  // shutting down
  void retry_route();               // a new topology snapshot: try routing again
  void route_wait_expired();        // write_wait (or the switchover pause) ran out
  void resume();                    // deferred work (io::Loop::defer) for this session

  // ServerLessee: from the pool and the leased server connection.
  SessionId lessee_id() const override { return id_; }
  io::Sink client_stream() override { return {stream_.stream, tls_.get()}; }
  void on_server_assigned(ServerConn& server) override;
  void on_server_unavailable(const ProxyError& why) override;
  void on_server_lost(const ProxyError& why) override;
  void on_ready_for_query(char tx_status) override;
  void on_parameter_status(std::string_view name, std::string_view value) override;
  void on_statement_done() override { tracker_.statement_done(); }
  void on_statement_failed() override { tracker_.statement_failed(); }
  void on_statements_reset() override { statements_.clear(); }
  void on_response_started() override;
  void on_copy_in(bool active) override { exchange_.copy_in = active; }
  bool replay_possible() const override { return retry_.capturing && !retry_.used && !retry_.bytes.empty(); }

 private:
  bool idle_expired(std::chrono::steady_clock::time_point now) const;                 // client_idle_timeout
  bool idle_in_transaction_expired(std::chrono::steady_clock::time_point now) const;  // idle_in_transaction_timeout
  bool pinned_idle_expired(std::chrono::steady_clock::time_point now) const;          // pinned_idle_timeout
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  void read(ssize_t nread, const uv_buf_t* buf);
  static void on_forward_written(uv_write_t* req, int status);
  static void on_last_handle_closed(void* self);

  void set_phase(ClientPhase next, const char* why);
  bool closed() const { return phase_ == ClientPhase::Closed; }
  void process_input();
  void run_passes();   // startup, login, forwarding or admin, on what the input buffer holds
  void finish_pass();  // after a pass: keep leftovers, size the buffer, start or stop reading

  // client_session_tls.cpp (the session's side of [tls])
  bool pull_tls();  // handshake, then decrypt what fits into input_; false: closed
  bool answer_ssl_request();  // after an SSLRequest: 'S' and a TLS session, or 'N'
  bool tls_refused_plain();   // client_tls = "require" and this login is plain TCP: refused
  bool check_client_certificate();  // auth_method "cert"
  void offer_sasl(std::vector<std::byte>& out);  // SCRAM-SHA-256-PLUS first over TLS
  bool select_sasl(std::string_view mechanism);  // false: refused

  // client_login.cpp
  bool process_startup();
  void reserve_for_login_message();
  void reserve_whole_message(uint32_t max);  // a typed message partly read: room for all
  bool handle_startup_packet(std::span<const std::byte> body);
  bool handle_auth_message(char tag, std::span<const std::byte> body);
  bool handle_password(std::span<const std::byte> body);
  bool handle_sasl(std::span<const std::byte> body);
  void begin_authentication();
  void authentication_succeeded();
  void take_startup_settings();
  void finish_login(const ParamMap& server_params);
  void fail_login(const ProxyError& why);

  // client_session.cpp
  enum class Pass { Again, Stop };
  Pass process_messages();
  enum class Step { Next, Wait, Stop };  // after one message: go on, wait for input or a server, or stop
  Step forward_message(const protocol::FrameHeader& h, std::span<const std::byte> in);
  Step answer_refused(const protocol::FrameHeader& h, std::span<const std::byte> in);
  bool refuse_over_buffer(const protocol::FrameHeader& h, std::span<const std::byte> in);
  bool refuse_unknown_statement(const protocol::FrameHeader& h, std::span<const std::byte> in);
  Step acquire_for(const protocol::FrameHeader& h, std::span<const std::byte> in);
  bool note_for_server(const protocol::FrameHeader& h, std::span<const std::byte> body);
  // How much of a Bind must be in the buffer first: its names, or all of it (up to
  // kWholeQueryBytes) when its statement sets a setting from its parameters.
  std::size_t bind_bytes_needed(const protocol::FrameHeader& h, std::span<const std::byte> in) const;
  bool handle_parse(std::span<const std::byte> body);
  enum class LocalPrepare { Done, NeedMore, No };
  LocalPrepare try_prepare_locally(std::span<const std::byte> in, const protocol::FrameHeader& h);
  ProxyError too_many_prepared_bytes(std::string_view name, std::string_view query) const;
  void ensure_statement_on_server(std::string_view name);
  bool sets_session_config(std::string_view sql);
  // The session effects of a Query's or Parse's text, one entry per statement; empty for none.
  std::vector<sql::StatementEffects> session_effects(std::string_view sql);
  void note_query_effects(std::string_view sql);  // "": a Query not read whole
  void note_statement_effects(const protocol::ParseMessage& parse);
  // session_state = "refuse": the statement of the head message that would pin the client ("" for none).
  std::string refused_statement(const protocol::FrameHeader& h, std::span<const std::byte> in);
  Step refuse_linked(const protocol::FrameHeader& h, std::span<const std::byte> in);
  void sync_settings_to(ServerConn& server);
  void take_tracker_outcome();  // after the server's replies: settings to follow, pins to log
  bool pinned() const { return !session_mode_ && pin_reasons_ != 0; }
  void link_server(ServerConn& server);
  void note_wait_over(PoolShard& pool);                        // client_wait histogram
  void note_request_done(PoolMetrics& metrics, char tx_status);  // query and transaction histograms
  void unlink_server(bool reusable);
  void release_on_close();
  bool flush_forward();  // true: written at once (no completion callback follows)
  void send_own(std::vector<std::byte> bytes);
  bool own_replies_full() const { return own_bytes_ >= config_->limits.max_client_buffer; }
  void send_error(const ProxyError& e, bool with_ready);
  void protocol_error(std::string message);
  void close_for_shutdown();
  bool between_transactions() const;  // ReadyForQuery 'I', nothing outstanding on the server
  void maybe_free();

  // client_routing.cpp
  Intent transaction_intent(char t, std::span<const std::byte> in, const protocol::FrameHeader& h);
  TextRoute text_route(std::string_view sql);  // quick_classify, then the classifier
  void route_and_acquire(Intent intent);
  void acquire_from(PoolShard& pool);
  void fail_route(ProxyError e);
  // No server can take the request (or login) now: wait for the next topology snapshot,
  // up to write_wait (the switchover pause's query_wait_timeout when `pause`) from the
  // first wait of this request.
  void wait_for_route(bool pause);
  ProxyError route_wait_error() const;  // the wait ran out: why
  bool finish_login_from_cache(const DatabaseTopology& topology);  // transaction mode, no server free
  Intent login_intent() const { return session_mode_ ? Intent::Write : Intent::Read; }
  void capture_for_retry(const std::byte* p, std::size_t n);
  void replay_request();

  // client_admin.cpp
  Pass process_admin_messages();

  // client_local.cpp: requests answered without a server (docs/pooling.md, "Round trips saved")
  enum class Local { No, Answered, Wait, Refused };
  Local answer_locally(std::span<const std::byte> in);  // `in` starts with a request
  bool answer_outside_transaction(sql::LocalStatement kind, bool ping, std::string_view sql,
                                  const sql::Classification* c, LocalReply& reply);
  bool set_answered_here(const sql::Classification& c, LocalReply& reply);  // a session SET of a value known good
  bool application_name_answered_here(const sql::SessionEffect& e, LocalReply& reply);
  bool untracked_state_possible() const;  // state on a server that a local answer would miss
  bool defaults_has(std::string_view name) const;  // a setting of the client (startup or SET), by name
  bool route_healthy();                   // a read would go to a server that is up now
  Intent deferred_intent(char t, std::span<const std::byte> in, const protocol::FrameHeader& h, Intent first);
  void send_deferred_begin();
  void deferred_begin_refused();

  SessionHost& host_;
  SessionId id_;
  int32_t virtual_pid_;
  int32_t virtual_secret_;
  ClientPhase phase_ = ClientPhase::Startup;
  Lease lease_ = Lease::None;

  io::HandleGroup handles_;
  io::Stream stream_;
  std::unique_ptr<io::TlsStream> tls_;  // null: plain (docs/tls.md)
  bool tcp_ = false;                    // TCP, not the Unix socket (which never needs TLS)
  int own_writes_ = 0;
  bool reading_ = false;  // uv_read_start is in effect

  InputBuffer input_;
  std::unique_ptr<OutboundBatch> forward_;  // to the leased server; from the loop's pool
  OutboundBatch& forward();        // takes one when there is none
  bool write_in_flight() const { return forward_ != nullptr && forward_->in_flight(); }
  bool forward_empty() const { return forward_ == nullptr || forward_->empty(); }
  io::Sink forward_dest_;
  std::size_t passthrough_ = 0;    // bytes of a streaming message still to forward
  std::size_t discard_ = 0;        // bytes of a refused request's message still to drop

  // What only logging in needs; freed once the client is logged in.
  enum class AuthMethod { Trust, Md5, Scram };
  struct LoginState {
    std::chrono::steady_clock::time_point accepted_at;
    protocol::StartupMessage startup;  // its user and database are moved out to the session
    std::unique_ptr<protocol::ScramServer> scram;
    std::array<std::byte, 4> md5_salt{};
    AuthMethod method = AuthMethod::Trust;
    bool user_known = false;
    bool scram_started = false;  // SASLInitialResponse handled
    // Each encryption request is allowed once per connection, as PostgreSQL allows.
    bool ssl_requested = false;
    bool gss_requested = false;
    int admin_only_limit = 0;    // > 0: in a slot reserved for admins (max_client_connections)
  };
  std::unique_ptr<LoginState> login_;
  std::string user_name_;
  std::string database_name_;
  // The configuration this session logged in with: user_ and database_ point into it,
  // and a reload never takes it away.
  std::shared_ptr<const config::Config> config_;
  const config::User* user_ = nullptr;
  const config::Database* database_ = nullptr;
  bool session_mode_ = false;  // pool mode of database_
  bool draining_ = false;      // close at the next transaction boundary (shutdown, KILL)
  ProxyErrc drain_reason_ = ProxyErrc::ShuttingDown;

  PoolShard* pool_ = nullptr;       // the pool of the lease (waited in or linked from)
  PoolShard* cached_pool_ = nullptr;  // the pool of the server last routed to
  ServerConn* server_ = nullptr;
  std::unique_ptr<ProxyError> pending_error_;  // the pool refused the current request

  // The protocol exchange in progress with the server.
  struct Exchange {
    bool extended = false;  // extended-protocol messages sent since the last Sync
    bool copy_in = false;   // the server asked for COPY data
    char tx_status = 'I';   // of the last ReadyForQuery
  } exchange_;

  struct RouteWait {
    // When the request (or login) was first routed: a wait that follows a failed attempt
    // (a connect timeout, say) counts from here, so write_wait bounds the whole request.
    std::optional<std::chrono::steady_clock::time_point> since;
    std::optional<std::chrono::steady_clock::time_point> deadline;  // of the transaction's wait
    bool pause = false;  // waiting out a switchover's pause, not the primary
    // Why the last attempt to reach the server failed (a refused connection, a TLS
    // verification): what the client is told when the wait runs out, rather than only
    // that it waited.
    std::unique_ptr<ProxyError> last_error;
    void clear() {
      since.reset();
      deadline.reset();
      last_error.reset();
    }
  } route_wait_;
  unsigned rotation_ = 0;      // spreads reads over replicas
  int routed_server_ = -1;     // topology index of the server this transaction was routed to
  Intent routed_intent_ = Intent::Write;
  // A read whose server dies before its answer starts is replayed once elsewhere.
  struct RetryState {
    bool capturing = false;       // a read: keep what is sent until the answer starts
    bool used = false;            // one retry per transaction
    bool replay_pending = false;  // replay once the cancelled write has completed
    int avoid = -1;               // the server that failed
    std::vector<std::byte> bytes;
  } retry_;

  // Timing for the pool's latency histograms (uv_hrtime(); 0: not running).
  struct Timing {
    uint64_t wait_started = 0;         // asked a pool for a server
    uint64_t request_started = 0;      // first message of a request forwarded
    uint64_t transaction_started = 0;  // first message of a transaction forwarded
  } timing_;
  DatabaseCounters* db_counters_ = nullptr;  // this worker's counters for database_
  AcceptedSettings* accepted_settings_ = nullptr;  // this worker's, for the client's pool
  bool write_held_ = false;  // this write waits (or waited) for the primary: counted when it ends

  ParamMap params_;            // the settings this client expects (reported ones)
  // Its non-reported settings (startup defaults and session SETs) and what pins it to a
  // server connection, followed from the server's replies.
  SessionTracker tracker_;
  bool settings_dirty_ = false;   // a RESET or DISCARD put the server back to its own defaults
  uint8_t pin_reasons_ = 0;       // as last logged and counted
  uint64_t followed_fp_ = 0;      // tracker_.fingerprint() when its outcome was last taken
  std::unique_ptr<ProxyError> refusing_;  // a refused request inside a transaction, skipped up to its end
  ClientStatements statements_;
  // The route transaction_intent found for the Parse that heads the input, and that
  // Parse's text length: handle_parse keeps it with the statement, so its Binds are not
  // classified again. Reset with every transaction's first message and every refusal.
  struct HeadParse {
    TextRoute route = TextRoute::Unknown;
    std::size_t query_size = 0;
  } head_parse_;
  // A BEGIN answered here (the client sees status 'T') and sent to the server with the
  // transaction's first statement.
  struct DeferredBegin {
    enum class Phase : uint8_t {
      None,     // no BEGIN held
      Held,     // answered; `sql` goes out ahead of the next request that needs a server
      Aborted,  // no server could be had for the first statement: status 'E' until ROLLBACK
    };
    Phase phase = Phase::None;
    std::string sql;
    TextRoute route = TextRoute::Unknown;  // of the BEGIN's modes
  } deferred_;
  std::shared_ptr<const ParamList> startup_settings_;  // params_ at login, for RESET ALL
  bool server_state_left_ = false;  // a server carries this client's untracked session state
  std::size_t own_bytes_ = 0;  // bytes of replies pgsidecar wrote itself, not yet written out
  std::chrono::steady_clock::time_point last_activity_;
};

}  // namespace pgsidecar::proxy
