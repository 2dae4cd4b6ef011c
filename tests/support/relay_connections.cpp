#include "tests/support/relay_connections.h"

#include <chrono>
#include <deque>
#include <span>
#include <utility>

namespace pgsidecar::testing::relay {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadSize = 64 * 1024;

enum class Flow { ClientToServer, ServerToClient };

// What one direction of a connection does with the bytes it read.
enum class Disposition { Forward, Hold, Discard };

Disposition disposition_in(Mode mode, Flow flow) {
  switch (mode) {
    case Mode::Pass:
    case Mode::Delay:
    case Mode::HoldNew:  // a connection not yet connected onward holds: see disposition()
      return Disposition::Forward;
    case Mode::Stall:
      return Disposition::Hold;
    case Mode::StallReplies:
      return flow == Flow::ClientToServer ? Disposition::Forward : Disposition::Hold;
    case Mode::Drop:
    case Mode::Reset:
      return Disposition::Discard;
  }
  return Disposition::Discard;
}

// Modes in which a newly accepted connection is connected onward.
bool reaches_server(Mode mode) {
  return mode == Mode::Pass || mode == Mode::Delay || mode == Mode::StallReplies;
}

struct Chunk {
  Clock::time_point arrived;
  std::vector<char> bytes;  // empty: the source's end of stream (FIN)
};

struct PendingWrite {
  uv_write_t req{};
  std::vector<char> bytes;  // what req points into, until its callback
};

template <typename H>
uv_handle_t* as_handle(H* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}

template <typename H>
uv_stream_t* as_stream(H* h) {
  return reinterpret_cast<uv_stream_t*>(h);
}

}  // namespace

// One accepted connection and, once connected, its server connection. Freed from the close
// callback of its last handle (ConnectionTable::forget), so pending write callbacks, which
// libuv runs with UV_ECANCELED before the close callbacks, still find it.
class RelayedConnection {
 public:
  enum class Phase {
    Deferred,    // accepted while stalled: client bytes held, no server connection yet
    Connecting,  // uv_tcp_connect in progress: client bytes held
    Open,        // both sockets connected: bytes go as the mode says
    Blackholed,  // accepted in drop(): never connected onward; client bytes discarded
    Closing,     // every handle is closing; nothing is read or written any more
  };

  RelayedConnection(ConnectionTable& table, std::uint64_t id);
  RelayedConnection(const RelayedConnection&) = delete;
  RelayedConnection& operator=(const RelayedConnection&) = delete;

  bool accept(uv_stream_t* listener);
  void apply_mode();      // the relay's mode changed, or the connection is new
  void update_reading();  // reads follow the phase, the mode and the memory cap
  enum class CloseHow { Fin, Reset };
  void close(CloseHow how);

 private:
  // One direction: reads `from`, holds chunks, writes them to `to`.
  struct Pipe {
    Pipe(RelayedConnection& c, Flow f, uv_tcp_t& source, uv_tcp_t& destination)
        : conn(c), flow(f), from(source), to(destination) {}
    RelayedConnection& conn;
    Flow flow;
    uv_tcp_t& from;
    uv_tcp_t& to;
    std::deque<Chunk> held;  // read, not yet written; arrival order
    std::deque<PendingWrite> writing;  // uv_write callbacks come in this order
    uv_timer_t timer{};  // armed for the head of `held` under delay()
    uv_shutdown_t shutdown_req{};
    bool reading = false;
    bool eof_read = false;  // the source sent FIN
    bool done = false;      // the FIN was passed on (or could not be)
  };

  static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_written(uv_write_t* req, int status) noexcept;
  static void on_shutdown(uv_shutdown_t* req, int status) noexcept;
  static void on_connect(uv_connect_t* req, int status) noexcept;
  static void on_timer(uv_timer_t* t) noexcept;
  static void on_handle_closed(uv_handle_t* h) noexcept;

  Disposition disposition(const Pipe& p) const;
  bool source_connected(const Pipe& p) const;
  void connect();
  void on_bytes(Pipe& p, std::span<const char> bytes);
  void on_eof(Pipe& p);
  void pump(Pipe& p);
  void discard_held(Pipe& p);
  void pass_on_eof(Pipe& p);
  void close_tcp(uv_tcp_t& tcp, CloseHow how);

