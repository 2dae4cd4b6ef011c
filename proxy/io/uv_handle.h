// Ownership of libuv handles. libuv keeps a handle's address until its close callback has
// run, so an object that embeds handles may be freed only after the last one closed, and
// after write callbacks (which run, with UV_ECANCELED, before the close callback). Every
// connection closes its handles through a HandleGroup; this is the one place where that
// close-then-free logic lives.
#pragma once

#include "proxy/io/layer.h"

#include <uv.h>

namespace pgsidecar::proxy::io {

class HandleGroup {
 public:
  // `last_closed(owner)` runs after the close callback of the group's last open handle.
  using LastClosed = void (*)(void* owner);
  HandleGroup(void* owner, LastClosed last_closed) : owner_(owner), last_closed_(last_closed) {}
  HandleGroup(const HandleGroup&) = delete;
  HandleGroup& operator=(const HandleGroup&) = delete;

  // After uv_*_init: the handle is open until close(). Its `data` stays the owner's.
  void opened(uv_handle_t* h) {
    h->data = owner_;
    ++open_;
  }
  // Idempotent. From here on the handle's `data` points at the group: libuv calls nothing
  // else on a closing handle but its close callback. (Not `data == this` to tell: the
  // group may sit at its owner's own address.)
  void close(uv_handle_t* h) {
    if (uv_is_closing(h)) return;
    h->data = this;
    uv_close(h, &HandleGroup::on_closed);
  }
  int open() const { return open_; }

 private:
  static void on_closed(uv_handle_t* h) {
    auto* self = static_cast<HandleGroup*>(h->data);
    if (--self->open_ == 0) self->last_closed_(self->owner_);
  }

  void* owner_;
  LastClosed last_closed_;
  int open_ = 0;
};

// A connected stream, TCP or Unix socket: one of the two handles, initialised on demand.
struct Stream {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  };
  uv_stream_t* stream = nullptr;
  bool is_tcp = false;

  Stream() {}  // the union member is initialised by init()
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  uv_stream_t* init(uv_loop_t* loop, bool tcp_socket, HandleGroup& group) {
    is_tcp = tcp_socket;
    if (is_tcp) {
      uv_tcp_init(loop, &tcp);
      stream = reinterpret_cast<uv_stream_t*>(&tcp);
    } else {
      uv_pipe_init(loop, &pipe, 0);
      stream = reinterpret_cast<uv_stream_t*>(&pipe);
    }
    group.opened(handle());
    return stream;
  }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(stream); }
  bool initialised() const { return stream != nullptr; }
};

}  // namespace pgsidecar::proxy::io
