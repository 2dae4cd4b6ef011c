#include "proxy/pooling/cancel.h"

#include <array>
#include <memory>
#include <vector>

#include "protocol/messages.h"
#include "proxy/core/log.h"
#include "proxy/io/uv_handle.h"

namespace pgsidecar::proxy {
namespace {

// Owned by its handles from connect to close: freed after the last close callback.
struct CancelSender {
  CancelSender() : handles(this, &CancelSender::on_last_closed) {}

  io::HandleGroup handles;
  io::Stream stream;
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  uv_timer_t timer{};
  bool closing = false;
  std::vector<std::byte> packet;
  std::array<char, 64> sink{};  // the server sends nothing; a read sees its close
  std::function<void()> done;

  void close() {
    if (closing) return;
    closing = true;
    handles.close(stream.handle());
    handles.close(reinterpret_cast<uv_handle_t*>(&timer));
  }
  static void on_last_closed(void* self) {
    std::unique_ptr<CancelSender> owned(static_cast<CancelSender*>(self));  // freed here
    if (owned->done) owned->done();
  }
  static void on_connect(uv_connect_t* req, int status) {
    auto* self = static_cast<CancelSender*>(req->data);
    if (self->closing) return;
    if (status < 0) {
      log_warn("cancel_connect_failed").kv("error", uv_strerror(status));
      self->close();
      return;
    }
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(self->packet.data()),
                               static_cast<unsigned>(self->packet.size()));
    self->write_req.data = self;
    if (uv_write(&self->write_req, self->stream.stream, &buf, 1, &on_written) != 0) self->close();
  }
  static void on_written(uv_write_t* req, int status) {
    auto* self = static_cast<CancelSender*>(req->data);
    if (self->closing) return;
    if (status < 0) {
      self->close();
      return;
    }
    // The server signals the backend, then closes without a reply: wait for that close.
    uv_read_start(self->stream.stream, &on_alloc, &on_read);
  }
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<CancelSender*>(h->data);
    *buf = uv_buf_init(self->sink.data(), static_cast<unsigned>(self->sink.size()));
  }
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
    if (nread < 0) static_cast<CancelSender*>(s->data)->close();
  }
  static void on_timeout(uv_timer_t* t) { static_cast<CancelSender*>(t->data)->close(); }
};

}  // namespace

void send_cancel_request(io::Loop& loop, const ResolvedAddress& address, int32_t backend_pid,
                         int32_t backend_secret, std::function<void()> done) {
  CancelSender* s = std::make_unique<CancelSender>().release();  // its handles own it now
  s->done = std::move(done);
  protocol::append_cancel_request(s->packet, backend_pid, backend_secret);
  s->connect_req.data = s;
  s->stream.init(loop.uv(), !address.is_unix, s->handles);
  uv_timer_init(loop.uv(), &s->timer);
  s->handles.opened(reinterpret_cast<uv_handle_t*>(&s->timer));
  uv_timer_start(&s->timer, &CancelSender::on_timeout, static_cast<uint64_t>(kCancelTimeout.count()), 0);
  if (address.is_unix) {
    uv_pipe_connect(&s->connect_req, &s->stream.pipe, address.unix_path.c_str(), &CancelSender::on_connect);
  } else if (uv_tcp_connect(&s->connect_req, &s->stream.tcp, reinterpret_cast<const sockaddr*>(&address.addr),
                            &CancelSender::on_connect) != 0) {
    s->close();
  }
}

}  // namespace pgsidecar::proxy
