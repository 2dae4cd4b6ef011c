#include "proxy/server_conn.h"

#include <cstring>

#include "protocol/backend.h"
#include "protocol/framer.h"
#include "protocol/md5.h"
#include "protocol/messages.h"
#include "protocol/sqlstate.h"
#include "protocol/tags.h"
#include "protocol/wire.h"
#include "proxy/client_session.h"
#include "proxy/log.h"
#include "proxy/owned_write.h"
#include "proxy/pool.h"
#include "proxy/server_address.h"
#include "proxy/worker.h"
#include "proxy/app.h"

namespace pgsidecar::proxy {

using protocol::BackendTag;
using protocol::tag;
namespace sqlstate = protocol::sqlstate;

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
    case tag(BackendTag::CopyInResponse):
    case tag(BackendTag::CopyBothResponse):
      return true;
    default:
      return false;
  }
}

// admin_shutdown, crash_shutdown, cannot_connect_now: the server is stopping or starting.
bool server_is_going_away(std::span<const std::byte> error_body) {
  protocol::ErrorFields e;
  if (!protocol::parse_error_response(error_body, e)) return false;
  return e.sqlstate == "57P01" || e.sqlstate == "57P02" || e.sqlstate == "57P03";
}

}  // namespace

ServerConn::ServerConn(Worker& worker, PoolShard& pool, ServerId id)
    : worker_(worker), pool_(pool), id_(id), input_(worker.buffers()) {
  created_at_ = idle_since_ = worker.now();
}

ServerConn::~ServerConn() = default;

void ServerConn::set_state(ServerState next, const char* why) {
  log_debug("server_state")
      .kv("worker", worker_.id())
      .kv("server", static_cast<long long>(id_))
      .kv("from", state_name(state_))
      .kv("to", state_name(next))
      .kv("reason", why);
  state_ = next;
}

void ServerConn::connect() {
  const ResolvedAddress& address = pool_.address();
  int rc;
  connect_req_.data = this;
  if (address.is_unix) {
    uv_pipe_init(worker_.loop(), &pipe_, 0);
    stream_ = reinterpret_cast<uv_stream_t*>(&pipe_);
    stream_->data = this;
    ++open_handles_;
    uv_pipe_connect(&connect_req_, &pipe_, address.unix_path.c_str(), &ServerConn::on_connect);
    rc = 0;
  } else {
    uv_tcp_init(worker_.loop(), &tcp_);
    stream_ = reinterpret_cast<uv_stream_t*>(&tcp_);
    stream_->data = this;
    ++open_handles_;
    uv_tcp_nodelay(&tcp_, 1);
    rc = uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&address.addr),
                        &ServerConn::on_connect);
  }
  uv_timer_init(worker_.loop(), &connect_timer_);
  connect_timer_.data = this;
  ++open_handles_;
  // The timer covers connect and login: a server that accepts but never answers is caught too.
  uv_timer_start(&connect_timer_, &ServerConn::on_connect_timeout,
                 static_cast<uint64_t>(pool_.settings().server_connect_timeout.count()), 0);
  if (rc != 0) {
    fail_login(protocol::make_error(sqlstate::kSqlclientUnableToEstablishSqlconnection,
                                    "could not connect to server: " + std::string(uv_strerror(rc))));
  }
}

void ServerConn::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<ServerConn*>(req->data);
  if (self->closing_) return;
  if (status < 0) {
    const ServerTarget& t = self->pool_.target();
    self->fail_login(protocol::make_error(
        sqlstate::kSqlclientUnableToEstablishSqlconnection,
        "could not connect to server " + t.host + ":" + std::to_string(t.port) + ": " + uv_strerror(status)));
    return;
  }
  self->start_login();
}

void ServerConn::on_connect_timeout(uv_timer_t* t) {
  auto* self = static_cast<ServerConn*>(t->data);
  if (self->closing_) return;
  const ServerTarget& target = self->pool_.target();
  self->fail_login(protocol::make_error(
      sqlstate::kSqlclientUnableToEstablishSqlconnection,
      "could not connect to server " + target.host + ":" + std::to_string(target.port) + ": timed out after " +
          std::to_string(self->pool_.settings().server_connect_timeout.count()) + " ms"));
}

