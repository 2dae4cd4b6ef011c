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
  std::vector<std::byte> packet;         // being written
  std::vector<std::byte> cancel_packet;  // CancelRequest, sent once TLS is settled
  std::array<char, 2048> sink{};  // the TLS handshake; then nothing: a read sees the close
  std::function<void()> done;
  const ServerTls* tls = nullptr;
  bool awaiting_tls_answer = false;
  std::unique_ptr<io::TlsStream> session;  // once the server said 'S'

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
    if (self->tls != nullptr) {
      // SSLRequest first; the cancel itself waits for the handshake.
      self->awaiting_tls_answer = true;
      std::vector<std::byte> request;
      protocol::append_ssl_request(request);
      self->send(std::move(request), false);
      uv_read_start(self->stream.stream, &on_alloc, &on_read);
      return;
    }
    self->send(std::move(self->cancel_packet), true);
  }
  void send(std::vector<std::byte> bytes, bool then_wait) {
    packet = std::move(bytes);
    if (session != nullptr) {
      session->write_owned(std::move(packet), [this, then_wait](int status) {
        if (status < 0) close();
        else if (then_wait) wait_for_close();
      });
      return;
    }
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(packet.data()), static_cast<unsigned>(packet.size()));
    write_req.data = this;
    if (uv_write(&write_req, stream.stream, &buf, 1, then_wait ? &on_written : &on_request_written) != 0) close();
  }
  static void on_request_written(uv_write_t* req, int status) {
    if (status < 0) static_cast<CancelSender*>(req->data)->close();
  }
  // The server's answer to SSLRequest, then the handshake; the cancel goes once it is done.
  void on_tls_bytes(const char* data, std::size_t n) {
    if (awaiting_tls_answer) {
      awaiting_tls_answer = false;
      std::string error;
      if (n == 1 && data[0] == 'S') session = tls->start(stream.stream, error);
      if (session == nullptr) {
        if (n == 1 && data[0] == 'N' && !tls->required()) {
          tls = nullptr;
          send(std::move(cancel_packet), true);
          return;
        }
        log_warn("cancel_tls_failed").kv("error", error.empty() ? "server refused TLS" : error);
        close();
        return;
      }
    } else {
      session->received(data, n);
    }
    switch (session->handshake()) {
      case io::TlsStream::Handshake::More: return;
      case io::TlsStream::Handshake::Failed:
        log_warn("cancel_tls_failed").kv("error", session->error());
        close();
        return;
      case io::TlsStream::Handshake::Done:
        tls = nullptr;  // from here on a read only waits for the close
        send(std::move(cancel_packet), true);
        return;
    }
  }
  void wait_for_close() { uv_read_start(stream.stream, &on_alloc, &on_read); }
  static void on_written(uv_write_t* req, int status) {
    auto* self = static_cast<CancelSender*>(req->data);
    if (self->closing) return;
    if (status < 0) {
      self->close();
      return;
    }
    // The server signals the backend, then closes without a reply: wait for that close.
    self->wait_for_close();
  }
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<CancelSender*>(h->data);
    *buf = uv_buf_init(self->sink.data(), static_cast<unsigned>(self->sink.size()));
  }
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* self = static_cast<CancelSender*>(s->data);
    if (nread < 0) {
      self->close();
    } else if (nread > 0 && self->tls != nullptr && !self->closing) {
      self->on_tls_bytes(buf->base, static_cast<std::size_t>(nread));
    }
  }
  static void on_timeout(uv_timer_t* t) { static_cast<CancelSender*>(t->data)->close(); }
};

}  // namespace

void send_cancel_request(io::Loop& loop, const ResolvedAddress& address, const ServerTls& tls, int32_t backend_pid,
                         int32_t backend_secret, std::function<void()> done) {
  CancelSender* s = std::make_unique<CancelSender>().release();  // its handles own it now
  s->done = std::move(done);
  if (tls.wanted(address.is_unix)) s->tls = &tls;
  protocol::append_cancel_request(s->cancel_packet, backend_pid, backend_secret);
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
