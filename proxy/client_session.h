// One client connection: startup and authentication (client_login.cpp), routing and
// replay (client_routing.cpp), and the forwarding state machine (client_session.cpp):
// frames the client's messages in place,
// leases a server from the pool when work arrives, re-creates prepared statements and
// settings the server lacks, and forwards the rest as slices of its input buffer.
#pragma once

#include <uv.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/error_response.h"
#include "protocol/framer.h"
#include "protocol/scram.h"
#include "protocol/startup.h"
#include "proxy/ids.h"
#include "proxy/input_buffer.h"
#include "proxy/outbound_batch.h"
#include "proxy/prepared_statements.h"
#include "proxy/router.h"
#include "proxy/session_params.h"

namespace pgsidecar::config {
struct Config;
struct Database;
struct User;
}

namespace pgsidecar::proxy {

class PoolShard;
class ServerConn;
class Worker;

enum class ClientState {
  Startup,         // waiting for StartupMessage, SSLRequest, GSSENCRequest or CancelRequest
  Authenticating,  // an authentication exchange is in progress
  LoggingIn,       // authenticated; waiting for a server's parameters to report
  Ready,           // logged in; forwarding (with or without a leased server)
  Closing,         // handles closing; the worker frees the object when the last one is
};

class ClientSession {
 public:
  ClientSession(Worker& worker, SessionId id, int32_t virtual_pid, int32_t virtual_secret);
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;
  ~ClientSession();

  // Takes an accepted connection from the listener's stream.
  bool accept_from(uv_stream_t* listener, bool is_tcp);
  void close(std::string_view reason);  // idempotent

  SessionId id() const { return id_; }
  int32_t virtual_pid() const { return virtual_pid_; }
  int32_t virtual_secret() const { return virtual_secret_; }
  ClientState state() const { return state_; }
  uv_stream_t* stream() { return stream_; }
  ServerConn* server() { return server_; }
  const std::string& user_name() const { return user_name_; }
  const std::string& database_name() const { return database_name_; }

  // From the worker.
  bool idle_expired(std::chrono::steady_clock::time_point now) const;   // client_idle_timeout
  bool login_expired(std::chrono::steady_clock::time_point now) const;  // [auth] login_timeout
  void close_idle();
  void reject_too_many(int limit);  // max_client_connections reached
  void drain();                     // shutting down: close now if idle, else at the transaction's end
  void retry_route();               // a new topology snapshot: try routing again
  void route_wait_expired();        // write_wait (or the switchover pause) ran out
  void login_timed_out();           // answers 57014 and closes (no-op once logged in)

  // From the pool.
  void on_server_assigned(ServerConn& server);
  void on_server_unavailable(const protocol::ErrorFields& why);
  // From the server connection.
  void on_server_lost(std::string_view reason);        // it closed while leased to us
  void on_server_ready_for_query(char tx_status);      // after forwarding ReadyForQuery
  void on_server_parameter(std::string_view name, std::string_view value);
  void on_server_statements_reset();                   // DISCARD ALL / DEALLOCATE ALL ran
  void on_response_started();                          // the first byte of an answer was forwarded
  bool replay_possible() const { return retry_.capturing && !retry_.used && !retry_.bytes.empty(); }
  bool client_mid_exchange() const { return in_extended_ || copy_in_; }
  void note_copy_in(bool active) { copy_in_ = active; }

 private:
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_forward_written(uv_write_t* req, int status);
  static void on_handle_closed(uv_handle_t* h);

  void set_state(ClientState next, const char* why);
  void process_input();
  // client_login.cpp
  bool process_startup();
  void reserve_for_login_message();
  void reserve_whole_message(uint32_t max);  // a typed message partly read: room for all
  bool handle_startup_packet(std::span<const std::byte> body);
  bool handle_auth_message(char tag, std::span<const std::byte> body);
  void begin_authentication();
  void authentication_succeeded();
  void finish_login(const ParamMap& server_params);
  void fail_login(std::string_view sqlstate, std::string message);
  // client_session.cpp
  bool process_messages();  // false: stop (closed, waiting, or write in flight)
  bool process_admin_messages();
  bool handle_parse(std::span<const std::byte> body);
  enum class LocalPrepare { Done, NeedMore, No };
  LocalPrepare try_prepare_locally(std::span<const std::byte> in, const protocol::FrameHeader& h);
  bool ensure_statement_on_server(std::string_view name);
  enum class RouteOutcome { Acquiring, Waiting, Failed };
  Intent transaction_intent(char t, std::span<const std::byte> in, const protocol::FrameHeader& h);
  RouteOutcome route_and_acquire(Intent intent);
  void fail_route(protocol::ErrorFields e);
  void close_for_shutdown();
  void link_server(ServerConn& server);
  void capture_for_retry(const std::byte* p, std::size_t n);
  void replay_request();
  void unlink_server(bool reusable);
  bool flush_forward();  // true: written at once (no completion callback follows)
  void send_own(std::vector<std::byte> bytes, bool close_after = false);
  void send_error(const protocol::ErrorFields& e, bool with_ready);
  void protocol_error(std::string message);
  void maybe_free();

