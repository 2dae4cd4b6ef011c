#include "proxy/pooling/server_conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include "protocol/backend.h"
#include "protocol/framer.h"
#include "protocol/messages.h"
#include "protocol/tags.h"
#include "protocol/wire.h"
#include "proxy/core/log.h"
#include "proxy/io/owned_write.h"
#include "proxy/pooling/pool_shard.h"
#include "proxy/pooling/server_address.h"

namespace pgsidecar::proxy {

using protocol::BackendTag;
using protocol::tag;

namespace {

const char* state_name(ServerState s) {
  switch (s) {
    case ServerState::Connecting: return "connecting";
    case ServerState::LoggingIn: return "logging_in";
    case ServerState::Idle: return "idle";
    case ServerState::Active: return "active";
    case ServerState::Resetting: return "resetting";
    case ServerState::Closing: return "closing";
  }
  return "?";
}

// Messages pgsidecar reads whole; everything else streams through in pieces.
bool inspected(char t) {
  switch (t) {
    case tag(BackendTag::ReadyForQuery):
    case tag(BackendTag::ParameterStatus):
    case tag(BackendTag::ErrorResponse):
    case tag(BackendTag::ParseComplete):
    case tag(BackendTag::CloseComplete):
    case tag(BackendTag::CommandComplete):
    case tag(BackendTag::EmptyQueryResponse):
    case tag(BackendTag::PortalSuspended):
    case tag(BackendTag::CopyInResponse):
    case tag(BackendTag::CopyBothResponse):
    case tag(BackendTag::NotificationResponse):
      return true;
    default:
      return false;
  }
}

// Session mode: everything a session can leave, before the next client.
constexpr std::string_view kSessionReset = "DISCARD ALL";

// admin_shutdown, crash_shutdown, cannot_connect_now: the server is stopping or starting.
bool server_is_going_away(std::span<const std::byte> error_body) {
  protocol::ErrorFields e;
  return protocol::parse_error_response(error_body, e) && is_server_exit(e.sqlstate);
}

// Keepalive and TCP_USER_TIMEOUT, so that the kernel breaks a connection to a peer that
// went silent (a partition, a host gone) even while pgsidecar waits for nothing from it.
void set_tcp_options(uv_tcp_t& tcp, const config::Health& h) {
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp), &fd) != 0) return;
  const auto seconds = [](config::Duration d) { return static_cast<int>(std::max<long long>(1, (d.count() + 999) / 1000)); };
  if (h.tcp_keepalive_idle.count() > 0) {
    const int on = 1, idle = seconds(h.tcp_keepalive_idle), count = h.tcp_keepalive_count;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    if (h.tcp_keepalive_interval.count() > 0) {
      const int interval = seconds(h.tcp_keepalive_interval);
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    }
  }
  if (h.tcp_user_timeout.count() > 0) {
    const unsigned ms = static_cast<unsigned>(h.tcp_user_timeout.count());
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
  }
}

}  // namespace

ServerConn::ServerConn(io::Loop& loop, PoolShard& pool, ServerId id)
    : loop_(loop), pool_(pool), id_(id), handles_(this, &ServerConn::on_last_handle_closed), input_(loop.buffers()) {
  created_at_ = idle_since_ = loop.now();
}

ServerConn::~ServerConn() = default;

void ServerConn::set_state(ServerState next, const char* why) {
  log_debug("server_state")
      .kv("worker", loop_.id())
      .kv("server", static_cast<long long>(id_))
      .kv("from", state_name(state_))
      .kv("to", state_name(next))
      .kv("reason", why);
  const bool was_logging_in = logging_in();
  const bool was_working = !was_logging_in && !closing();
  state_ = next;
  // The pool counts logins in flight and working connections: each change once, here.
  if (was_logging_in && !logging_in()) {
    pool_.on_login_ended(!closing());
  } else if (was_working && closing()) {
    pool_.on_working_closed();
  }
}