  ConnectionTable& table_;
  std::uint64_t id_;
  Phase phase_ = Phase::Deferred;
  uv_tcp_t client_{};
  uv_tcp_t server_{};
  uv_connect_t connect_req_{};
  Pipe up_{*this, Flow::ClientToServer, client_, server_};
  Pipe down_{*this, Flow::ServerToClient, server_, client_};
  int open_handles_ = 0;
};

RelayedConnection::RelayedConnection(ConnectionTable& table, std::uint64_t id)
    : table_(table), id_(id) {
  // Every handle's data is the Pipe it belongs to (a socket: the Pipe it is the source of).
  uv_tcp_init(table_.loop_, &client_);
  client_.data = &up_;
  uv_tcp_init(table_.loop_, &server_);
  server_.data = &down_;
  for (Pipe* p : {&up_, &down_}) {
    uv_timer_init(table_.loop_, &p->timer);
    p->timer.data = p;
  }
  open_handles_ = 4;
  connect_req_.data = this;
}

bool RelayedConnection::accept(uv_stream_t* listener) {
  if (uv_accept(listener, as_stream(&client_)) != 0) {
    close(CloseHow::Fin);
    return false;
  }
  uv_tcp_nodelay(&client_, 1);
  return true;
}

Disposition RelayedConnection::disposition(const Pipe& p) const {
  if (phase_ == Phase::Blackholed) return Disposition::Discard;
  if (phase_ == Phase::Deferred && table_.mode_ == Mode::HoldNew) return Disposition::Hold;
  return disposition_in(table_.mode_, p.flow);
}

bool RelayedConnection::source_connected(const Pipe& p) const {
  if (&p == &up_) return true;
  return phase_ == Phase::Open;
}

void RelayedConnection::apply_mode() {
  if (phase_ == Phase::Closing) return;
  const Mode mode = table_.mode_;
  if (mode == Mode::Reset) {
    close(CloseHow::Reset);
    return;
  }
  if (phase_ == Phase::Deferred) {
    // Bytes thrown away while waiting would reach the server as garbage: such a
    // connection is never connected onward.
    if (mode == Mode::Drop) phase_ = Phase::Blackholed;
    if (reaches_server(mode)) connect();
    if (phase_ == Phase::Closing) return;
  }
  pump(up_);
  pump(down_);
  update_reading();
}

void RelayedConnection::update_reading() {
  if (phase_ == Phase::Closing) return;
  for (Pipe* p : {&up_, &down_}) {
    const bool want = !p->eof_read && source_connected(*p) &&
                      (!table_.reading_paused_ || disposition(*p) == Disposition::Discard);
    if (want == p->reading) continue;
    if (want) {
      p->reading = uv_read_start(as_stream(&p->from), &on_alloc, &on_read) == 0;
    } else {
      uv_read_stop(as_stream(&p->from));
      p->reading = false;
    }
  }
}

void RelayedConnection::connect() {
  phase_ = Phase::Connecting;
  const int rc = uv_tcp_connect(&connect_req_, &server_,
                                reinterpret_cast<const sockaddr*>(&table_.target_), &on_connect);
  if (rc != 0) close(CloseHow::Reset);
}

void RelayedConnection::on_connect(uv_connect_t* req, int status) noexcept {
  auto* self = static_cast<RelayedConnection*>(req->data);
  if (self->phase_ == Phase::Closing) return;  // UV_ECANCELED: closed while connecting
  if (status < 0) {
    // The target refused: the client sees a reset, as it would connecting directly.
    self->close(CloseHow::Reset);
    return;
  }
  uv_tcp_nodelay(&self->server_, 1);
  self->phase_ = Phase::Open;
  self->apply_mode();
}

void RelayedConnection::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) noexcept {
  std::vector<char>& shared = static_cast<Pipe*>(h->data)->conn.table_.read_buffer_;
  *buf = uv_buf_init(shared.data(), static_cast<unsigned>(shared.size()));
}