void ServerConn::start_login() {
  set_state(ServerState::LoggingIn, "connected");
  const ServerTarget& t = pool_.target();
  ParamList params;
  params.emplace_back("user", t.user);
  params.emplace_back("database", t.database);
  for (const auto& p : t.startup_options) params.push_back(p);
  std::vector<std::byte> out;
  protocol::append_startup_message(out, params);
  send_own(std::move(out));
  reading_ = true;
  uv_read_start(stream_, &ServerConn::on_alloc, &ServerConn::on_read);
}

void ServerConn::send_own(std::vector<std::byte> bytes) {
  ++own_writes_;
  write_owned(stream_, std::move(bytes), [this](int) {
    --own_writes_;
    maybe_free();
  });
}

void ServerConn::fail_login(const protocol::ErrorFields& why) {
  if (closing_) return;
  log_warn("server_login_failed")
      .kv("worker", worker_.id())
      .kv("server", static_cast<long long>(id_))
      .kv("database", pool_.key().database)
      .kv("sqlstate", why.sqlstate)
      .kv("error", why.message);
  pool_.on_server_failed(*this, why);
  close("login failed");
}

void ServerConn::close(std::string_view reason) {
  if (closing_) return;
  closing_ = true;
  pool_.on_server_closing(*this);
  const bool was_logged_in = state_ != ServerState::Connecting && state_ != ServerState::LoggingIn;
  set_state(ServerState::Closing, std::string(reason).c_str());
  if (was_logged_in) {
    log_info("server_closed")
        .kv("worker", worker_.id())
        .kv("server", static_cast<long long>(id_))
        .kv("database", pool_.key().database)
        .kv("reason", reason);
  }
  if (session_ != nullptr) {
    ClientSession* s = session_;
    session_ = nullptr;
    s->on_server_lost(reason);
  }
  if (stream_ != nullptr) {
    if (reading_) uv_read_stop(stream_);
    uv_close(reinterpret_cast<uv_handle_t*>(stream_), &ServerConn::on_handle_closed);
  }
  if (connect_timer_.data != nullptr)
    uv_close(reinterpret_cast<uv_handle_t*>(&connect_timer_), &ServerConn::on_handle_closed);
}

void ServerConn::on_handle_closed(uv_handle_t* h) {
  auto* self = static_cast<ServerConn*>(h->data);
  --self->open_handles_;
  self->maybe_free();
}

void ServerConn::maybe_free() {
  if (!closing_ || open_handles_ > 0 || own_writes_ > 0 || forward_.in_flight()) return;
  pool_.on_server_closed(*this);  // deletes *this
}

void ServerConn::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<ServerConn*>(h->data);
  *buf = self->input_.free_space();
}

