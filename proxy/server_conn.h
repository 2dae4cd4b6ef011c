// One connection to a PostgreSQL server: dial, log in, then forward the server's bytes to
// the client session that leases it, watching the few messages that matter to pooling
// (ReadyForQuery, ParameterStatus, ParseComplete/CloseComplete of injected messages,
// ErrorResponse). Large DataRow/CopyData messages stream through without being buffered.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/error_response.h"
#include "protocol/scram.h"
#include "proxy/ids.h"
#include "proxy/input_buffer.h"
#include "proxy/outbound_batch.h"
#include "proxy/prepared_statements.h"
#include "proxy/response_expectations.h"
#include "proxy/session_params.h"

namespace pgsidecar::proxy {

class ClientSession;
class PoolShard;
class Worker;

enum class ServerState {
  Connecting,     // TCP connect in progress; nothing sent
  LoggingIn,      // StartupMessage sent; authentication and ParameterStatus in progress
  Idle,           // last ReadyForQuery was 'I'; in the pool's idle list
  Active,         // leased to a session; bytes flow both ways
  Resetting,      // released with injected reset SQL in flight; back to idle at its ReadyForQuery
  Closing,        // handles closing; the pool frees the object when the last one is closed
};

class ServerConn {
 public:
  ServerConn(Worker& worker, PoolShard& pool, ServerId id);
  ServerConn(const ServerConn&) = delete;
  ServerConn& operator=(const ServerConn&) = delete;
  ~ServerConn();

  void connect();
  // Idempotent. The linked session (if any) is told with on_server_lost(reason).
  void close(std::string_view reason);

  ServerId id() const { return id_; }
  ServerState state() const { return state_; }
  PoolShard& pool() { return pool_; }
  uv_stream_t* stream() { return stream_; }
  int32_t backend_pid() const { return backend_pid_; }
  int32_t backend_secret() const { return backend_secret_; }
  char transaction_status() const { return tx_status_; }
  bool idle_in_sync() const { return expectations_.pending_ready() == 0; }
  std::chrono::steady_clock::time_point created_at() const { return created_at_; }
  std::chrono::steady_clock::time_point idle_since() const { return idle_since_; }

  // Pool side.
  void make_idle();
  void activate(ClientSession& session);  // lease to a session
  void detach();                          // the session let go (pool decides what next)
  void start_reset(std::string_view sql);  // injected SQL, swallowed; then on_server_ready

  // Session side: what the server has, for transparent prepared statements and settings.
  ServerStatements& statements() { return statements_; }
  ParamMap& params() { return params_; }
  ResponseExpectations& expectations() { return expectations_; }
  uint64_t defaults_fp() const { return defaults_fp_; }
  void set_defaults_fp(uint64_t fp) { defaults_fp_ = fp; }
  bool session_state_dirty() const { return dirty_; }
  void clear_session_state_dirty() { dirty_ = false; }
  SessionId last_session() const { return last_session_; }
  uint64_t params_version() const { return params_version_; }
  // The client settings list last made to match here, and the server's settings version
  // then. Clients with equal settings share one list (ParamSets), so the next client with
  // that list, or the same client with nothing changed, needs no comparison at all.
  struct SettingsSync {
    std::shared_ptr<const ParamList> client_settings;
    uint64_t server_version = 0;
  };
  SettingsSync& settings_sync() { return settings_sync_; }

  // The session queued bytes for us and may want to hear when they are written.
  void resume_reading();

 private:
  static void on_connect(uv_connect_t* req, int status);
  static void on_connect_timeout(uv_timer_t* t);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_forward_written(uv_write_t* req, int status);
  static void on_handle_closed(uv_handle_t* h);

  void set_state(ServerState next, const char* why);
  void start_login();
  void process_input();
  bool handle_login_message(char tag, std::span<const std::byte> body);
  bool process_forwarding();  // false when the connection was closed
  bool forward_pass();        // one pass over the input; false when the connection was closed
  void fail_login(const protocol::ErrorFields& why);
  void send_own(std::vector<std::byte> bytes);
  bool flush_forward();  // true: written at once (no completion callback follows)
  void note_response_started();
  void set_param(std::string_view name, std::string_view value);
  void maybe_free();

  Worker& worker_;
  PoolShard& pool_;
  ServerId id_;
  ServerState state_ = ServerState::Connecting;
  union {
    uv_tcp_t tcp_;
    uv_pipe_t pipe_;
  };
  uv_stream_t* stream_ = nullptr;
  uv_timer_t connect_timer_{};
  uv_connect_t connect_req_{};
  int open_handles_ = 0;
  int own_writes_ = 0;
  bool reading_ = false;
  bool closing_ = false;

  InputBuffer input_;
  OutboundBatch forward_;           // to the linked client
  uv_stream_t* forward_dest_ = nullptr;
  std::size_t passthrough_ = 0;     // bytes of a streaming message still to forward
  std::size_t skip_ = 0;            // bytes of a swallowed streaming message still to drop

  ClientSession* session_ = nullptr;
  SessionId last_session_ = 0;
  std::unique_ptr<protocol::ScramClient> scram_;
  int32_t backend_pid_ = 0;
  int32_t backend_secret_ = 0;
  char tx_status_ = 'I';
  ParamMap params_;
  uint64_t params_version_ = 0;  // bumped whenever a value in params_ changes
  SettingsSync settings_sync_;
  ServerStatements statements_;
  ResponseExpectations expectations_;
  uint64_t defaults_fp_ = 0;
  bool response_started_ = false;  // a byte went to the leasing session's client
  bool dirty_ = false;  // a session-level SET/RESET ran: another client must not inherit it
  std::chrono::steady_clock::time_point created_at_;
  std::chrono::steady_clock::time_point idle_since_;
};

}  // namespace pgsidecar::proxy
