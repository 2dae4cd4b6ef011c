#include "proxy/client_session.h"

#include "config/schema.h"
#include "protocol/frontend.h"
#include "protocol/framer.h"
#include "protocol/messages.h"
#include "protocol/sqlstate.h"
#include "protocol/tags.h"
#include "protocol/wire.h"
#include "proxy/log.h"
#include "proxy/owned_write.h"
#include "proxy/pool.h"
#include "proxy/server_conn.h"
#include "proxy/sql_syntax.h"
#include "proxy/classify_cache.h"
#include "proxy/classify_quick.h"
#include "proxy/router.h"
#include "proxy/worker.h"

namespace pgsidecar::proxy {

using protocol::FrontendTag;
using protocol::tag;
namespace sqlstate = protocol::sqlstate;

namespace {

const char* state_name(ClientState s) {
  switch (s) {
    case ClientState::Startup: return "startup";
    case ClientState::Authenticating: return "authenticating";
    case ClientState::LoggingIn: return "logging_in";
    case ClientState::Ready: return "ready";
    case ClientState::Closing: return "closing";
  }
  return "?";
}

// idle_session_timeout, PostgreSQL's own code for a session closed for idling.
constexpr std::string_view kIdleSessionTimeout = "57P05";

// Enough of a Bind or Query to read the names or keywords pgsidecar looks at.
constexpr std::size_t kPeekBytes = 4096;

}  // namespace

ClientSession::ClientSession(Worker& worker, SessionId id, int32_t virtual_pid, int32_t virtual_secret)
    : worker_(worker),
      id_(id),
      virtual_pid_(virtual_pid),
      virtual_secret_(virtual_secret),
      input_(worker.buffers()),
      statements_(1000) {
  last_activity_ = worker.now();
}

ClientSession::~ClientSession() {
  if (forward_ != nullptr) worker_.batches().give(std::move(forward_));
}

OutboundBatch& ClientSession::forward() {
  if (forward_ == nullptr) forward_ = worker_.batches().take();
  return *forward_;
}

bool ClientSession::accept_from(uv_stream_t* listener, bool is_tcp) {
  if (is_tcp) {
    uv_tcp_init(worker_.loop(), &tcp_);
    stream_ = reinterpret_cast<uv_stream_t*>(&tcp_);
  } else {
    uv_pipe_init(worker_.loop(), &pipe_, 0);
    stream_ = reinterpret_cast<uv_stream_t*>(&pipe_);
  }
  stream_->data = this;
  ++open_handles_;
  login_ = std::make_unique<LoginState>();
  login_->accepted_at = worker_.now();
  if (uv_accept(listener, stream_) != 0) {
    close("accept failed");
    return false;
  }
  if (is_tcp) uv_tcp_nodelay(&tcp_, 1);
  reading_ = true;
  uv_read_start(stream_, &ClientSession::on_alloc, &ClientSession::on_read);
  return true;
}

void ClientSession::set_state(ClientState next, const char* why) {
  log_debug("client_state")
      .kv("worker", worker_.id())
      .kv("session", static_cast<long long>(id_))
      .kv("from", state_name(state_))
      .kv("to", state_name(next))
      .kv("reason", why);
  state_ = next;
}

void ClientSession::close(std::string_view reason) {
  if (closing_) return;
  closing_ = true;
  if (state_ == ClientState::Ready || state_ == ClientState::LoggingIn)
    log_debug("client_closed").kv("worker", worker_.id()).kv("session", static_cast<long long>(id_)).kv("reason", reason);
  set_state(ClientState::Closing, "close");
  if (waiting_ && pool_ != nullptr) pool_->cancel_wait(id_);
  waiting_ = false;
  if (route_waiting_) worker_.cancel_route_wait(id_);
  route_waiting_ = false;
  if (server_ != nullptr) {
    // Mid-transaction or mid-exchange the server's state is unknown to the next client.
    const bool clean = !session_mode_ && tx_status_ == 'I' && server_->idle_in_sync() && !in_extended_;
    ServerConn* s = server_;
    server_ = nullptr;
    s->detach();
    pool_->release(*s, clean ? ReleaseKind::Reusable : (session_mode_ && tx_status_ == 'I' && s->idle_in_sync()
                                                           ? ReleaseKind::Reset
                                                           : ReleaseKind::Close));
  }
  if (reading_) uv_read_stop(stream_);
  reading_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(stream_), &ClientSession::on_handle_closed);
}