void RelayedConnection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
  Pipe& p = *static_cast<Pipe*>(s->data);
  RelayedConnection& self = p.conn;
  if (nread == 0 || self.phase_ == Phase::Closing) return;
  if (nread == UV_EOF) {
    self.on_eof(p);
  } else if (nread < 0) {
    self.close(CloseHow::Reset);  // a reset (or worse) on one side resets the other
  } else {
    self.on_bytes(p, std::span<const char>(buf->base, static_cast<std::size_t>(nread)));
  }
}

void RelayedConnection::on_bytes(Pipe& p, std::span<const char> bytes) {
  if (disposition(p) == Disposition::Discard) {
    table_.counters_.discarded += bytes.size();
    return;
  }
  p.held.push_back(Chunk{Clock::now(), std::vector<char>(bytes.begin(), bytes.end())});
  table_.add_held(bytes.size());
  pump(p);
}

void RelayedConnection::on_eof(Pipe& p) {
  p.eof_read = true;
  p.reading = false;  // libuv stops reading a stream at its end
  if (phase_ == Phase::Blackholed) {
    close(CloseHow::Fin);  // nothing upstream to keep open for
    return;
  }
  // In drop() the FIN is lost like any byte: the connection stays half open.
  if (disposition(p) == Disposition::Discard) return;
  p.held.push_back(Chunk{Clock::now(), {}});
  pump(p);
}

// Forwards what is due, in arrival order; under delay() arms the timer for the rest.
void RelayedConnection::pump(Pipe& p) {
  if (phase_ == Phase::Closing) return;
  const Disposition what = disposition(p);
  if (what == Disposition::Discard) {
    discard_held(p);
    return;
  }
  if (what == Disposition::Hold || phase_ != Phase::Open) {
    uv_timer_stop(&p.timer);
    return;
  }
  const auto delay = table_.mode_ == Mode::Delay ? table_.delay_ : std::chrono::milliseconds(0);
  while (!p.held.empty()) {
    Chunk& head = p.held.front();
    const Clock::time_point due = head.arrived + delay;
    const Clock::time_point now = Clock::now();
    if (due > now) {
      // Rounded up, and checked again on expiry: a chunk is never early.
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(due - now);
      uv_timer_start(&p.timer, &on_timer, static_cast<std::uint64_t>(wait.count()), 0);
      return;
    }
    if (head.bytes.empty()) {
      p.held.pop_front();
      pass_on_eof(p);
      if (phase_ == Phase::Closing) return;
      continue;
    }
    PendingWrite& w = p.writing.emplace_back();
    w.bytes = std::move(head.bytes);
    p.held.pop_front();
    w.req.data = &p;
    const uv_buf_t buf = uv_buf_init(w.bytes.data(), static_cast<unsigned>(w.bytes.size()));
    if (uv_write(&w.req, as_stream(&p.to), &buf, 1, &on_written) != 0) {
      table_.release_held(w.bytes.size());
      p.writing.pop_back();
      close(CloseHow::Reset);
      return;
    }
  }
  uv_timer_stop(&p.timer);
}

void RelayedConnection::on_timer(uv_timer_t* t) noexcept {
  Pipe& p = *static_cast<Pipe*>(t->data);
  p.conn.pump(p);
}

void RelayedConnection::on_written(uv_write_t* req, int status) noexcept {
  Pipe& p = *static_cast<Pipe*>(req->data);
  const std::size_t n = p.writing.front().bytes.size();
  p.writing.pop_front();  // writes on one stream complete in order
  ConnectionTable& table = p.conn.table_;
  if (status == 0) {
    (p.flow == Flow::ClientToServer ? table.counters_.client_to_server
                                    : table.counters_.server_to_client) += n;
  }
  table.release_held(n);
  if (status < 0 && status != UV_ECANCELED) p.conn.close(CloseHow::Reset);
}

void RelayedConnection::discard_held(Pipe& p) {
  uv_timer_stop(&p.timer);
  std::size_t n = 0;
  for (const Chunk& c : p.held) n += c.bytes.size();
  p.held.clear();
  table_.counters_.discarded += n;
  table_.release_held(n);
}