void ServerConn::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  auto* self = static_cast<ServerConn*>(s->data);
  if (nread == UV_ENOBUFS || nread == 0) return;
  if (nread < 0) {
    if (self->state_ == ServerState::LoggingIn || self->state_ == ServerState::Connecting) {
      self->fail_login(protocol::make_error(sqlstate::kSqlclientUnableToEstablishSqlconnection,
                                            "server closed the connection during login"));
      return;
    }
    // Passive health detection: a lost server connection triggers an immediate probe.
    self->worker_.app().suspect(self->pool_.key().server);
    self->close(nread == UV_EOF ? "server closed the connection" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  self->input_.commit(static_cast<std::size_t>(nread));
  self->process_input();
}

void ServerConn::resume_reading() {
  if (closing_ || reading_ || stream_ == nullptr) return;
  reading_ = true;
  uv_read_start(stream_, &ServerConn::on_alloc, &ServerConn::on_read);
}

void ServerConn::process_input() {
  if (state_ == ServerState::LoggingIn) {
    const uint32_t max = worker_.config().limits.max_message_size;
    while (state_ == ServerState::LoggingIn) {
      protocol::Frame frame;
      std::size_t used = 0;
      std::string error;
      const auto status = protocol::next_frame(input_.unread(), frame, used, max, &error);
      if (status == protocol::FrameStatus::NeedMore) {
        protocol::FrameHeader h;
        if (protocol::peek_header(input_.unread(), h, max) == protocol::FrameStatus::Ready &&
            !input_.reserve_unread(h.total_size(), max + 1)) {
          fail_login(protocol::make_error(sqlstate::kProtocolViolation, "server message too large"));
          return;
        }
        break;
      }
      if (status == protocol::FrameStatus::Invalid) {
        fail_login(protocol::make_error(sqlstate::kProtocolViolation, "invalid message from server: " + error));
        return;
      }
      const bool ok = handle_login_message(frame.tag, frame.body);
      input_.consume(used);
      if (!ok || closing_) return;
    }
    input_.compact();
    if (state_ == ServerState::LoggingIn) return;
  }
  if (closing_) return;
  if (!process_forwarding()) return;
  // Stop reading while the buffer is full: the pending write's completion resumes it.
  if (input_.full() && reading_) {
    uv_read_stop(stream_);
    reading_ = false;
  } else if (!input_.full() && !reading_ && !forward_.in_flight()) {
    resume_reading();
  }
  if (!forward_.in_flight() && session_ == nullptr) input_.release_if_empty();
}

bool ServerConn::handle_login_message(char t, std::span<const std::byte> body) {
  const ServerTarget& target = pool_.target();
  switch (t) {
    case tag(BackendTag::Authentication): {
      protocol::AuthenticationRequest req;
      if (!protocol::parse_authentication(body, req)) {
        fail_login(protocol::make_error(sqlstate::kProtocolViolation, "malformed authentication request"));
        return false;
      }
      if (req.code == protocol::kAuthOk) return true;
      if (target.password.empty()) {
        fail_login(protocol::make_error(sqlstate::kSqlserverRejectedEstablishmentOfSqlconnection,
                                        "server asked for a password for user \"" + target.user +
                                            "\", but no plain-text server password is configured"));
        return false;
      }
      std::vector<std::byte> out;
      std::string error;
      switch (req.code) {
        case protocol::kAuthCleartextPassword:
          protocol::append_password_message(out, target.password);
          break;
        case protocol::kAuthMd5Password: {
          if (req.data.size() < 4) {
            fail_login(protocol::make_error(sqlstate::kProtocolViolation, "malformed MD5 salt"));
            return false;
          }
          protocol::append_password_message(
              out, protocol::md5_salted_response(target.password, target.user, req.data.first<4>()));
          break;
        }
        case protocol::kAuthSasl: {
          std::vector<std::string_view> mechanisms;
          bool scram = false;
          if (protocol::parse_sasl_mechanisms(req.data, mechanisms))
            for (auto m : mechanisms) scram = scram || m == "SCRAM-SHA-256";
          if (!scram) {
            fail_login(protocol::make_error(sqlstate::kSqlserverRejectedEstablishmentOfSqlconnection,
                                            "server offers no SASL mechanism pgsidecar supports"));
            return false;
          }
          scram_ = std::make_unique<protocol::ScramClient>(target.password);
          protocol::append_sasl_initial_response(out, "SCRAM-SHA-256", scram_->client_first());
          break;
        }
        case protocol::kAuthSaslContinue: {
          std::string client_final;
          if (!scram_ || !scram_->handle_server_first(protocol::as_string_view(req.data), client_final, error)) {
            fail_login(protocol::make_error(sqlstate::kSqlserverRejectedEstablishmentOfSqlconnection,
                                            "SCRAM exchange with server failed: " + error));
            return false;
          }
          protocol::append_sasl_response(out, client_final);
          break;
        }
        case protocol::kAuthSaslFinal:
          if (!scram_ || !scram_->verify_server_final(protocol::as_string_view(req.data), error)) {
            fail_login(protocol::make_error(sqlstate::kSqlserverRejectedEstablishmentOfSqlconnection,
                                            "server failed SCRAM verification: " + error));
            return false;
          }
          return true;
        default:
          fail_login(protocol::make_error(sqlstate::kSqlserverRejectedEstablishmentOfSqlconnection,
                                          "server asked for an unsupported authentication method (code " +
                                              std::to_string(req.code) + ")"));
          return false;
      }
      send_own(std::move(out));
      return true;
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
      protocol::ErrorFields e;
      if (!protocol::parse_error_response(body, e)) e = protocol::make_error(sqlstate::kProtocolViolation, "?");
      e.severity = "ERROR";
      if (e.sqlstate.empty()) e.sqlstate = sqlstate::kSqlclientUnableToEstablishSqlconnection;
      fail_login(e);
      return false;
    }
    case tag(BackendTag::ReadyForQuery): {
      protocol::parse_ready_for_query(body, tx_status_);
      scram_.reset();
      uv_timer_stop(&connect_timer_);
      pool_.limits().store_server_params(params_);
      log_debug("server_logged_in")
          .kv("worker", worker_.id())
          .kv("server", static_cast<long long>(id_))
          .kv("backend_pid", backend_pid_);
      set_state(ServerState::Idle, "logged in");
      idle_since_ = worker_.now();
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
  idle_since_ = worker_.now();
}

void ServerConn::activate(ClientSession& session) {
  set_state(ServerState::Active, "leased");
  session_ = &session;
  response_started_ = false;
  if (last_session_ != session.id()) last_session_ = session.id();
}

void ServerConn::detach() { session_ = nullptr; }

void ServerConn::set_param(std::string_view name, std::string_view value) {
  if (params_.set(name, value)) ++params_version_;
}

void ServerConn::note_response_started() {
  if (response_started_) return;
  response_started_ = true;
  session_->on_response_started();
}

void ServerConn::start_reset(std::string_view sql) {
  set_state(ServerState::Resetting, "reset");
  session_ = nullptr;
  std::vector<std::byte> out;
  protocol::append_query(out, sql);
  expectations_.expect('Z', true);
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
  self->forward_.complete();
  self->input_.compact();
  if (self->closing_) {
    self->maybe_free();
    return;
  }
  self->process_input();
}

bool ServerConn::process_forwarding() {
  // A batch written at once has no completion to continue from: go on while input is
  // left (a message that must first grow the buffer, say).
  do {
    if (!forward_pass()) return false;
  } while (flush_forward() && !input_.unread().empty() && !closing_);
  return !closing_;
}

bool ServerConn::forward_pass() {
  const uint32_t max = worker_.config().limits.max_message_size;
  while (!forward_.in_flight() && !closing_) {
    const std::span<const std::byte> in = input_.unread();
    if (in.empty()) break;
    if (skip_ > 0) {
      const std::size_t n = std::min(skip_, in.size());
      input_.consume(n);
      skip_ -= n;
      continue;
    }
    if (passthrough_ > 0) {
      const std::size_t n = std::min(passthrough_, in.size());
      forward_.add_input(input_.read_pos(), n);
      input_.consume(n);
      passthrough_ -= n;
      continue;
    }
    protocol::FrameHeader h;
    std::string error;
    const auto status = protocol::peek_header(in, h, max, &error);
    if (status == protocol::FrameStatus::NeedMore) break;
    if (status == protocol::FrameStatus::Invalid) {
      close("invalid message from server: " + error);
      return false;
    }
    const bool swallow = expectations_.swallowing();
    if (session_ == nullptr && !swallow) {
      // An idle server speaks only to say it is going away (or a late notice).
      if (h.tag == tag(BackendTag::ParameterStatus) || h.tag == tag(BackendTag::NoticeResponse)) {
        if (in.size() < h.total_size()) {
          if (!input_.reserve_unread(h.total_size(), max + 1)) {
            close("server message too large");
            return false;
          }
          break;
        }
        if (h.tag == tag(BackendTag::ParameterStatus)) {
          std::string_view name, value;
          if (protocol::parse_parameter_status(in.subspan(5, h.body_size()), name, value)) set_param(name, value);
        }
        input_.consume(h.total_size());
        continue;
      }
      close(h.tag == tag(BackendTag::ErrorResponse) ? "server sent an error while idle"
                                                     : "unexpected message from idle server");
      return false;
    }
    if (!inspected(h.tag)) {
      if (swallow) {
        const std::size_t n = std::min(h.total_size(), in.size());
        input_.consume(n);
        skip_ = h.total_size() - n;
        continue;
      }
      if (forward_.empty()) forward_dest_ = session_->stream();
      // A notice (the WARNING of an immediate shutdown, say) does not make the request
      // unrepeatable: a replay elsewhere gives the client the same answer.
      if (h.tag != tag(BackendTag::NoticeResponse)) note_response_started();
      const std::size_t n = std::min(h.total_size(), in.size());
      forward_.add_input(input_.read_pos(), n);
      input_.consume(n);
      passthrough_ = h.total_size() - n;
      continue;
    }
    if (in.size() < h.total_size()) {
      if (!forward_.empty()) break;  // flush first: growing would move bytes the write points at
      if (!input_.reserve_unread(h.total_size(), max + 1)) {
        close("server message too large");
        return false;
      }
      break;
    }
    const std::span<const std::byte> body = in.subspan(5, h.body_size());
    bool forward = !swallow;
    bool boundary = false;
    switch (h.tag) {
      case tag(BackendTag::ReadyForQuery): {
        expectations_.on_ready([this](const std::string& name) { statements_.erase(name); });
        protocol::parse_ready_for_query(body, tx_status_);
        boundary = true;
        break;
      }
      case tag(BackendTag::ParameterStatus): {
        std::string_view name, value;
        if (protocol::parse_parameter_status(body, name, value)) {
          set_param(name, value);
          if (forward) session_->on_server_parameter(name, value);
        }
        break;
      }
      case tag(BackendTag::ErrorResponse): {
        expectations_.on_error([this](const std::string& name) { statements_.erase(name); });
        if (swallow) {
          protocol::ErrorFields e;
          protocol::parse_error_response(body, e);
          log_warn("injected_sql_failed")
              .kv("worker", worker_.id())
              .kv("server", static_cast<long long>(id_))
              .kv("sqlstate", e.sqlstate)
              .kv("error", e.message);
        }
        if (forward) session_->note_copy_in(false);
        if (server_is_going_away(body)) {
          worker_.app().suspect(pool_.key().server);
          // The connection is ending: keep the error from a client whose request will be
          // replayed on another server once the connection closes.
          if (forward && !response_started_ && session_->replay_possible()) forward = false;
        }
        break;
      }
      case tag(BackendTag::ParseComplete):
      case tag(BackendTag::CloseComplete): {
        const ResponseExpectations::Entry* front = expectations_.front();
        if (front != nullptr && front->reply == h.tag) forward = !expectations_.pop().swallow && !swallow;
        break;
      }
      case tag(BackendTag::CommandComplete): {
        std::string_view command;
        protocol::parse_command_complete(body, command);
        if (command == "DISCARD ALL" || command == "DEALLOCATE ALL") {
          statements_.clear();
          if (command == "DISCARD ALL") defaults_fp_ = 0;
          if (forward) session_->on_server_statements_reset();
        } else if (!swallow && (command == "SET" || command == "RESET")) {
          dirty_ = true;
        }
        if (forward) session_->note_copy_in(false);
        break;
      }
      case tag(BackendTag::CopyInResponse):
      case tag(BackendTag::CopyBothResponse):
        if (forward) session_->note_copy_in(true);
        break;
      default:
        break;
    }
    if (forward) {
      if (forward_.empty()) forward_dest_ = session_->stream();
      note_response_started();
      forward_.add_input(input_.read_pos(), h.total_size());
    }
    input_.consume(h.total_size());
    if (boundary) {
      if (forward) {
        // Send the ReadyForQuery before the session decides to give the server back:
        // the write is ours, so the next client's traffic cannot overtake it.
        flush_forward();
        ClientSession* s = session_;
        s->on_server_ready_for_query(tx_status_);
      } else if (state_ == ServerState::Resetting && expectations_.pending_ready() == 0) {
        set_state(ServerState::Idle, "reset done");
        idle_since_ = worker_.now();
        pool_.on_server_ready(*this);
      }
      if (closing_) return false;
    }
  }
  return !closing_;
}

}  // namespace pgsidecar::proxy
