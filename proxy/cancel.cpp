#include "proxy/cancel.h"

#include <memory>
#include <vector>

#include "protocol/messages.h"
#include "proxy/log.h"
#include "proxy/server_address.h"
#include "proxy/worker.h"

namespace pgsidecar::proxy {
namespace {

// Owns itself from connect to close; freed in the close callback.
struct CancelSender {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  };
  uv_stream_t* stream = nullptr;
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  uv_timer_t timer{};
  int open_handles = 0;
  bool closing = false;
  std::vector<std::byte> packet;

  void close() {
    if (closing) return;
    closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(stream), &on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), &on_closed);
  }
  static void on_closed(uv_handle_t* h) {
    auto* self = static_cast<CancelSender*>(h->data);
    if (--self->open_handles == 0) delete self;
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
    if (uv_write(&self->write_req, self->stream, &buf, 1, &on_written) != 0) self->close();
  }
  static void on_written(uv_write_t* req, int) {
    // The server reads the request and closes; nothing comes back.
    static_cast<CancelSender*>(req->data)->close();
  }
  static void on_timeout(uv_timer_t* t) { static_cast<CancelSender*>(t->data)->close(); }
};

}  // namespace

void send_cancel_request(Worker& worker, const ServerTarget& target, int32_t backend_pid, int32_t backend_secret) {
  ResolvedAddress address;
  std::string error;
  if (!resolve_server_address(target, address, error)) {
    log_warn("cancel_failed").kv("error", error);
    return;
  }
  auto* s = new CancelSender();
  protocol::append_cancel_request(s->packet, backend_pid, backend_secret);
  s->connect_req.data = s;
  if (address.is_unix) {
    uv_pipe_init(worker.loop(), &s->pipe, 0);
    s->stream = reinterpret_cast<uv_stream_t*>(&s->pipe);
  } else {
    uv_tcp_init(worker.loop(), &s->tcp);
    s->stream = reinterpret_cast<uv_stream_t*>(&s->tcp);
  }
  s->stream->data = s;
  ++s->open_handles;
  uv_timer_init(worker.loop(), &s->timer);
  s->timer.data = s;
  ++s->open_handles;
  uv_timer_start(&s->timer, &CancelSender::on_timeout, 5000, 0);  // never linger
  if (address.is_unix) {
    uv_pipe_connect(&s->connect_req, &s->pipe, address.unix_path.c_str(), &CancelSender::on_connect);
  } else if (uv_tcp_connect(&s->connect_req, &s->tcp, reinterpret_cast<const sockaddr*>(&address.addr),
                            &CancelSender::on_connect) != 0) {
    s->close();
  }
}

}  // namespace pgsidecar::proxy
