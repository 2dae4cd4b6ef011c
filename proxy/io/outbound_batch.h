// The bytes one connection forwards in one uv_write: slices of its own input buffer,
// interleaved with messages the proxy injects (a re-Parse, a SET). Slices are kept as
// offsets and turned into uv_buf_t only at flush, so the injected buffer may grow while
// the batch is built. A flush first writes directly (uv_try_write): the common case, a
// socket with room, then costs one writev and no epoll change. Only what the socket does
// not take is queued with uv_write; that batch is then in flight, and the source stops
// reading until it completes, which is the backpressure. Input read into the worker's
// scratch space is only valid until the callback returns: what of it must be queued is
// copied first.
#pragma once

#include "proxy/io/layer.h"

#include <uv.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "proxy/io/tls_stream.h"

namespace pgsidecar::proxy {

class OutboundBatch {
 public:
  OutboundBatch() = default;
  OutboundBatch(const OutboundBatch&) = delete;
  OutboundBatch& operator=(const OutboundBatch&) = delete;

  void add_input(const std::byte* p, std::size_t n);  // adjacent input slices merge
  std::vector<std::byte>& injected_out();  // append a message, then call commit_injected()
  void commit_injected();

  bool empty() const { return slices_.empty(); }
  bool in_flight() const { return in_flight_; }
  std::size_t bytes() const { return bytes_; }

  enum class Flush {
    Sent,    // all written now; the batch is already complete(), no callback follows
    Queued,  // the rest is queued: cb runs when done (also with UV_ECANCELED), req.data = owner
    Failed,  // the destination is broken (error() says why); the batch is complete()
  };
  enum class Input { Owned, Scratch };
  // Over TLS the batch is encrypted at once (the ciphertext is queued, never the input).
  Flush flush(io::Sink dest, void* owner, uv_write_cb cb, Input input = Input::Owned);
  int error() const { return error_; }
  // From the write callback: forget the batch so the input may be compacted.
  void complete();

 private:
  static constexpr std::size_t kKeepSpilled = 4096;  // a pooled batch keeps no more
  struct Slice {
    const std::byte* input;  // nullptr: injected_[offset, offset+len)
    std::size_t offset;
    std::size_t len;
  };
  std::vector<Slice> slices_;
  std::vector<std::byte> injected_;
  std::size_t injected_committed_ = 0;
  std::vector<uv_buf_t> bufs_;
  std::vector<std::byte> spilled_;  // the queued rest of a batch from scratch input
  std::size_t bytes_ = 0;
  uv_write_t req_{};
  bool in_flight_ = false;
  int error_ = 0;
};

// Batches of the connections forwarding right now, reused: an idle client holds none,
// and taking one costs no allocation once the pool is warm.
class OutboundBatchPool {
 public:
  std::unique_ptr<OutboundBatch> take();
  void give(std::unique_ptr<OutboundBatch> batch);  // never one in flight

 private:
  static constexpr std::size_t kMaxFree = 256;
  std::vector<std::unique_ptr<OutboundBatch>> free_;
};

}  // namespace pgsidecar::proxy