void ServerConn::connect() {
  connect_started_ns_ = uv_hrtime();
  uv_timer_init(loop_.uv(), &connect_timer_);
  handles_.opened(reinterpret_cast<uv_handle_t*>(&connect_timer_));
  // The timer covers connect and login: a server that accepts but never answers is caught too.
  uv_timer_start(&connect_timer_, &ServerConn::on_connect_timeout,
                 static_cast<uint64_t>(pool_.settings().server_connect_timeout.count()), 0);
  open_stream();
}

void ServerConn::open_stream() {
  const ResolvedAddress& address = pool_.address();
  connect_req_.data = this;
  stream_->init(loop_.uv(), !address.is_unix, handles_);
  int rc = 0;
  if (address.is_unix) {
    uv_pipe_connect(&connect_req_, &stream_->pipe, address.unix_path.c_str(), &ServerConn::on_connect);
  } else {
    uv_tcp_nodelay(&stream_->tcp, 1);
    rc = uv_tcp_connect(&connect_req_, &stream_->tcp, reinterpret_cast<const sockaddr*>(&address.addr),
                        &ServerConn::on_connect);
    if (rc == 0) set_tcp_options(stream_->tcp, pool_.config().health);
  }
  if (rc != 0) {
    const ServerTarget& t = pool_.target();
    fail_login(make_error(ProxyErrc::ServerConnectFailed, {t.host + ":" + std::to_string(t.port), uv_strerror(rc)}));
  }
}

void ServerConn::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<ServerConn*>(req->data);
  if (self->closing()) return;
  if (status < 0) {
    const ServerTarget& t = self->pool_.target();
    self->fail_login(
        make_error(ProxyErrc::ServerConnectFailed, {t.host + ":" + std::to_string(t.port), uv_strerror(status)}));
    return;
  }
  self->ask_for_tls();
}

void ServerConn::on_connect_timeout(uv_timer_t* t) {
  auto* self = static_cast<ServerConn*>(t->data);
  if (self->closing()) return;
  const ServerTarget& target = self->pool_.target();
  self->fail_login(make_error(ProxyErrc::ServerConnectFailed,
                              {target.host + ":" + std::to_string(target.port),
                               "timed out after " +
                                   std::to_string(self->pool_.settings().server_connect_timeout.count()) + " ms"}));
}

void ServerConn::start_reading() {
  if (reading_) return;
  reading_ = true;
  uv_read_start(stream_->stream, &ServerConn::on_alloc, &ServerConn::on_read);
}

void ServerConn::start_login() {
  set_state(ServerState::LoggingIn, "connected");
  login_ = std::make_unique<ServerLogin>(pool_.target(), pool_.tls().auth(), tls_.get(),
                                         pool_.config().limits.max_scram_iterations);
  send_own(login_->startup_message());
  start_reading();
}

// PBKDF2 at the server's iteration count takes milliseconds to seconds of CPU: on the
// thread pool, so that every other connection of this loop is served meanwhile. Messages
// from the server wait in the input buffer until the answer is sent.
void ServerConn::derive_keys_off_loop() {
  std::shared_ptr<protocol::ScramKeyDerivation> keys = login_->take_key_derivation();
  deriving_keys_ = true;
  loop_.queue_work([keys] { keys->derive(); },
                   [this, keys] {
                     deriving_keys_ = false;  // *this waited for this (maybe_free)
                     if (closing()) {
                       maybe_free();
                       return;
                     }
                     std::vector<std::byte> reply;
                     login_->keys_derived(*keys, reply);
                     send_own(std::move(reply));
                     io::Loop& loop = loop_;  // *this may be gone once process_input returns
                     process_input();
                     loop.run_deferred();
                   });
}

void ServerConn::send_own(std::vector<std::byte> bytes) {
  ++own_writes_;
  write_owned(stream(), std::move(bytes), [this](int) {
    --own_writes_;
    maybe_free();
  });
}

