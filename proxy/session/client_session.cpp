#include "proxy/session/client_session.h"

#include <utility>

#include "protocol/frontend.h"
#include "protocol/framer.h"
#include "protocol/messages.h"
#include "protocol/tags.h"
#include "protocol/wire.h"
#include "proxy/core/log.h"
#include "proxy/io/owned_write.h"
#include "proxy/pooling/server_conn.h"
#include "proxy/session/settings_sync.h"
#include "sql/classify_cache.h"
#include "sql/classify_quick.h"
#include "sql/session_effects.h"
#include "sql/sql_syntax.h"

namespace pgsidecar::proxy {

using protocol::FrontendTag;
using protocol::tag;

namespace {

const char* phase_name(ClientPhase p) {
  switch (p) {
    case ClientPhase::Startup: return "startup";
    case ClientPhase::Authenticating: return "authenticating";
    case ClientPhase::LoggingIn: return "logging_in";
    case ClientPhase::Ready: return "ready";
    case ClientPhase::Admin: return "admin";
    case ClientPhase::AdminBusy: return "admin_busy";
    case ClientPhase::Failing: return "failing";
    case ClientPhase::Closed: return "closed";
  }
  return "?";
}

// TLS buffers an idle client may keep (its memory BIOs' room): more is given back between
// transactions, so a large result does not stay allocated for an idle client.
constexpr std::size_t kIdleTlsBufferBytes = 4096;

// Enough of a Bind or Query to read the names or keywords pgsidecar looks at.
constexpr std::size_t kPeekBytes = 4096;
// Prepared statements a client may have before its pool's max_prepared_statements applies.
constexpr std::size_t kDefaultStatementLimit = 1000;

bool is_forwarded_tag(char t) {
  switch (t) {
    case tag(FrontendTag::Query): case tag(FrontendTag::Parse): case tag(FrontendTag::Bind):
    case tag(FrontendTag::Describe): case tag(FrontendTag::Execute): case tag(FrontendTag::Close):
    case tag(FrontendTag::Sync): case tag(FrontendTag::Flush): case tag(FrontendTag::FunctionCall):
    case tag(FrontendTag::CopyData): case tag(FrontendTag::CopyDone): case tag(FrontendTag::CopyFail):
      return true;
    default:
      return false;
  }
}

// A Query up to this size is read whole before it is forwarded: its text is looked at
// for what it does to the session (set_config). A larger one streams through.
constexpr std::size_t kWholeQueryBytes = BufferPool::kChunkSize;

// How much of a message must be in the buffer before deciding what to do with it.
std::size_t bytes_needed(const protocol::FrameHeader& h) {
  const char t = h.tag;
  if (t == tag(FrontendTag::Parse) || t == tag(FrontendTag::Describe) || t == tag(FrontendTag::Close))
    return h.total_size();
  if (t == tag(FrontendTag::Query)) return h.total_size() <= kWholeQueryBytes ? h.total_size() : kPeekBytes;
  if (t == tag(FrontendTag::Bind)) return std::min(h.total_size(), kPeekBytes);
  if (t == tag(FrontendTag::Execute)) return std::min(h.total_size(), kPeekBytes);  // its portal name
  return 5;
}

}  // namespace

ClientSession::ClientSession(SessionHost& host, SessionId id, int32_t virtual_pid, int32_t virtual_secret)
    : host_(host),
      id_(id),
      virtual_pid_(virtual_pid),
      virtual_secret_(virtual_secret),
      handles_(this, &ClientSession::on_last_handle_closed),
      input_(host.loop().buffers()),
      config_(host.current_config()),
      statements_(kDefaultStatementLimit) {
  last_activity_ = host.loop().now();
}

ClientSession::~ClientSession() {
  if (forward_ != nullptr) host_.loop().batches().give(std::move(forward_));
}

OutboundBatch& ClientSession::forward() {
  if (forward_ == nullptr) forward_ = host_.loop().batches().take();
  return *forward_;
}

bool ClientSession::accept_from(uv_stream_t* listener, bool is_tcp) {
  stream_.init(host_.loop().uv(), is_tcp, handles_);
  login_ = std::make_unique<LoginState>();
  login_->accepted_at = host_.loop().now();
  if (uv_accept(listener, stream_.stream) != 0) {
    close("accept failed");
    return false;
  }
  if (is_tcp) uv_tcp_nodelay(&stream_.tcp, 1);
  tcp_ = is_tcp;
  reading_ = true;
  uv_read_start(stream_.stream, &ClientSession::on_alloc, &ClientSession::on_read);
  return true;
}

void ClientSession::set_phase(ClientPhase next, const char* why) {
  log_debug("client_state")
      .kv("worker", host_.loop().id())
      .kv("session", static_cast<long long>(id_))
      .kv("from", phase_name(phase_))
      .kv("to", phase_name(next))
      .kv("reason", why);
  phase_ = next;
}

bool ClientSession::between_transactions() const {
  return exchange_.tx_status == 'I' && server_ != nullptr && server_->idle_in_sync() && !exchange_.extended;
}

void ClientSession::close(std::string_view reason) {
  if (closed()) return;
  if (phase_ == ClientPhase::Ready || phase_ == ClientPhase::LoggingIn)
    log_debug("client_closed").kv("worker", host_.loop().id()).kv("session", static_cast<long long>(id_)).kv("reason", reason);
  set_phase(ClientPhase::Closed, "close");
  release_on_close();
  if (reading_) uv_read_stop(stream_.stream);
  reading_ = false;
  handles_.close(stream_.handle());
}

// Whatever the session held or awaited goes back. Mid-transaction or mid-exchange the
// server's state is unknown to the next client: it is closed.
void ClientSession::release_on_close() {
  if (lease_ == Lease::WaitingInPool && pool_ != nullptr) pool_->cancel_wait(id_);
  if (lease_ == Lease::WaitingForRoute) host_.cancel_route_wait(id_);
  if (lease_ == Lease::Linked && server_ != nullptr) {
    ServerConn* s = server_;
    const bool clean = between_transactions();
    ReleaseKind kind = ReleaseKind::Close;
    // A pinned client's state (temp tables, locks, ...) is its own: DISCARD ALL before reuse.
    if (clean) kind = session_mode_ || pinned() ? ReleaseKind::Reset : ReleaseKind::Reusable;
    server_ = nullptr;
    s->detach();
    pool_->release(*s, kind);
  }
  lease_ = Lease::None;
}

void ClientSession::on_last_handle_closed(void* self) { static_cast<ClientSession*>(self)->maybe_free(); }

void ClientSession::maybe_free() {
  if (!closed() || handles_.open() > 0 || own_writes_ > 0 || write_in_flight()) return;
  host_.forget(*this);  // deletes *this
}

void ClientSession::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<ClientSession*>(h->data);
  // An idle client holds no buffer; reading its next request (or its goodbye) into the
  // worker's scratch space means thousands of idle clients closing at once take no memory.
  // Ciphertext goes to the TLS session's read BIO at once: scratch space will do too.
  const bool own = self->input_.holds_memory() && self->tls_ == nullptr;
  *buf = own ? self->input_.free_space() : self->host_.loop().buffers().scratch();
}