void RelayedConnection::pass_on_eof(Pipe& p) {
  p.shutdown_req.data = &p;
  // libuv shuts the write side down after the writes queued before it.
  if (uv_shutdown(&p.shutdown_req, as_stream(&p.to), &on_shutdown) != 0) {
    close(CloseHow::Fin);
  }
}

void RelayedConnection::on_shutdown(uv_shutdown_t* req, int status) noexcept {
  Pipe& p = *static_cast<Pipe*>(req->data);
  RelayedConnection& self = p.conn;
  p.done = true;
  if (status == UV_ECANCELED || self.phase_ == Phase::Closing) return;
  if (status < 0 || (self.up_.done && self.down_.done)) self.close(CloseHow::Fin);
}

void RelayedConnection::close_tcp(uv_tcp_t& tcp, CloseHow how) {
  // uv_tcp_close_reset refuses a socket being shut down, and one never connected has no
  // descriptor to set SO_LINGER on: those get an ordinary close.
  if (how == CloseHow::Reset && uv_tcp_close_reset(&tcp, &on_handle_closed) == 0) return;
  uv_close(as_handle(&tcp), &on_handle_closed);
}

void RelayedConnection::close(CloseHow how) {
  if (phase_ == Phase::Closing) return;
  phase_ = Phase::Closing;
  for (Pipe* p : {&up_, &down_}) {
    std::size_t n = 0;
    for (const Chunk& c : p->held) n += c.bytes.size();
    p->held.clear();
    table_.release_held(n);  // bytes being written are released by their callbacks
    uv_close(as_handle(&p->timer), &on_handle_closed);
  }
  close_tcp(client_, how);
  close_tcp(server_, how);
}

void RelayedConnection::on_handle_closed(uv_handle_t* h) noexcept {
  RelayedConnection& self = static_cast<Pipe*>(h->data)->conn;
  if (--self.open_handles_ == 0) self.table_.forget(self.id_);  // frees self
}

ConnectionTable::ConnectionTable(uv_loop_t* loop, const sockaddr_storage& target,
                                 std::size_t max_held_bytes, Mode mode,
                                 std::chrono::milliseconds delay)
    : loop_(loop),
      target_(target),
      max_held_bytes_(max_held_bytes),
      mode_(mode),
      delay_(delay),
      read_buffer_(kReadSize) {}

ConnectionTable::~ConnectionTable() = default;

void ConnectionTable::accept(uv_stream_t* listener) {
  const std::uint64_t id = next_id_++;
  RelayedConnection& c =
      *connections_.emplace(id, std::make_unique<RelayedConnection>(*this, id)).first->second;
  ++counters_.accepted;
  ++counters_.open;
  if (c.accept(listener)) c.apply_mode();
}

void ConnectionTable::set_mode(Mode mode, std::chrono::milliseconds delay) {
  mode_ = mode;
  delay_ = delay;
  // Closing does not free (that waits for the close callbacks): the map stays as it is.
  for (auto& [id, c] : connections_) c->apply_mode();
}

void ConnectionTable::close_all() {
  for (auto& [id, c] : connections_) c->close(RelayedConnection::CloseHow::Fin);
}

void ConnectionTable::forget(std::uint64_t id) {
  connections_.erase(id);
  --counters_.open;
}

void ConnectionTable::add_held(std::size_t n) {
  held_ += n;
  counters_.held = held_;
  if (!reading_paused_ && held_ >= max_held_bytes_) {
    reading_paused_ = true;
    update_reading_everywhere();
  }
}

void ConnectionTable::release_held(std::size_t n) {
  held_ -= n;
  counters_.held = held_;
  if (reading_paused_ && held_ <= max_held_bytes_ / 2) {
    reading_paused_ = false;
    update_reading_everywhere();
  }
}

void ConnectionTable::update_reading_everywhere() {
  for (auto& [id, c] : connections_) c->update_reading();
}

}  // namespace pgsidecar::testing::relay