void ServerConn::fail_login(const ProxyError& why) {
  if (closing()) return;
  log_warn("server_login_failed")
      .kv("worker", loop_.id())
      .kv("server", static_cast<long long>(id_))
      .kv("database", pool_.key().database)
      .kv("sqlstate", why.sqlstate)
      .kv("error", why.message);
  pool_.on_server_failed(*this, why);
  close(ServerCloseReason::LoginFailed);
}

void ServerConn::close(ServerCloseReason why, std::string_view detail) {
  const std::string reason = detail.empty() ? std::string(to_string(why)) : std::string(detail);
  close_for(why, reason, make_error(ProxyErrc::ServerLost, {pool_.key().database, reason}));
}

void ServerConn::abandon(const ProxyError& why) {
  if (closing()) return;
  if (logging_in()) {
    const ServerTarget& t = pool_.target();
    fail_login(make_error(ProxyErrc::ServerConnectFailed, {t.host + ":" + std::to_string(t.port), why.message}));
    return;
  }
  close_for(ServerCloseReason::Abandoned, why.message, why);
}

void ServerConn::client_sent_sync() {
  if (idle_in_sync()) {
    watch_.sent = watch_.heard = loop_.now();
    watch_.suspected = false;
  }
  expectations_.expect('Z', false);
}

void ServerConn::watch_request(std::chrono::steady_clock::time_point now) {
  if (state_ != ServerState::Active || idle_in_sync()) return;
  const config::Duration query_timeout = pool_.settings().query_timeout;
  if (query_timeout.count() > 0 && now - watch_.sent >= query_timeout) {
    abandon(make_error(ProxyErrc::QueryTimeout, {std::to_string(query_timeout.count())}));
    return;
  }
  const config::Duration suspect_after = pool_.config().health.suspect_after;
  if (suspect_after.count() > 0 && !watch_.suspected && now - watch_.heard >= suspect_after) {
    watch_.suspected = true;
    log_info("server_silent")
        .kv("worker", loop_.id())
        .kv("server", static_cast<long long>(id_))
        .kv("database", pool_.key().database)
        .kv("silent_ms", static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(now - watch_.heard).count()));
    pool_.suspect_server();
  }
}

void ServerConn::close_for(ServerCloseReason why, const std::string& reason, const ProxyError& for_lessee) {
  if (closing()) return;
  const bool was_logged_in = !logging_in();
  ++pool_.metrics().servers_closed[static_cast<std::size_t>(why)];
  set_state(ServerState::Closing, reason.c_str());
  pool_.on_server_closing(*this);
  if (was_logged_in) {
    log_info("server_closed")
        .kv("worker", loop_.id())
        .kv("server", static_cast<long long>(id_))
        .kv("database", pool_.key().database)
        .kv("reason", reason);
  }
  if (session_ != nullptr) {
    ServerLessee* s = session_;
    session_ = nullptr;
    s->on_server_lost(for_lessee);
  }
  if (stream_->initialised()) {
    if (reading_) uv_read_stop(stream_->stream);
    reading_ = false;
    handles_.close(stream_->handle());
  }
  if (connect_timer_.data != nullptr) handles_.close(reinterpret_cast<uv_handle_t*>(&connect_timer_));
}

void ServerConn::on_last_handle_closed(void* self) { static_cast<ServerConn*>(self)->maybe_free(); }

void ServerConn::maybe_free() {
  // A cancel in flight still finds this connection when it is done (cancel_done), and a
  // key derivation on the thread pool when it returns.
  if (!closing() || handles_.open() > 0 || own_writes_ > 0 || forward_.in_flight() || cancel_in_flight_ ||
      deriving_keys_)
    return;
  pool_.on_server_closed(*this);  // deletes *this
}

void ServerConn::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<ServerConn*>(h->data);
  // Ciphertext goes to the TLS session's read BIO at once: the loop's scratch space will do.
  *buf = self->tls_ != nullptr ? self->loop_.buffers().scratch() : self->input_.free_space();
}