void ClientSession::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<ClientSession*>(s->data);
  io::Loop& loop = self->host_.loop();  // *self may be gone when read() returns
  self->read(nread, buf);
  loop.run_deferred();
}

void ClientSession::read(ssize_t nread, const uv_buf_t* buf) {
  if (nread == UV_ENOBUFS || nread == 0) return;
  if (nread < 0) {
    close(nread == UV_EOF ? "client disconnected" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (tls_ != nullptr) {
    tls_->received(buf->base, static_cast<std::size_t>(nread));  // process_input decrypts
  } else if (input_.holds_memory()) {
    input_.commit(static_cast<std::size_t>(nread));
  } else {
    // Worked on in place; finish_pass() keeps what is left before returning.
    input_.borrow({reinterpret_cast<std::byte*>(buf->base), BufferPool::kChunkSize},
                        static_cast<std::size_t>(nread));
  }
  last_activity_ = host_.loop().now();
  process_input();
}

void ClientSession::resume() {
  if (closed()) return;
  // A login whose server could not be reached is routed again (on_server_unavailable).
  if (phase_ == ClientPhase::LoggingIn && lease_ == Lease::None) {
    route_and_acquire(login_intent());
    if (phase_ != ClientPhase::Ready) return;
  }
  process_input();
}

// The one entry to the session's work: a read, a completed write, or a deferred resume.
// Callbacks from the pool or a server never call it directly (they defer a resume()), so
// no pass ever starts inside another.
void ClientSession::process_input() {
  if (retry_.replay_pending && !write_in_flight()) replay_request();
  // Over TLS, each round decrypts what fits in the input buffer; what does not fit waits in
  // the TLS session until a pass makes room (a completed forward calls this again).
  for (;;) {
    if (tls_ != nullptr && !closed() && phase_ != ClientPhase::Failing && !pull_tls()) return;
    run_passes();
    if (tls_ == nullptr || !tls_->has_pending() || closed() || phase_ == ClientPhase::Failing ||
        input_.full() || write_in_flight())
      break;
  }
  finish_pass();
}

void ClientSession::run_passes() {
  for (;;) {
    if (closed() || phase_ == ClientPhase::Failing) break;
    if (phase_ == ClientPhase::Startup || phase_ == ClientPhase::Authenticating) {
      if (!process_startup()) break;
      if (phase_ == ClientPhase::Startup || phase_ == ClientPhase::Authenticating) break;
      continue;  // logged in at once: go on with what followed the login
    }
    Pass pass = Pass::Stop;
    if (phase_ == ClientPhase::Ready) pass = process_messages();
    if (phase_ == ClientPhase::Admin) pass = process_admin_messages();
    if (pass == Pass::Stop) break;
  }
}

void ClientSession::finish_pass() {
  // Scratch space is read into again by the next read on this worker: whatever of it is
  // still unread moves to a chunk of this client's own (flush_forward() copied any part
  // of a forward that had to be queued).
  input_.end_borrow();
  if (closed()) return;
  if (!write_in_flight()) {
    input_.compact();
    if (server_ == nullptr) {
      // Between transactions: an idle client holds neither a read buffer nor a batch, and
      // one queued for a server keeps its request in a small chunk.
      input_.release_if_empty();
      input_.shrink();
      if (forward_ != nullptr) host_.loop().batches().give(std::move(forward_));
      if (tls_ != nullptr && tls_->established()) tls_->release_buffers(kIdleTlsBufferBytes);
    }
    // A client with a server reads into a full chunk (a COPY streams in large reads). So
    // does one whose small chunk is full: it may hold the start of a request that needs
    // more, and nothing else would make room.
    if (server_ != nullptr || input_.full()) input_.expand();
  }
  // Read only while there is room: a full buffer waits for the write that drains it. After
  // a FATAL error nothing more is read; the close follows its write.
  const bool want = phase_ != ClientPhase::Failing && !input_.full();
  if (want && !reading_) {
    reading_ = true;
    uv_read_start(stream_.stream, &ClientSession::on_alloc, &ClientSession::on_read);
  } else if (!want && reading_) {
    reading_ = false;
    uv_read_stop(stream_.stream);
  }
}

void ClientSession::send_own(std::vector<std::byte> bytes) {
  if (closed()) return;
  if (login_ != nullptr && own_bytes_ + bytes.size() > kMaxLoginReplyBytes) {
    // Before login every reply answers a message of the client's: one that sends and
    // never reads gets its connection closed, not a growing queue.
    log_info("client_not_reading").kv("worker", host_.loop().id()).kv("session", static_cast<long long>(id_));
    close("login replies not read");
    return;
  }
  ++own_writes_;
  const std::size_t n = bytes.size();
  own_bytes_ += n;
  write_owned(client_stream(), std::move(bytes), [this, n](int) {
    --own_writes_;
    const bool was_full = own_replies_full();
    own_bytes_ -= n;
    if (phase_ == ClientPhase::Failing && own_writes_ == 0) close("closed after error");
    // Deferred: a write that fails at once calls back inside send_own.
    if (was_full && !own_replies_full() && !closed()) host_.resume_later(id_);
    maybe_free();
  });
}

void ClientSession::send_error(const ProxyError& e, bool with_ready) {
  ++host_.resources().counters.errors[e.sqlstate];
  std::vector<std::byte> out;
  protocol::append_error_response(out, e.fields());
  if (with_ready) protocol::append_ready_for_query(out, exchange_.tx_status);
  if (e.fatal() && !closed()) {
    // Read nothing more; the close follows the write, or kFatalLinger (overdue()).
    if (reading_) uv_read_stop(stream_.stream);
    reading_ = false;
    release_on_close();
    set_phase(ClientPhase::Failing, "fatal error");
    last_activity_ = host_.loop().now();
  }
  send_own(std::move(out));
}

void ClientSession::protocol_error(std::string message) {
  log_info("client_protocol_error")
      .kv("worker", host_.loop().id())
      .kv("session", static_cast<long long>(id_))
      .kv("error", message);
  send_error(make_error(ProxyErrc::ProtocolViolation, {message}), false);
}

bool ClientSession::idle_expired(std::chrono::steady_clock::time_point now) const {
  if (phase_ != ClientPhase::Ready || database_ == nullptr) return false;
  // Idle means between transactions; in session mode the client keeps its server meanwhile.
  if (lease_ == Lease::WaitingInPool || lease_ == Lease::WaitingForRoute) return false;
  if (lease_ == Lease::Linked && !((session_mode_ || pinned()) && between_transactions())) return false;
  const auto limit = database_->pool.client_idle_timeout;
  return limit.count() > 0 && now - last_activity_ > limit;
}

// Inside a transaction, the server has answered everything, and the client says nothing.
bool ClientSession::idle_in_transaction_expired(std::chrono::steady_clock::time_point now) const {
  if (phase_ != ClientPhase::Ready || database_ == nullptr || server_ == nullptr) return false;
  if (exchange_.tx_status != 'T' && exchange_.tx_status != 'E') return false;
  if (!server_->idle_in_sync() || write_in_flight()) return false;
  const auto limit = database_->pool.idle_in_transaction_timeout;
  return limit.count() > 0 && now - last_activity_ > limit;
}

// A pinned client that holds its server between transactions and says nothing.
bool ClientSession::pinned_idle_expired(std::chrono::steady_clock::time_point now) const {
  if (phase_ != ClientPhase::Ready || database_ == nullptr || !pinned() || lease_ != Lease::Linked) return false;
  if (!between_transactions() || write_in_flight()) return false;
  const auto limit = database_->pool.pinned_idle_timeout;
  return limit.count() > 0 && now - last_activity_ > limit;
}

std::string ClientSession::pin_reason() const { return pinned() ? pin_reasons_text(pin_reasons_) : std::string(); }

ClientSession::Overdue ClientSession::overdue(std::chrono::steady_clock::time_point now) const {
  if (closed()) return Overdue::None;
  if (phase_ == ClientPhase::Failing) {
    // A FATAL stuck behind bytes the client does not read (a cancel request's connection
    // writes nothing and waits for its own bounded timeout).
    return own_writes_ > 0 && now - last_activity_ >= kFatalLinger ? Overdue::FatalReply : Overdue::None;
  }
  if (login_ != nullptr && now - login_->accepted_at >= config_->auth.login_timeout) return Overdue::Login;
  if (idle_expired(now)) return Overdue::Idle;
  if (idle_in_transaction_expired(now)) return Overdue::IdleInTransaction;
  if (pinned_idle_expired(now)) return Overdue::PinnedIdle;
  return Overdue::None;
}

void ClientSession::expire(Overdue what) {
  switch (what) {
    case Overdue::None:
      return;
    case Overdue::Login:
      fail_login(make_error(ProxyErrc::LoginTimeout));
      return;
    case Overdue::Idle:
      send_error(make_error(ProxyErrc::ClientIdleTimeout, {std::to_string(database_->pool.client_idle_timeout.count())}),
                 false);
      return;
    case Overdue::IdleInTransaction:
      log_info("client_idle_in_transaction")
          .kv("worker", host_.loop().id())
          .kv("session", static_cast<long long>(id_))
          .kv("user", user_name_)
          .kv("database", database_name_);
      send_error(make_error(ProxyErrc::IdleInTransactionTimeout,
                            {std::to_string(database_->pool.idle_in_transaction_timeout.count())}),
                 false);
      return;
    case Overdue::PinnedIdle:
      log_info("client_pinned_idle_timeout")
          .kv("worker", host_.loop().id())
          .kv("session", static_cast<long long>(id_))
          .kv("reason", pin_reason());
      send_error(make_error(ProxyErrc::PinnedIdleTimeout,
                            {std::to_string(database_->pool.pinned_idle_timeout.count()), pin_reason()}),
                 false);
      return;
    case Overdue::FatalReply:
      log_info("client_not_reading").kv("worker", host_.loop().id()).kv("session", static_cast<long long>(id_));
      close("a FATAL error was not read in time");
      return;
  }
}

const char* ClientSession::state_name() const {
  switch (phase_) {
    case ClientPhase::Startup:
    case ClientPhase::Authenticating:
      return "login";
    case ClientPhase::LoggingIn:
      return "waiting";
    case ClientPhase::Ready:
      if (lease_ == Lease::Linked) return "active";
      return lease_ == Lease::None ? "idle" : "waiting";
    case ClientPhase::Admin:
    case ClientPhase::AdminBusy:
      return "admin";
    case ClientPhase::Failing:
    case ClientPhase::Closed:
      return "closing";
  }
  return "?";
}

void ClientSession::terminate(ProxyErrc why) {
  if (closed() || phase_ == ClientPhase::Failing) return;
  draining_ = true;
  drain_reason_ = why;
  // A session-mode client holding its server between transactions is at a boundary now.
  const bool at_boundary = session_mode_ && lease_ == Lease::Linked && between_transactions() && !exchange_.copy_in;
  const bool busy =
      (phase_ == ClientPhase::Ready && lease_ != Lease::None && !at_boundary) || phase_ == ClientPhase::AdminBusy;
  if (!busy) close_for_shutdown();
  // Busy: closed at the end of its transaction (unlink_server / on_ready_for_query).
}

void ClientSession::close_for_shutdown() {
  if (phase_ != ClientPhase::Ready && phase_ != ClientPhase::Admin && phase_ != ClientPhase::AdminBusy) {
    close("shutting down");
    return;
  }
  send_error(make_error(drain_reason_, {database_name_}), false);
}

void ClientSession::kill() {
  if (closed() || phase_ == ClientPhase::Failing) return;
  if (phase_ != ClientPhase::Ready) {
    close("killed");
    return;
  }
  send_error(make_error(ProxyErrc::KilledByAdmin, {database_name_}), false);
}

void ClientSession::reject_too_many(int limit) {
  fail_login(make_error(ProxyErrc::TooManyClients, {std::to_string(limit)}));
}

// ---- forwarding ----------------------------------------------------------------------

ClientSession::Pass ClientSession::process_messages() {
  const uint32_t max = config_->limits.max_message_size;
  // Replies pgsidecar writes itself (errors, a local ParseComplete) pile up in memory when
  // the client does not read them: past max_client_buffer, its next messages wait (and its
  // socket fills) until they are written, as PostgreSQL stops reading a client it cannot
  // write to.
  while (!write_in_flight() && phase_ == ClientPhase::Ready && !own_replies_full()) {
    const std::span<const std::byte> in = input_.unread();
    if (in.empty()) break;
    if (discard_ > 0) {
      input_.take_rest(discard_);
      continue;
    }
    if (passthrough_ > 0) {
      const auto part = input_.take_rest(passthrough_);
      capture_for_retry(part.data(), part.size());
      forward().add_input(part.data(), part.size());
      continue;
    }
    protocol::FrameHeader h;
    std::string error;
    const auto status = protocol::peek_header(in, h, max, &error);
    if (status == protocol::FrameStatus::NeedMore) break;
    if (status == protocol::FrameStatus::Invalid) {
      protocol_error(error);
      return Pass::Stop;
    }
    if (h.tag == tag(FrontendTag::Terminate)) {
      close("client sent Terminate");
      return Pass::Stop;
    }
    if (!is_forwarded_tag(h.tag)) {
      const char t = h.tag;
      protocol_error(std::string("unexpected message type '") + (t >= 0x20 && t < 0x7f ? t : '?') + "' from client");
      return Pass::Stop;
    }
    const std::size_t needed = h.tag == tag(FrontendTag::Bind) ? bind_bytes_needed(h, in) : bytes_needed(h);
    if (in.size() < needed) {
      if (needed > config_->limits.max_client_buffer) {
        if (!refuse_over_buffer(h, in)) return Pass::Stop;
        continue;
      }
      if (!forward_empty()) break;  // growing would move bytes the pending write points at
      if (!input_.reserve_unread(needed, static_cast<std::size_t>(max) + 1)) {
        protocol_error("message too large");
        return Pass::Stop;
      }
      break;
    }
    const Step step = forward_message(h, in);
    if (step == Step::Stop) return Pass::Stop;
    if (step == Step::Wait) break;
  }
  // A batch written at once has no completion to continue from: if input is left (a
  // message that must first grow the buffer, say), make another pass.
  if (flush_forward() && !input_.unread().empty() && phase_ == ClientPhase::Ready) return Pass::Again;
  return Pass::Stop;
}

// A message read whole before it is forwarded (Parse, Describe, Close, a short Query)
// that is larger than max_client_buffer. First in a request, the request is refused
// (skipped up to its Sync, then answered) and the client goes on; inside an exchange with
// a server the error cannot take its place among the server's replies, so it is FATAL.
bool ClientSession::refuse_over_buffer(const protocol::FrameHeader& h, std::span<const std::byte> in) {
  ProxyError e = make_error(ProxyErrc::MessageOverClientBuffer,
                            {std::to_string(h.total_size()), std::to_string(config_->limits.max_client_buffer)});
  if (lease_ != Lease::None) {
    send_error(e.as_fatal(), false);
    return false;
  }
  if (!pending_error_) pending_error_ = std::make_unique<ProxyError>(std::move(e));
  answer_refused(h, in);
  return true;
}

// One whole (or peeked) message: answered here, queued for a server, or forwarded.
ClientSession::Step ClientSession::forward_message(const protocol::FrameHeader& h, std::span<const std::byte> in) {
  if (refusing_ != nullptr && lease_ == Lease::Linked) return refuse_linked(h, in);
  if ((lease_ == Lease::None || lease_ == Lease::Linked) && !pending_error_ &&
      (h.tag == tag(FrontendTag::Query) || h.tag == tag(FrontendTag::Parse))) {
    const std::string what = refused_statement(h, in);
    if (!what.empty()) {
      auto e = std::make_unique<ProxyError>(make_error(ProxyErrc::SessionStateRefused, {what}));
      log_info("session_state_refused")
          .kv("worker", host_.loop().id())
          .kv("session", static_cast<long long>(id_))
          .kv("statement", what);
      if (lease_ == Lease::Linked) {
        refusing_ = std::move(e);
        return refuse_linked(h, in);
      }
      pending_error_ = std::move(e);
      return answer_refused(h, in);
    }
  }
  if (lease_ != Lease::Linked) {
    if (pending_error_) return answer_refused(h, in);
    if (lease_ != Lease::None) return Step::Wait;  // a server or a route is coming
    switch (answer_locally(in)) {
      case Local::Answered: return Step::Next;
      case Local::Wait: return Step::Wait;
      case Local::Refused: return answer_refused(h, in);
      case Local::No: break;
    }
    // Inside a held transaction the server answers, so that the error aborts it.
    if (deferred_.phase == DeferredBegin::Phase::None && refuse_unknown_statement(h, in)) return answer_refused(h, in);
    const Step step = acquire_for(h, in);
    if (step != Step::Next) return step;
    if (pending_error_) return Step::Next;  // refused at once: the error answers this request
    if (lease_ != Lease::Linked) return Step::Wait;
  }
  // A RESET or DISCARD put the server back to its own defaults: the client's come first.
  if (settings_dirty_ && between_transactions()) sync_settings_to(*server_);
  forward_dest_ = server_->stream();  // a batch goes to one server: it was linked before any byte
  if (deferred_.phase == DeferredBegin::Phase::Held) send_deferred_begin();
  const std::span<const std::byte> body = in.subspan(5, std::min(h.body_size(), in.size() - 5));
  if (!note_for_server(h, body)) return Step::Stop;
  if (timing_.request_started == 0) {
    timing_.request_started = uv_hrtime();
    if (timing_.transaction_started == 0) timing_.transaction_started = timing_.request_started;
  }
  server_->pool().metrics().bytes_received += h.total_size();
  const std::size_t n = std::min(h.total_size(), in.size());
  capture_for_retry(input_.read_pos(), n);
  forward().add_input(input_.read_pos(), n);
  input_.consume(n);
  passthrough_ = h.total_size() - n;
  return Step::Next;
}

std::size_t ClientSession::bind_bytes_needed(const protocol::FrameHeader& h, std::span<const std::byte> in) const {
  const std::size_t peek = bytes_needed(h);
  if (in.size() < peek || in.size() >= h.total_size() ||
      h.total_size() > std::min<std::size_t>(kWholeQueryBytes, config_->limits.max_client_buffer))
    return peek;  // a larger one streams through: its settings are left untracked
  std::string_view portal, statement;
  const auto body = in.subspan(5);
  if (protocol::peek_bind_names(body, h.body_size(), portal, statement) != protocol::PeekStatus::Ok) return peek;
  return tracker_.binds_settings(statement) ? h.total_size() : peek;
}

// The pool refused us: drop this request up to its Sync (or the Query) and answer it.
ClientSession::Step ClientSession::answer_refused(const protocol::FrameHeader& h, std::span<const std::byte> in) {
  head_parse_ = {};
  input_.consume(std::min(h.total_size(), in.size()));
  passthrough_ = 0;
  if (in.size() < h.total_size()) discard_ = h.total_size() - in.size();
  if (h.tag == tag(FrontendTag::Sync) || h.tag == tag(FrontendTag::Query)) {
    deferred_begin_refused();
    const ProxyError e = std::move(*pending_error_);
    pending_error_.reset();
    exchange_.extended = false;
    send_error(e, true);
  }
  return Step::Next;
}

// A Bind or Describe of a statement name this client never prepared, first in a request
// outside a transaction: answered here as PostgreSQL would (26000, then skip to Sync),
// without a server, where another client's statement of that name may live. Inside a
// transaction the server answers (close_foreign_statement), so that the error aborts it.
bool ClientSession::refuse_unknown_statement(const protocol::FrameHeader& h, std::span<const std::byte> in) {
  if (session_mode_ || (h.tag != tag(FrontendTag::Bind) && h.tag != tag(FrontendTag::Describe))) return false;
  const auto body = in.subspan(5, std::min(h.body_size(), in.size() - 5));
  std::string_view portal, name;
  char kind = 'S';
  const bool ok = h.tag == tag(FrontendTag::Bind)
                      ? protocol::peek_bind_names(body, h.body_size(), portal, name) == protocol::PeekStatus::Ok
                      : protocol::parse_describe(body, kind, name);
  // The unnamed statement is left to the server: it may be this client's own from an
  // earlier request on the same server (close_foreign_statement knows).
  if (!ok || kind != 'S' || name.empty() || statements_.find(name) != nullptr) return false;
  pending_error_ = std::make_unique<ProxyError>(make_error(ProxyErrc::UnknownPreparedStatement, {name}));
  return true;
}

// The first message of a transaction: prepared locally, or routed to a pool.
ClientSession::Step ClientSession::acquire_for(const protocol::FrameHeader& h, std::span<const std::byte> in) {
  if (h.tag == tag(FrontendTag::Parse)) {
    const LocalPrepare local = try_prepare_locally(in, h);
    if (local == LocalPrepare::Done) return Step::Next;
    if (local == LocalPrepare::NeedMore) return Step::Wait;
    if (closed() || phase_ == ClientPhase::Failing) return Step::Stop;
  }
  Intent intent = transaction_intent(h.tag, in, h);
  if (deferred_.phase == DeferredBegin::Phase::Held) intent = deferred_intent(h.tag, in, h, intent);
  route_and_acquire(intent);
  return phase_ == ClientPhase::Ready ? Step::Next : Step::Stop;
}

// Tells the linked server what it is about to receive, so it keeps its books: replies it
// owes, statements it holds. False when the message is malformed (the session failed).
bool ClientSession::note_for_server(const protocol::FrameHeader& h, std::span<const std::byte> body) {
  switch (h.tag) {
    case tag(FrontendTag::Parse):
      if (!handle_parse(body)) return false;
      exchange_.extended = true;
      return true;
    case tag(FrontendTag::Bind): {
      std::string_view portal, statement;
      if (protocol::peek_bind_names(body, h.body_size(), portal, statement) != protocol::PeekStatus::Ok) {
        protocol_error("malformed Bind message");
        return false;
      }
      ensure_statement_on_server(statement);
      tracker_.portal_bound(portal, statement, body.size() == h.body_size() ? body : std::span<const std::byte>());
      exchange_.extended = true;
      return true;
    }
    case tag(FrontendTag::Describe): {
      char kind = 0;
      std::string_view name;
      if (!protocol::parse_describe(body, kind, name)) {
        protocol_error("malformed Describe message");
        return false;
      }
      if (kind == 'S') ensure_statement_on_server(name);
      exchange_.extended = true;
      return true;
    }
    case tag(FrontendTag::Close): {
      char kind = 0;
      std::string_view name;
      if (!protocol::parse_close(body, kind, name)) {
        protocol_error("malformed Close message");
        return false;
      }
      if (kind == 'S' && !name.empty()) statements_.erase(name);
      server_->client_sent_close(kind, name);
      exchange_.extended = true;
      return true;
    }
    case tag(FrontendTag::Execute): {
      std::string_view portal;
      int32_t max_rows = 0;
      if (!protocol::parse_execute(body, portal, max_rows)) {
        protocol_error("malformed Execute message");
        return false;
      }
      tracker_.sent_statement(tracker_.portal_effects(portal));
      exchange_.extended = true;
      return true;
    }
    case tag(FrontendTag::Flush):
      exchange_.extended = true;
      return true;
    case tag(FrontendTag::Sync):
      tracker_.sent_sync();
      server_->client_sent_sync();
      exchange_.extended = false;
      return true;
    case tag(FrontendTag::Query): {
      const std::string target = deallocate_target(protocol::as_string_view(body));
      if (!target.empty()) {
        statements_.erase(target);
        server_->client_deallocated(target);
      }
      // Text not read whole (a Query larger than kWholeQueryBytes) may hide anything.
      std::string_view sql;
      const bool whole = body.size() == h.body_size() && protocol::parse_query(body, sql);
      if (!whole || sets_session_config(sql)) server_->client_changed_settings();
      note_query_effects(whole ? sql : std::string_view());
      server_->client_sent_sync();
      return true;
    }
    case tag(FrontendTag::FunctionCall):
      // It calls a function by oid, set_config's as well as any other.
      tracker_.sent_sync();
      server_->client_changed_settings();
      server_->client_sent_sync();
      return true;
    default:  // CopyData, CopyDone, CopyFail
      return true;
  }
}

bool ClientSession::handle_parse(std::span<const std::byte> body) {
  protocol::ParseMessage parse;
  if (!protocol::parse_parse(body, parse)) {
    protocol_error("malformed Parse message");
    return false;
  }
  // Marked now: it may run on this server before anything else is seen of it.
  const bool sets_config = sets_session_config(parse.query);
  note_statement_effects(parse);
  if (sets_config) server_->client_changed_settings();
  if (parse.name.empty() || session_mode_) {
    server_->client_sent_parse({}, nullptr, forward());
    return true;
  }
  // Routed on this text already (the transaction's first message): the statement keeps the route.
  const HeadParse head = std::exchange(head_parse_, HeadParse{});
  const TextRoute route = head.query_size == parse.query.size() ? head.route : TextRoute::Unknown;
  const auto added =
      statements_.add(parse.name, parse.query, parse.param_types_raw, parse.param_count, sets_config, route);
  if (added == ClientStatements::AddResult::LimitReached) {
    send_error(make_error(ProxyErrc::TooManyPreparedStatements, {std::to_string(statements_.size())}), false);
    return false;
  }
  if (added == ClientStatements::AddResult::BytesLimitReached) {
    // Inside an exchange the server's replies to what came before are still on their way:
    // the error cannot be put in their place, so it ends the connection.
    send_error(too_many_prepared_bytes(parse.name, parse.query).as_fatal(), false);
    return false;
  }
  server_->client_sent_parse(parse.name, statements_.find(parse.name)->statement, forward());
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
  // Also after a BEGIN held here: pgbench prepares each statement when it first runs it,
  // inside the transaction, and must not wait for a server there either.
  // In a transaction that failed before reaching a server, only a COMMIT or ROLLBACK.
  const bool aborted = deferred_.phase == DeferredBegin::Phase::Aborted;
  const bool no_transaction_yet =
      exchange_.tx_status == 'I' || deferred_.phase == DeferredBegin::Phase::Held || aborted;
  if (session_mode_ || !no_transaction_yet || pending_error_) return LocalPrepare::No;
  protocol::FrameHeader next;
  const auto rest = in.subspan(h.total_size());
  const auto status = protocol::peek_header(rest, next, config_->limits.max_message_size);
  if (status == protocol::FrameStatus::NeedMore) {
    if (rest.size() >= 5) return LocalPrepare::No;
    // Room for the header after the Parse: a Parse that fills the buffer would otherwise
    // stop reading short of the Sync this waits for.
    if (!forward_empty() || !input_.reserve_unread(h.total_size() + 5, std::size_t{UINT32_MAX}))
      return LocalPrepare::No;
    return LocalPrepare::NeedMore;
  }
  if (status != protocol::FrameStatus::Ready || next.tag != tag(FrontendTag::Sync) || rest.size() < next.total_size())
    return LocalPrepare::No;
  protocol::ParseMessage parse;
  if (!protocol::parse_parse(in.subspan(5, h.body_size()), parse) || parse.name.empty()) return LocalPrepare::No;
  if (statements_.find(parse.name) != nullptr) return LocalPrepare::No;  // the server reports 42P05
  if (aborted) {
    const sql::LocalStatement kind = host_.resources().classifier.classify(parse.query).local;
    if (kind != sql::LocalStatement::Commit && kind != sql::LocalStatement::Rollback) return LocalPrepare::No;
  }
  if (statements_.bytes_with(parse.name, parse.query) > statements_.byte_limit()) {
    // Refused before any parsing: the error answers this Parse and Sync, the client goes on
    // (after a held BEGIN, in a failed transaction, as an error there leaves it).
    input_.consume(h.total_size() + next.total_size());
    deferred_begin_refused();
    send_error(too_many_prepared_bytes(parse.name, parse.query), true);
    return LocalPrepare::Done;
  }
  if (!sql::sql_syntax_ok(parse.query)) return LocalPrepare::No;
  note_statement_effects(parse);
  const auto added = statements_.add(parse.name, parse.query, parse.param_types_raw, parse.param_count,
                                     sets_session_config(parse.query));
  if (added == ClientStatements::AddResult::LimitReached) return LocalPrepare::No;  // handle_parse reports it
  std::vector<std::byte> out;
  protocol::append_parse_complete(out);
  protocol::append_ready_for_query(out, exchange_.tx_status);
  send_own(std::move(out));
  input_.consume(h.total_size() + next.total_size());
  return LocalPrepare::Done;
}

ProxyError ClientSession::too_many_prepared_bytes(std::string_view name, std::string_view query) const {
  return make_error(ProxyErrc::TooManyPreparedBytes, {std::to_string(statements_.bytes_with(name, query)),
                                                      std::to_string(statements_.byte_limit())});
}

void ClientSession::ensure_statement_on_server(std::string_view name) {
  if (session_mode_) return;  // the server is this client's alone
  const PreparedStatement* stmt = name.empty() ? nullptr : statements_.find(name);
  if (stmt == nullptr) {
    // Not this client's: the server must answer as if it held no such statement.
    server_->close_foreign_statement(name, forward());
    return;
  }
  if (stmt->sets_session_config) server_->client_changed_settings();
  server_->ensure_statement(name, stmt->statement, forward());
}

// Whether `sql` may change session settings with no SET command tag to show it (a
// set_config(..., false)): a cheap look for the name, then the classifier (cached by text).
bool ClientSession::sets_session_config(std::string_view sql) {
  return sql::may_set_session_config(sql) && host_.resources().classifier.classify(sql).sets_session_config;
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
  if (server_ != nullptr && result != OutboundBatch::Flush::Failed) ++server_->pool().metrics().server_writes;
  if (result == OutboundBatch::Flush::Sent) return true;
  if (result == OutboundBatch::Flush::Queued) return false;
  // The server connection is broken: handled like any lost server (replay or FATAL).
  if (server_ != nullptr) {
    server_->close(ServerCloseReason::ServerGone, std::string("write to server failed: ") + uv_strerror(forward_->error()));
  } else {
    close("write to server failed");
  }
  return false;
}

void ClientSession::on_forward_written(uv_write_t* req, int) {
  auto* self = static_cast<ClientSession*>(req->data);
  io::Loop& loop = self->host_.loop();
  self->forward_->complete();
  if (self->closed()) {
    self->maybe_free();
  } else {
    self->input_.compact();
    self->process_input();
  }
  loop.run_deferred();
}

// ---- server lease --------------------------------------------------------------------

void ClientSession::on_server_assigned(ServerConn& server) {
  if (phase_ == ClientPhase::LoggingIn) {
    // The lease was only to learn the server's parameters.
    lease_ = Lease::None;
    const ParamMap params = server.params();
    server.detach();
    pool_->release(server, ReleaseKind::Reusable);
    route_wait_.clear();
    finish_login(params);
  } else {
    note_wait_over(server.pool());
    link_server(server);
  }
  host_.resume_later(id_);
}

void ClientSession::note_wait_over(PoolShard& pool) {
  if (timing_.wait_started == 0) return;
  pool.metrics().client_wait.record(std::chrono::nanoseconds(uv_hrtime() - timing_.wait_started));
  timing_.wait_started = 0;
}

void ClientSession::link_server(ServerConn& server) {
  lease_ = Lease::Linked;
  route_wait_.clear();
  server_ = &server;
  if (server.statements_over_limit()) {  // no portal is open before our first message
    forward_dest_ = server.stream();
    server.trim_statements(forward());
  }
  sync_settings_to(server);
}

// Makes `server` carry this client's settings: another client's reset first, then what differs.
void ClientSession::sync_settings_to(ServerConn& server) {
  settings_dirty_ = false;
  std::shared_ptr<const ParamList> settings = params_.shared_entries();
  const uint64_t fp = tracker_.fingerprint();
  const SessionLeftovers leftovers = server.leftovers_for(id_, fp);
  if (!leftovers.any() && server.settings_match(settings))
    return;  // these settings were the last made to match here, and nothing changed since
  const auto sql = settings_sync_sql(params_, tracker_.settings(), fp, server.params(), leftovers.settings);
  if (sql || leftovers.any()) forward_dest_ = server.stream();
  server.sync_settings(leftovers, sql ? std::string_view(*sql) : std::string_view(), fp, std::move(settings),
                       forward());
}

void ClientSession::unlink_server(bool reusable) {
  ServerConn* s = server_;
  if (s == nullptr) return;
  retry_ = RetryState{};  // the transaction is over
  server_ = nullptr;
  lease_ = Lease::None;
  if (s->carries_state_of(id_)) server_state_left_ = true;
  s->detach();
  pool_->release(*s, reusable ? ReleaseKind::Reusable : ReleaseKind::Close);
  if (draining_) close_for_shutdown();
}

void ClientSession::on_server_unavailable(const ProxyError& why) {
  lease_ = Lease::None;
  const bool logging_in = phase_ == ClientPhase::LoggingIn;
  const bool may_wait = database_ != nullptr && is_connection_trouble(why.sqlstate) &&
                        database_->on_primary_down == config::PrimaryDownPolicy::ReplicaReads;
  const Intent intent = logging_in ? login_intent() : routed_intent_;
  if (may_wait) route_wait_.last_error = std::make_unique<ProxyError>(why);
  if (may_wait && intent == Intent::Read && !retry_.used) {
    // A read (or a login) that could not get a connection to its server tries another once.
    retry_.used = true;
    retry_.avoid = routed_server_;
    log_info("read_rerouted")
        .kv("worker", host_.loop().id())
        .kv("session", static_cast<long long>(id_))
        .kv("error", why.message);
    if (logging_in) {
      host_.resume_later(id_);  // resume() routes the login again
      return;
    }
  } else if (may_wait) {
    // A write (or a login) waits for the server, up to write_wait, as when it is down.
    wait_for_route(false);
    if (logging_in) return;
  } else if (logging_in) {
    ProxyError e = why;
    send_error(e.as_fatal(), false);
    return;
  } else {
    // The connection stays usable: the request that needed a server gets this error.
    route_wait_.clear();
    pending_error_ = std::make_unique<ProxyError>(why);
  }
  host_.resume_later(id_);
}

void ClientSession::on_server_lost(const ProxyError& why) {
  const std::string_view reason = why.message;
  server_ = nullptr;
  tracker_.server_lost();
  refusing_.reset();
  lease_ = Lease::None;
  if (closed() || phase_ == ClientPhase::Failing) return;
  if (replay_possible()) {
    log_info("read_replayed")
        .kv("worker", host_.loop().id())
        .kv("session", static_cast<long long>(id_))
        .kv("bytes", static_cast<long long>(retry_.bytes.size()))
        .kv("reason", reason);
    retry_.used = true;
    retry_.avoid = routed_server_;
    retry_.capturing = false;
    retry_.replay_pending = true;
    if (db_counters_ != nullptr) ++db_counters_->reads_replayed;  // process_input() replays once no write is in flight
    exchange_.extended = false;
    exchange_.copy_in = false;
    passthrough_ = 0;
    host_.resume_later(id_);
    return;
  }
  log_info("client_server_lost")
      .kv("worker", host_.loop().id())
      .kv("session", static_cast<long long>(id_))
      .kv("reason", reason);
  send_error(why, false);
}

void ClientSession::on_ready_for_query(char tx_status) {
  exchange_.tx_status = tx_status;
  last_activity_ = host_.loop().now();  // idle (in a transaction or not) from here
  tracker_.ready(tx_status);
  take_tracker_outcome();
  if (server_ == nullptr) return;
  note_request_done(server_->pool().metrics(), tx_status);
  if (session_mode_ || pinned()) {
    if (draining_ && between_transactions()) close_for_shutdown();  // the server goes back with a reset
    return;
  }
  if (between_transactions() && !exchange_.copy_in) unlink_server(true);
}

void ClientSession::note_request_done(PoolMetrics& metrics, char tx_status) {
  const uint64_t now = uv_hrtime();
  const auto loop_now = host_.loop().now();
  ++metrics.queries;
  if (timing_.request_started != 0) {
    const std::chrono::nanoseconds took(now - timing_.request_started);
    metrics.query.record(took);
    metrics.query_window.record(took, loop_now);
    timing_.request_started = 0;
  }
  if (tx_status != 'I') return;
  ++metrics.transactions;
  if (timing_.transaction_started != 0) {
    const std::chrono::nanoseconds took(now - timing_.transaction_started);
    metrics.transaction.record(took);
    metrics.transaction_window.record(took, loop_now);
    timing_.transaction_started = 0;
  }
}

void ClientSession::on_parameter_status(std::string_view name, std::string_view value) { params_.set(name, value); }

}  // namespace pgsidecar::proxy
