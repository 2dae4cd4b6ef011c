// Owner of one standalone libuv handle (a listener, an async): libuv keeps the handle's
// address until its close callback runs, so the handle lives on the heap, close() (or the
// destructor) asks libuv to close it, and the close callback frees it. The only place the
// test support code uses new and delete.
#pragma once

#include <uv.h>

#include <utility>

namespace pgsidecar::testing {

template <typename T>
class UvHandle {
 public:
  // init(T*) is the handle's uv_*_init call, e.g. [&](uv_tcp_t* t) { return uv_tcp_init(loop, t); }.
  // When it fails the handle was never registered with a loop: it is freed at once and
  // init_status() says why.
  template <typename Init>
  explicit UvHandle(Init&& init) : handle_(new T{}) {
    init_status_ = std::forward<Init>(init)(handle_);
    if (init_status_ != 0) {
      delete handle_;
      handle_ = nullptr;
    }
  }
  UvHandle(const UvHandle&) = delete;  // and therefore no moves: libuv holds the address
  UvHandle& operator=(const UvHandle&) = delete;
  ~UvHandle() { close(); }

  int init_status() const { return init_status_; }
  T* get() const { return handle_; }  // nullptr once closed or when init failed
  uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(handle_); }
  uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(handle_); }

  // Idempotent. Call it on the loop's thread, and run the loop afterwards so that the
  // close callback frees the memory.
  void close() {
    if (handle_ == nullptr) return;
    uv_close(handle(), &UvHandle::on_closed);
    handle_ = nullptr;
  }

 private:
  static void on_closed(uv_handle_t* h) { delete reinterpret_cast<T*>(h); }

  T* handle_;
  int init_status_ = 0;
};

}  // namespace pgsidecar::testing