void ClientSession::on_handle_closed(uv_handle_t* h) {
  auto* self = static_cast<ClientSession*>(h->data);
  --self->open_handles_;
  self->maybe_free();
}

void ClientSession::maybe_free() {
  if (!closing_ || open_handles_ > 0 || own_writes_ > 0 || write_in_flight()) return;
  worker_.forget_session(this);  // deletes *this
}

void ClientSession::login_timed_out() {
  if (state_ == ClientState::Ready || closing_) return;
  fail_login(sqlstate::kQueryCanceled, "canceling authentication due to timeout");
}

void ClientSession::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<ClientSession*>(h->data);
  // An idle client holds no buffer; reading its next request (or its goodbye) into the
  // worker's scratch space means thousands of idle clients closing at once take no memory.
  *buf = self->input_.holds_memory() ? self->input_.free_space() : self->worker_.buffers().scratch();
}

void ClientSession::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<ClientSession*>(s->data);
  if (nread == UV_ENOBUFS || nread == 0) return;
  if (nread < 0) {
    self->close(nread == UV_EOF ? "client disconnected" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (self->input_.holds_memory()) {
    self->input_.commit(static_cast<std::size_t>(nread));
  } else {
    // Worked on in place; process_input() keeps what is left before returning.
    self->input_.borrow({reinterpret_cast<std::byte*>(buf->base), BufferPool::kChunkSize},
                        static_cast<std::size_t>(nread));
  }
  self->last_activity_ = self->worker_.now();
  self->process_input();
}

void ClientSession::process_input() {
  // Callbacks from inside (a server assigned synchronously, login finished) ask for
  // another pass instead of re-entering with frames of the outer pass still in use.
  if (processing_) {
    again_ = true;
    return;
  }
  processing_ = true;
  do {
    again_ = false;
    if (closing_) break;
    if (state_ == ClientState::Startup || state_ == ClientState::Authenticating) {
      if (!process_startup()) break;
    }
    if (state_ == ClientState::Ready) {
      if (!process_messages()) break;
    }
  } while (again_);
  processing_ = false;
  // Scratch space is read into again by the next read on this worker: whatever of it is
  // still unread moves to a chunk of this client's own (flush_forward() copied any part
  // of a forward that had to be queued).
  input_.end_borrow();
  if (closing_) return;
  if (!write_in_flight()) {
    input_.compact();
    if (server_ == nullptr) {
      // Between transactions: an idle client holds neither a read buffer nor a batch, and
      // one queued for a server keeps its request in a small chunk.
      input_.release_if_empty();
      input_.shrink();
      if (forward_ != nullptr) worker_.batches().give(std::move(forward_));
    }
    // A client with a server reads into a full chunk (a COPY streams in large reads). So
    // does one whose small chunk is full: it may hold the start of a request that needs
    // more, and nothing else would make room.
    if (server_ != nullptr || input_.full()) input_.expand();
  }
  // Read only while there is room: a full buffer waits for the write that drains it. After
  // a FATAL error nothing more is read; the close follows its write.
  const bool want = state_ != ClientState::Closing && !input_.full();
  if (want && !reading_) {
    reading_ = true;
    uv_read_start(stream_, &ClientSession::on_alloc, &ClientSession::on_read);
  } else if (!want && reading_) {
    reading_ = false;
    uv_read_stop(stream_);
  }
}

void ClientSession::send_own(std::vector<std::byte> bytes, bool close_after) {
  if (closing_) return;
  ++own_writes_;
  if (close_after) close_after_write_ = true;
  write_owned(stream_, std::move(bytes), [this](int) {
    --own_writes_;
    if (close_after_write_ && own_writes_ == 0) close("closed after error");
    maybe_free();
  });
}

void ClientSession::send_error(const protocol::ErrorFields& e, bool with_ready) {
  std::vector<std::byte> out;
  protocol::append_error_response(out, e);
  if (with_ready) protocol::append_ready_for_query(out, tx_status_);
  send_own(std::move(out), e.severity == "FATAL");
  if (e.severity == "FATAL") {
    // Read nothing more; the close follows the write.
    if (reading_) uv_read_stop(stream_);
    reading_ = false;
    state_ = ClientState::Closing;
  }
}

void ClientSession::protocol_error(std::string message) {
  log_info("client_protocol_error")
      .kv("worker", worker_.id())
      .kv("session", static_cast<long long>(id_))
      .kv("error", message);
  send_error(protocol::make_fatal(sqlstate::kProtocolViolation, std::move(message)), false);
}

bool ClientSession::idle_expired(std::chrono::steady_clock::time_point now) const {
  if (closing_ || state_ != ClientState::Ready || database_ == nullptr || waiting_ || route_waiting_) return false;
  // Idle means between transactions; in session mode the client keeps its server meanwhile.
  if (server_ != nullptr && !(session_mode_ && tx_status_ == 'I' && server_->idle_in_sync() && !in_extended_))
    return false;
  const auto limit = database_->pool.client_idle_timeout;
  return limit.count() > 0 && now - last_activity_ > limit;
}

bool ClientSession::login_expired(std::chrono::steady_clock::time_point now) const {
  return login_ != nullptr && !closing_ && now - login_->accepted_at >= worker_.config().auth.login_timeout;
}

void ClientSession::close_idle() {
  send_error(protocol::make_fatal(kIdleSessionTimeout,
                                  "terminating connection due to client_idle_timeout (" +
                                      std::to_string(database_->pool.client_idle_timeout.count()) + " ms)"),
             false);
}

void ClientSession::drain() {
  if (closing_) return;
  draining_ = true;
  if (state_ != ClientState::Ready || (server_ == nullptr && !waiting_ && !route_waiting_ && !admin_busy_)) {
    close_for_shutdown();
    return;
  }
  // Busy: closed at the end of its transaction (unlink_server / on_server_ready_for_query).
}

void ClientSession::close_for_shutdown() {
  if (state_ != ClientState::Ready) {
    close("shutting down");
    return;
  }
  send_error(protocol::make_fatal(sqlstate::kAdminShutdown, "terminating connection: pgsidecar is shutting down"),
             false);
}

void ClientSession::reject_too_many(int limit) {
  fail_login(sqlstate::kTooManyConnections,
             "sorry, too many clients already (max_client_connections = " + std::to_string(limit) + ")");
}

// ---- forwarding ----------------------------------------------------------------------

bool ClientSession::process_messages() {
  if (admin_) return process_admin_messages();
  const uint32_t max = worker_.config().limits.max_message_size;
  while (!write_in_flight() && !closing_ && state_ == ClientState::Ready) {
    const std::span<const std::byte> in = input_.unread();
    if (in.empty()) break;
    if (discard_ > 0) {
      const std::size_t n = std::min(discard_, in.size());
      input_.consume(n);
      discard_ -= n;
      continue;
    }
    if (passthrough_ > 0) {
      const std::size_t n = std::min(passthrough_, in.size());
      capture_for_retry(input_.read_pos(), n);
      forward().add_input(input_.read_pos(), n);
      input_.consume(n);
      passthrough_ -= n;
      continue;
    }
    protocol::FrameHeader h;
    std::string error;
    const auto status = protocol::peek_header(in, h, max, &error);
    if (status == protocol::FrameStatus::NeedMore) break;
    if (status == protocol::FrameStatus::Invalid) {
      protocol_error(error);
      return false;
    }
    const char t = h.tag;
    if (t == tag(FrontendTag::Terminate)) {
      close("client sent Terminate");
      return false;
    }
    switch (t) {
      case tag(FrontendTag::Query): case tag(FrontendTag::Parse): case tag(FrontendTag::Bind):
      case tag(FrontendTag::Describe): case tag(FrontendTag::Execute): case tag(FrontendTag::Close):
      case tag(FrontendTag::Sync): case tag(FrontendTag::Flush): case tag(FrontendTag::FunctionCall):
      case tag(FrontendTag::CopyData): case tag(FrontendTag::CopyDone): case tag(FrontendTag::CopyFail):
        break;
      default:
        protocol_error(std::string("unexpected message type '") + (t >= 0x20 && t < 0x7f ? t : '?') +
                       "' from client");
        return false;
    }
    // How much of the message must be in the buffer before deciding what to do with it.
    std::size_t needed = 5;
    if (t == tag(FrontendTag::Parse) || t == tag(FrontendTag::Describe) || t == tag(FrontendTag::Close))
      needed = h.total_size();
    else if (t == tag(FrontendTag::Bind) || t == tag(FrontendTag::Query))
      needed = std::min(h.total_size(), kPeekBytes);
    if (in.size() < needed) {
      if (!forward_empty()) break;  // growing would move bytes the pending write points at
      if (!input_.reserve_unread(needed, static_cast<std::size_t>(max) + 1)) {
        protocol_error("message too large");
        return false;
      }
      break;
    }
    if (server_ == nullptr) {
      if (pending_error_) {
        // The pool refused us: drop this request up to its Sync (or the Query) and answer it.
        input_.consume(std::min(h.total_size(), in.size()));
        passthrough_ = 0;
        if (in.size() < h.total_size()) discard_ = h.total_size() - in.size();
        if (t == tag(FrontendTag::Sync) || t == tag(FrontendTag::Query)) {
          protocol::ErrorFields e = std::move(*pending_error_);
          pending_error_.reset();
          in_extended_ = false;
          send_error(e, true);
        }
        continue;
      }
      if (waiting_ || route_waiting_) break;
      if (t == tag(FrontendTag::Parse)) {
        const LocalPrepare local = try_prepare_locally(in, h);
        if (local == LocalPrepare::Done) continue;
        if (local == LocalPrepare::NeedMore) break;
        if (closing_) return false;
      }
      route_and_acquire(transaction_intent(t, in, h));
      if (pending_error_) continue;  // refused at once: the error answers this request
      if (server_ == nullptr) break;
    }
    forward_dest_ = server_->stream();  // a batch goes to one server: it was linked before any byte
    const std::span<const std::byte> body = in.subspan(5, std::min(h.body_size(), in.size() - 5));
    ResponseExpectations& expect = server_->expectations();
    switch (t) {
      case tag(FrontendTag::Parse):
        if (!handle_parse(body)) return false;
        in_extended_ = true;
        break;
      case tag(FrontendTag::Bind): {
        std::string_view portal, statement;
        const auto peek = protocol::peek_bind_names(body, h.body_size(), portal, statement);
        if (peek != protocol::PeekStatus::Ok) {
          protocol_error("malformed Bind message");
          return false;
        }
        if (!ensure_statement_on_server(statement)) return false;
        in_extended_ = true;
        break;
      }
      case tag(FrontendTag::Describe): {
        char kind = 0;
        std::string_view name;
        if (!protocol::parse_describe(body, kind, name)) {
          protocol_error("malformed Describe message");
          return false;
        }
        if (kind == 'S' && !ensure_statement_on_server(name)) return false;
        in_extended_ = true;
        break;
      }
      case tag(FrontendTag::Close): {
        char kind = 0;
        std::string_view name;
        if (!protocol::parse_close(body, kind, name)) {
          protocol_error("malformed Close message");
          return false;
        }
        if (kind == 'S' && !name.empty()) {
          statements_.erase(name);
          server_->statements().erase(name);
        }
        expect.expect('3', false);
        in_extended_ = true;
        break;
      }
      case tag(FrontendTag::Execute):
      case tag(FrontendTag::Flush):
        in_extended_ = true;
        break;
      case tag(FrontendTag::Sync):
        expect.expect('Z', false);
        in_extended_ = false;
        break;
      case tag(FrontendTag::Query): {
        std::string_view sql = protocol::as_string_view(body);
        const std::string target = deallocate_target(sql);
        if (!target.empty()) {
          statements_.erase(target);
          server_->statements().erase(target);
        }
        expect.expect('Z', false);
        break;
      }
      case tag(FrontendTag::FunctionCall):
        expect.expect('Z', false);
        break;
      default:  // CopyData, CopyDone, CopyFail
        break;
    }
    const std::size_t n = std::min(h.total_size(), in.size());
    capture_for_retry(input_.read_pos(), n);
    forward().add_input(input_.read_pos(), n);
    input_.consume(n);
    passthrough_ = h.total_size() - n;
  }
  // A batch written at once has no completion to continue from: if input is left (a
  // message that must first grow the buffer, say), process_input() makes another pass.
  if (flush_forward() && !input_.unread().empty()) again_ = true;
  return !closing_;
}

bool ClientSession::handle_parse(std::span<const std::byte> body) {
  protocol::ParseMessage parse;
  if (!protocol::parse_parse(body, parse)) {
    protocol_error("malformed Parse message");
    return false;
  }
  std::string name;
  if (!parse.name.empty() && !session_mode_) {
    const auto added = statements_.add(parse.name, parse.query, parse.param_types_raw, parse.param_count);
    if (added == ClientStatements::AddResult::LimitReached) {
      send_error(protocol::make_fatal(sqlstate::kProgramLimitExceeded,
                                      "too many prepared statements: this connection has " +
                                          std::to_string(statements_.size()) +
                                          " (max_prepared_statements); close unused ones with Close or DEALLOCATE"),
                 false);
      return false;
    }
    // Another client's statement of the same name may live on this server: replace it.
    if (server_->statements().find(parse.name) != 0) {
      protocol::append_close(forward().injected_out(), 'S', parse.name);
      forward().commit_injected();
      server_->expectations().expect('3', true);
    }
    server_->statements().set(parse.name, statement_fingerprint(parse.query, parse.param_types_raw));
    name.assign(parse.name);
  }
  server_->expectations().expect('1', false, std::move(name));
  return true;
}

// A named Parse + Sync outside a transaction (libpq's PQprepare) is answered here: the
// statement is recorded and Parsed on a server only when a Bind or Describe needs it. A
// client blocked in a synchronous prepare then never waits for a server while its other
// connections hold the pool's servers in open transactions (pgbench -M prepared would
// deadlock otherwise). Syntax errors still come from a server: a statement that
// PostgreSQL's grammar rejects takes the normal path.
ClientSession::LocalPrepare ClientSession::try_prepare_locally(std::span<const std::byte> in,
                                                               const protocol::FrameHeader& h) {
  if (session_mode_ || tx_status_ != 'I' || pending_error_) return LocalPrepare::No;
  protocol::FrameHeader next;
  const auto rest = in.subspan(h.total_size());
  const auto status = protocol::peek_header(rest, next, worker_.config().limits.max_message_size);
  if (status == protocol::FrameStatus::NeedMore) return rest.size() < 5 ? LocalPrepare::NeedMore : LocalPrepare::No;
  if (status != protocol::FrameStatus::Ready || next.tag != tag(FrontendTag::Sync) || rest.size() < next.total_size())
    return LocalPrepare::No;
  protocol::ParseMessage parse;
  if (!protocol::parse_parse(in.subspan(5, h.body_size()), parse) || parse.name.empty()) return LocalPrepare::No;
  if (statements_.find(parse.name) != nullptr) return LocalPrepare::No;  // the server reports 42P05
  if (!sql_syntax_ok(parse.query)) return LocalPrepare::No;
  const auto added = statements_.add(parse.name, parse.query, parse.param_types_raw, parse.param_count);
  if (added == ClientStatements::AddResult::LimitReached) return LocalPrepare::No;  // handle_parse reports it
  std::vector<std::byte> out;
  protocol::append_parse_complete(out);
  protocol::append_ready_for_query(out, 'I');
  send_own(std::move(out));
  input_.consume(h.total_size() + next.total_size());
  return LocalPrepare::Done;
}

bool ClientSession::ensure_statement_on_server(std::string_view name) {
  if (name.empty() || session_mode_) return true;
  const PreparedStatement* stmt = statements_.find(name);
  if (stmt == nullptr) return true;  // unknown to us too: the server's error is the right answer
  const uint64_t have = server_->statements().find(name);
  if (have == stmt->fingerprint) return true;
  auto& out = forward().injected_out();
  if (have != 0) {
    protocol::append_close(out, 'S', name);
    server_->expectations().expect('3', true);
  }
  protocol::append_parse(out, name, stmt->query, stmt->param_types);
  forward().commit_injected();
  server_->expectations().expect('1', true, std::string(name));
  server_->statements().set(name, stmt->fingerprint);
  return true;
}

void ClientSession::reserve_whole_message(uint32_t max) {
  // A message handled only when whole (login, admin console) and only partly read: room
  // for all of it, or a full buffer would stop reading short of it. Its length is checked.
  protocol::FrameHeader h;
  if (protocol::peek_header(input_.unread(), h, max) == protocol::FrameStatus::Ready)
    input_.reserve_unread(h.total_size(), std::size_t{max} + 1);
}

bool ClientSession::flush_forward() {
  if (forward_empty() || write_in_flight()) return false;
  const auto result =
      forward_->flush(forward_dest_, this, &ClientSession::on_forward_written,
                      input_.borrowed() ? OutboundBatch::Input::Scratch : OutboundBatch::Input::Owned);
  if (result == OutboundBatch::Flush::Sent) return true;
  if (result == OutboundBatch::Flush::Queued) return false;
  // The server connection is broken: handled like any lost server (replay or FATAL).
  if (server_ != nullptr) {
    server_->close(std::string("write to server failed: ") + uv_strerror(forward_->error()));
  } else {
    close("write to server failed");
  }
  return false;
}

void ClientSession::on_forward_written(uv_write_t* req, int) {
  auto* self = static_cast<ClientSession*>(req->data);
  self->forward_->complete();
  if (self->closing_) {
    self->maybe_free();
    return;
  }
  self->input_.compact();
  if (self->retry_.replay_pending) {
    self->replay_request();
    return;
  }
  self->process_input();
}

// ---- server lease --------------------------------------------------------------------

void ClientSession::on_server_assigned(ServerConn& server) {
  waiting_ = false;
  if (login_probe_) {
    login_probe_ = false;
    const ParamMap params = server.params();
    pool_->release(server, ReleaseKind::Reusable);
    finish_login(params);
    return;
  }
  link_server(server);
  if (!acquiring_) process_input();
}

void ClientSession::link_server(ServerConn& server) {
  const bool other_session_state =
      server.defaults_fp() != defaults_fp_ || (server.session_state_dirty() && server.last_session() != id_);
  server_ = &server;
  server.activate(*this);
  ServerConn::SettingsSync& synced = server.settings_sync();
  std::shared_ptr<const ParamList> settings = params_.shared_entries();
  if (!other_session_state && synced.client_settings == settings && synced.server_version == server.params_version())
    return;  // these settings were the last made to match here, and nothing changed since
  if (auto sql = settings_sync_sql(params_, defaults_, defaults_fp_, server.params(), other_session_state)) {
    protocol::append_query(forward().injected_out(), *sql);
    forward().commit_injected();
    forward_dest_ = server.stream();
    server.expectations().expect('Z', true);
    server.set_defaults_fp(defaults_fp_);
    server.clear_session_state_dirty();
  }
  synced = ServerConn::SettingsSync{std::move(settings), server.params_version()};
}

void ClientSession::unlink_server(bool reusable) {
  ServerConn* s = server_;
  if (s == nullptr) return;
  retry_ = RetryState{};  // the transaction is over
  server_ = nullptr;
  s->detach();
  pool_->release(*s, reusable ? ReleaseKind::Reusable : ReleaseKind::Close);
  if (draining_) close_for_shutdown();
}

void ClientSession::on_server_unavailable(const protocol::ErrorFields& why) {
  waiting_ = false;
  if (state_ == ClientState::LoggingIn) {
    login_probe_ = false;
    protocol::ErrorFields e = why;
    e.severity = "FATAL";
    send_error(e, false);
    return;
  }
  // A read that could not get a connection to its server tries another server once.
  const bool connection_trouble = why.sqlstate.rfind("08", 0) == 0 || why.sqlstate.rfind("57P", 0) == 0;
  if (routed_intent_ == Intent::Read && connection_trouble && !retry_.used && database_ != nullptr &&
      database_->on_primary_down == config::PrimaryDownPolicy::ReplicaReads) {
    retry_.used = true;
    retry_.avoid = routed_server_;
    log_info("read_rerouted").kv("worker", worker_.id()).kv("session", static_cast<long long>(id_)).kv("error", why.message);
    process_input();  // inside a pass, this asks for another one
    return;
  }
  // The connection stays usable: the request that needed a server gets this error.
  pending_error_ = std::make_unique<protocol::ErrorFields>(why);
  process_input();
}

void ClientSession::on_server_lost(std::string_view reason) {
  server_ = nullptr;
  if (closing_) return;
  if (retry_.capturing && !retry_.bytes.empty() && !retry_.used) {
    log_info("read_replayed")
        .kv("worker", worker_.id())
        .kv("session", static_cast<long long>(id_))
        .kv("bytes", static_cast<long long>(retry_.bytes.size()))
        .kv("reason", reason);
    retry_.used = true;
    retry_.avoid = routed_server_;
    retry_.capturing = false;
    retry_.replay_pending = true;
    in_extended_ = false;
    copy_in_ = false;
    passthrough_ = 0;
    if (!write_in_flight()) replay_request();
    return;
  }
  log_info("client_server_lost")
      .kv("worker", worker_.id())
      .kv("session", static_cast<long long>(id_))
      .kv("reason", reason);
  send_error(protocol::make_fatal(sqlstate::kConnectionFailure,
                                  "server connection for database \"" + database_name_ +
                                      "\" was lost: " + std::string(reason)),
             false);
}

void ClientSession::on_server_ready_for_query(char tx_status) {
  tx_status_ = tx_status;
  if (session_mode_ && draining_ && tx_status == 'I' && server_ != nullptr && server_->idle_in_sync() &&
      !in_extended_) {
    close_for_shutdown();  // close() hands the server back with a reset
    return;
  }
  if (server_ == nullptr || session_mode_) return;
  if (tx_status == 'I' && server_->idle_in_sync() && !in_extended_ && !copy_in_) unlink_server(true);
}

void ClientSession::on_server_parameter(std::string_view name, std::string_view value) {
  params_.set(name, value);
}

void ClientSession::on_server_statements_reset() { statements_.clear(); }

}  // namespace pgsidecar::proxy