  Worker& worker_;
  SessionId id_;
  int32_t virtual_pid_;
  int32_t virtual_secret_;
  ClientState state_ = ClientState::Startup;

  union {
    uv_tcp_t tcp_;
    uv_pipe_t pipe_;
  };
  uv_stream_t* stream_ = nullptr;
  int open_handles_ = 0;
  int own_writes_ = 0;
  bool reading_ = false;
  bool closing_ = false;
  bool close_after_write_ = false;

  InputBuffer input_;
  std::unique_ptr<OutboundBatch> forward_;  // to the leased server; from the worker's pool
  OutboundBatch& forward();        // takes one when there is none
  bool write_in_flight() const { return forward_ != nullptr && forward_->in_flight(); }
  bool forward_empty() const { return forward_ == nullptr || forward_->empty(); }
  uv_stream_t* forward_dest_ = nullptr;
  std::size_t passthrough_ = 0;    // bytes of a streaming message still to forward

  // What only logging in needs; freed once the client is logged in.
  struct LoginState {
    std::chrono::steady_clock::time_point accepted_at;
    protocol::StartupMessage startup;  // its user and database are moved out to the session
    std::unique_ptr<protocol::ScramServer> scram;
    std::array<std::byte, 4> md5_salt{};
    bool user_known = false;
    bool scram_started = false;  // SASLInitialResponse handled
    char method = 0;             // 'S' SCRAM, 'M' md5, 'T' trust
  };
  std::unique_ptr<LoginState> login_;
  std::string user_name_;
  std::string database_name_;
  const config::User* user_ = nullptr;
  const config::Database* database_ = nullptr;

  PoolShard* pool_ = nullptr;
  ServerConn* server_ = nullptr;
  bool waiting_ = false;       // in the pool's wait queue
  bool route_waiting_ = false; // in the worker's route waiters (primary down, switchover)
  bool route_wait_is_pause_ = false;
  std::optional<std::chrono::steady_clock::time_point> route_deadline_;
  unsigned rotation_ = 0;      // spreads reads over replicas
  int routed_server_ = -1;     // topology index of the server this transaction was routed to
  Intent routed_intent_ = Intent::Write;
  struct RetryState {
    bool capturing = false;       // a read: keep what is sent until the answer starts
    bool used = false;            // one retry per transaction
    bool replay_pending = false;  // replay once the cancelled write has completed
    int avoid = -1;               // the server that failed
    std::vector<std::byte> bytes;
  } retry_;
  bool acquiring_ = false;     // inside PoolShard::acquire: do not re-enter process_input
  bool processing_ = false;    // inside process_input
  bool again_ = false;         // process_input was asked for while inside it
  std::unique_ptr<protocol::ErrorFields> pending_error_;  // the pool refused the current request
  std::size_t discard_ = 0;    // bytes of a refused request's message still to drop
  bool login_probe_ = false;   // the lease is only to learn server parameters
  bool in_extended_ = false;   // extended-protocol messages sent since the last Sync
  bool copy_in_ = false;       // server asked for COPY data
  bool session_mode_ = false;
  bool admin_ = false;         // logged into the admin console
  bool draining_ = false;      // the worker is stopping: close at the next transaction boundary
  bool admin_busy_ = false;    // an admin command's reply is still to come
  char tx_status_ = 'I';

  ParamMap params_;            // the settings this client expects (reported ones)
  PoolShard* cached_pool_ = nullptr;  // the pool of the server last routed to
  ParamList defaults_;         // its non-reported startup settings
  uint64_t defaults_fp_ = 0;
  ClientStatements statements_;
  std::chrono::steady_clock::time_point last_activity_;
};

}  // namespace pgsidecar::proxy