void ServerConn::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<ServerConn*>(s->data);
  io::Loop& loop = self->loop_;  // *self may be gone when read() returns
  self->read(nread, buf);
  loop.run_deferred();
}

void ServerConn::read(ssize_t nread, const uv_buf_t* buf) {
  if (nread == UV_ENOBUFS || nread == 0) return;
  if (nread < 0) {
    if (logging_in()) {
      fail_login(make_error(ProxyErrc::ServerClosedDuringLogin));
      return;
    }
    // Passive health detection: a lost server connection triggers an immediate probe.
    pool_.suspect_server();
    close(ServerCloseReason::ServerGone,
                nread == UV_EOF ? "server closed the connection" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  watch_.heard = loop_.now();
  watch_.suspected = false;
  if (tls_ != nullptr) {
    tls_->received(buf->base, static_cast<std::size_t>(nread));
    drain_tls();
    return;
  }
  input_.commit(static_cast<std::size_t>(nread));
  if (tls_step_ == TlsStep::AwaitingAnswer) {
    answer_to_tls();
    return;
  }
  process_input();
}

void ServerConn::resume_reading() {
  if (closing() || !stream_->initialised()) return;
  start_reading();
}

void ServerConn::process_input() {
  if (state_ == ServerState::LoggingIn && !process_login()) return;
  if (state_ == ServerState::LoggingIn || closing()) return;
  if (!process_forwarding()) return;
  // Stop reading while the buffer is full: the pending write's completion resumes it.
  if (input_.full() && reading_) {
    uv_read_stop(stream_->stream);
    reading_ = false;
  } else if (!input_.full() && !reading_ && !forward_.in_flight()) {
    resume_reading();
  }
  if (!forward_.in_flight() && session_ == nullptr) input_.release_if_empty();
}

bool ServerConn::process_login() {
  const uint32_t max = pool_.config().limits.max_message_size;
  while (state_ == ServerState::LoggingIn && !deriving_keys_) {
    protocol::Frame frame;
    std::size_t used = 0;
    std::string error;
    const auto status = protocol::next_frame(input_.unread(), frame, used, max, &error);
    if (status == protocol::FrameStatus::NeedMore) {
      protocol::FrameHeader h;
      if (protocol::peek_header(input_.unread(), h, max) == protocol::FrameStatus::Ready &&
          !input_.reserve_unread(h.total_size(), max + 1)) {
        fail_login(make_error(ProxyErrc::ServerProtocolViolation, {"server message too large"}));
        return false;
      }
      break;
    }
    if (status == protocol::FrameStatus::Invalid) {
      fail_login(make_error(ProxyErrc::ServerProtocolViolation, {"invalid message from server: " + error}));
      return false;
    }
    const bool ok = handle_login_message(frame.tag, frame.body);
    input_.consume(used);
    if (!ok || closing()) return false;
  }
  input_.compact();
  return true;
}

bool ServerConn::handle_login_message(char t, std::span<const std::byte> body) {
  switch (t) {
    case tag(BackendTag::Authentication): {
      std::vector<std::byte> reply;
      ProxyError error;
      switch (login_->on_authentication(body, reply, error)) {
        case ServerLogin::Step::Reply:
          send_own(std::move(reply));
          return true;
        case ServerLogin::Step::DeriveKeys:
          derive_keys_off_loop();
          return true;
        case ServerLogin::Step::Authenticated:
          return true;
        case ServerLogin::Step::Failed:
          fail_login(error);
          return false;
      }
      return false;
    }
    case tag(BackendTag::ParameterStatus): {
      std::string_view name, value;
      if (protocol::parse_parameter_status(body, name, value)) set_param(name, value);
      return true;
    }
    case tag(BackendTag::BackendKeyData):
      protocol::parse_backend_key_data(body, backend_pid_, backend_secret_);
      return true;
    case tag(BackendTag::ErrorResponse): {
      // The server refused the login: its own SQLSTATE and message go to the waiters.
      protocol::ErrorFields e;
      ProxyError why = make_error(ProxyErrc::ServerConnectionFailed, {pool_.key().database, ""});
      if (protocol::parse_error_response(body, e)) {
        why.message = e.message;
        if (!e.sqlstate.empty()) why.sqlstate = e.sqlstate;
      } else {
        why = make_error(ProxyErrc::ServerProtocolViolation, {"malformed ErrorResponse during login"});
      }
      if (retry_with_tls()) {
        log_info("server_login_retry_tls")
            .kv("worker", loop_.id())
            .kv("server", static_cast<long long>(id_))
            .kv("database", pool_.key().database)
            .kv("error", why.message);
        return false;
      }
      fail_login(why);
      return false;
    }
    case tag(BackendTag::ReadyForQuery): {
      protocol::parse_ready_for_query(body, tx_status_);
      login_.reset();
      uv_timer_stop(&connect_timer_);
      pool_.limits().store_server_params(params_);
      log_debug("server_logged_in")
          .kv("worker", loop_.id())
          .kv("server", static_cast<long long>(id_))
          .kv("backend_pid", backend_pid_);
      set_state(ServerState::Idle, "logged in");
      idle_since_ = loop_.now();
      ++pool_.metrics().servers_opened;
      pool_.metrics().server_connect.record(std::chrono::nanoseconds(uv_hrtime() - connect_started_ns_));
      pool_.on_server_ready(*this);
      return true;
    }
    default:  // NoticeResponse, NegotiateProtocolVersion: nothing to do
      return true;
  }
}

void ServerConn::make_idle() {
  set_state(ServerState::Idle, "released");
  session_ = nullptr;
  idle_since_ = loop_.now();
}

void ServerConn::activate(ServerLessee& session) {
  set_state(ServerState::Active, "leased");
  session_ = &session;
  response_started_ = false;
}

void ServerConn::detach() { session_ = nullptr; }

void ServerConn::cancel_done() {
  cancel_in_flight_ = false;
  if (closing()) {
    maybe_free();
    return;
  }
  if (held_release_) {
    const ReleaseKind kind = *held_release_;
    held_release_.reset();
    pool_.release(*this, kind);
  }
}

void ServerConn::set_param(std::string_view name, std::string_view value) {
  if (params_.set(name, value)) ++params_version_;
}

void ServerConn::note_response_started() {
  if (response_started_) return;
  response_started_ = true;
  session_->on_response_started();
}

void ServerConn::start_reset() {
  set_state(ServerState::Resetting, "reset");
  session_ = nullptr;
  std::vector<std::byte> out;
  protocol::append_query(out, kSessionReset);
  expectations_.expect('Z', true);
  // DISCARD ALL drops statements, settings, role and the unnamed statement.
  statements_.clear();
  defaults_fp_ = 0;
  carried_ = {};
  carried_owner_ = kNoSession;
  unnamed_owner_ = kNoSession;
  send_own(std::move(out));
}

bool ServerConn::flush_forward() {
  if (forward_.empty() || forward_.in_flight()) return false;
  // Sent or Failed (the client is gone; its session closes on its own read error): the
  // batch is over, so the buffer may move; Queued: on_forward_written() carries on.
  const auto result = forward_.flush(forward_dest_, this, &ServerConn::on_forward_written);
  if (result != OutboundBatch::Flush::Queued) input_.compact();
  return result == OutboundBatch::Flush::Sent;
}

void ServerConn::on_forward_written(uv_write_t* req, int) {
  auto* self = static_cast<ServerConn*>(req->data);
  io::Loop& loop = self->loop_;
  self->forward_.complete();
  self->input_.compact();
  if (self->closing()) {
    self->maybe_free();
  } else {
    self->process_input();
    // Plaintext that did not fit before waits in the TLS session, not in the socket.
    if (self->tls_ != nullptr && !self->closing()) self->drain_tls();
  }
  loop.run_deferred();
}

bool ServerConn::process_forwarding() {
  // A batch written at once has no completion to continue from: go on while input is
  // left (a message that must first grow the buffer, say).
  do {
    if (!forward_pass()) return false;
  } while (flush_forward() && !input_.unread().empty() && !closing());
  return !closing();
}

// An idle server speaks only to say it is going away, or with a late notice, setting or
// notification (of a channel a former client listened to: nobody's now, dropped).
// Sets `stop` when the pass must wait for more input; false when it closed us.
bool ServerConn::handle_idle_message(const protocol::FrameHeader& h, std::span<const std::byte> in, bool& stop) {
  const uint32_t max = pool_.config().limits.max_message_size;
  if (h.tag != tag(BackendTag::ParameterStatus) && h.tag != tag(BackendTag::NoticeResponse) &&
      h.tag != tag(BackendTag::NotificationResponse)) {
    close(h.tag == tag(BackendTag::ErrorResponse) ? ServerCloseReason::ServerGone : ServerCloseReason::ProtocolError,
          h.tag == tag(BackendTag::ErrorResponse) ? "server sent an error while idle"
                                                  : "unexpected message from idle server");
    return false;
  }
  if (in.size() < h.total_size()) {
    if (!input_.reserve_unread(h.total_size(), max + 1)) {
      close(ServerCloseReason::ProtocolError, "server message too large");
      return false;
    }
    stop = true;
    return true;
  }
  if (h.tag == tag(BackendTag::ParameterStatus)) {
    std::string_view name, value;
    if (protocol::parse_parameter_status(in.subspan(5, h.body_size()), name, value)) set_param(name, value);
  }
  input_.consume(h.total_size());
  return true;
}

// A message read whole. Decides whether it reaches the client (`forward`, false for
// replies to injected messages) and whether it ends an exchange (`boundary`).
bool ServerConn::handle_inspected(char t, std::span<const std::byte> body, bool& forward, bool& boundary) {
  const bool swallow = !forward;
  switch (t) {
    case tag(BackendTag::ReadyForQuery):
      expectations_.on_ready([this](const ResponseExpectations::Entry& e) { note_skipped(e); });
      protocol::parse_ready_for_query(body, tx_status_);
      boundary = true;
      break;
    case tag(BackendTag::ParameterStatus): {
      std::string_view name, value;
      if (protocol::parse_parameter_status(body, name, value)) {
        set_param(name, value);
        if (forward) session_->on_parameter_status(name, value);
      }
      break;
    }
    case tag(BackendTag::ErrorResponse): {
      expectations_.on_error([this](const ResponseExpectations::Entry& e) { note_skipped(e); });
      if (swallow) {
        protocol::ErrorFields e;
        protocol::parse_error_response(body, e);
        log_warn("injected_sql_failed")
            .kv("worker", loop_.id())
            .kv("server", static_cast<long long>(id_))
            .kv("sqlstate", e.sqlstate)
            .kv("error", e.message);
      }
      if (forward) {
        session_->on_copy_in(false);
        session_->on_statement_failed();
      }
      if (server_is_going_away(body)) {
        pool_.suspect_server();
        // The connection is ending: keep the error from a client whose request will be
        // replayed on another server once the connection closes.
        if (forward && !response_started_ && session_->replay_possible()) forward = false;
      }
      break;
    }
    case tag(BackendTag::ParseComplete):
    case tag(BackendTag::CloseComplete): {
      const ResponseExpectations::Entry* front = expectations_.front();
      if (front != nullptr && front->reply == t) forward = !expectations_.pop().swallow && !swallow;
      break;
    }
    case tag(BackendTag::CommandComplete):
      // What injected SQL did was booked when it was sent.
      if (forward) {
        note_command_complete(body);
        session_->on_copy_in(false);
        session_->on_statement_done();
      }
      break;
    case tag(BackendTag::EmptyQueryResponse):
    case tag(BackendTag::PortalSuspended):
      if (forward) session_->on_statement_done();
      break;
    case tag(BackendTag::CopyInResponse):
    case tag(BackendTag::CopyBothResponse):
      if (forward) session_->on_copy_in(true);
      break;
    case tag(BackendTag::NotificationResponse):
      // Asynchronous: it may come between another client's requests, before the reset
      // that ends the LISTEN has run.
      if (forward && !notification_for_lessee()) {
        forward = false;
        log_debug("notification_dropped").kv("worker", loop_.id()).kv("server", static_cast<long long>(id_));
      }
      break;
    default:
      break;
  }
  return !closing();
}

// A ReadyForQuery went by. A forwarded one is sent before the session decides to give the
// server back: the write is ours, so the next client's traffic cannot overtake it.
void ServerConn::finish_boundary(bool forwarded) {
  if (forwarded) {
    flush_forward();
    session_->on_ready_for_query(tx_status_);
  } else if (state_ == ServerState::Resetting && expectations_.pending_ready() == 0) {
    set_state(ServerState::Idle, "reset done");
    idle_since_ = loop_.now();
    pool_.on_server_ready(*this);
  }
}

bool ServerConn::forward_pass() {
  const uint32_t max = pool_.config().limits.max_message_size;
  while (!forward_.in_flight() && !closing()) {
    const std::span<const std::byte> in = input_.unread();
    if (in.empty()) break;
    if (skip_ > 0) {
      input_.take_rest(skip_);
      continue;
    }
    if (passthrough_ > 0) {
      const auto part = input_.take_rest(passthrough_);
      forward_.add_input(part.data(), part.size());
      continue;
    }
    protocol::FrameHeader h;
    std::string error;
    const auto status = protocol::peek_header(in, h, max, &error);
    if (status == protocol::FrameStatus::NeedMore) break;
    if (status == protocol::FrameStatus::Invalid) {
      close(ServerCloseReason::ProtocolError, "invalid message from server: " + error);
      return false;
    }
    const bool swallow = expectations_.swallowing();
    if (session_ == nullptr && !swallow) {
      bool stop = false;
      if (!handle_idle_message(h, in, stop)) return false;
      if (stop) break;
      continue;
    }
    if (!inspected(h.tag)) {
      const std::size_t n = std::min(h.total_size(), in.size());
      if (swallow) {
        input_.consume(n);
        skip_ = h.total_size() - n;
        continue;
      }
      if (forward_.empty()) forward_dest_ = session_->client_stream();
      // A notice (the WARNING of an immediate shutdown, say) does not make the request
      // unrepeatable: a replay elsewhere gives the client the same answer.
      if (h.tag != tag(BackendTag::NoticeResponse)) note_response_started();
      pool_.metrics().bytes_sent += h.total_size();
      forward_.add_input(input_.read_pos(), n);
      input_.consume(n);
      passthrough_ = h.total_size() - n;
      continue;
    }
    if (in.size() < h.total_size()) {
      if (!forward_.empty()) break;  // flush first: growing would move bytes the write points at
      if (!input_.reserve_unread(h.total_size(), max + 1)) {
        close(ServerCloseReason::ProtocolError, "server message too large");
        return false;
      }
      break;
    }
    bool forward = !swallow;
    bool boundary = false;
    if (!handle_inspected(h.tag, in.subspan(5, h.body_size()), forward, boundary)) return false;
    if (forward) {
      if (forward_.empty()) forward_dest_ = session_->client_stream();
      if (h.tag != tag(BackendTag::NotificationResponse)) note_response_started();
      pool_.metrics().bytes_sent += h.total_size();
      forward_.add_input(input_.read_pos(), h.total_size());
    }
    input_.consume(h.total_size());
    if (boundary) {
      finish_boundary(forward);
      if (closing()) return false;
    }
  }
  return !closing();
}

}  // namespace pgsidecar::proxy
