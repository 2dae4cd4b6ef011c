// One event loop and what every connection on it shares: the loop's clock, reusable
// buffers and batches, a mailbox for other threads, and a queue of work deferred to the
// end of the current loop turn. A worker thread owns one; the layers above borrow it.
#pragma once

#include "proxy/io/layer.h"

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "proxy/io/input_buffer.h"
#include "proxy/io/mailbox.h"
#include "proxy/io/outbound_batch.h"
#include "proxy/io/ring_queue.h"

namespace pgsidecar::proxy::io {

class Loop {
 public:
  explicit Loop(int id);
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  ~Loop();  // after close() and a last uv_run: every handle has closed

  int id() const { return id_; }
  uv_loop_t* uv() { return &loop_; }
  BufferPool& buffers() { return buffers_; }
  OutboundBatchPool& batches() { return batches_; }
  // Any thread: run `task` on this loop's thread.
  void post(uv::Mailbox::Task task) { mailbox_->post(std::move(task)); }

  // The loop's time, taken once per loop iteration (milliseconds, from the same monotonic
  // clock as steady_clock): enough for timeouts, and no clock read per message.
  std::chrono::steady_clock::time_point now() const {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(uv_now(&loop_)));
  }

  // Runs fn(context, argument) at the end of this loop turn, after the callback that asked
  // for it has returned, in the order asked. This is how one connection's event reaches
  // another without re-entering it: a pool handing a freed server to a waiting client
  // from inside the releasing client's read callback defers the waiter's resumption.
  // No allocation once warm.
  using DeferredFn = void (*)(void* context, uint64_t argument);
  void defer(DeferredFn fn, void* context, uint64_t argument);
  // Runs the deferred work now. Connections call it as their read and write callbacks
  // return, so that a server freed by one client reaches the next at once, not only after
  // every other event of this turn (under load, hundreds). Not re-entrant: a call from
  // inside deferred work does nothing, the outer call goes on.
  void run_deferred();

  // Runs `work` on libuv's thread pool, then `done` on this loop's thread: CPU-heavy work
  // (a SCRAM key derivation) that would otherwise stall every connection of this loop.
  // `work` must touch only what it owns; whoever `done` reaches must still be alive when it
  // runs (the loop does not end while work is queued or running).
  void queue_work(std::function<void()> work, std::function<void()> done);

  void close();  // on the loop thread, when stopping: closes the mailbox and deferral handles

 private:
  static void on_check(uv_check_t* h);
  static void on_idle(uv_idle_t*) {}

  struct Deferred {
    DeferredFn fn;
    void* context;
    uint64_t argument;
  };

  int id_;
  uv_loop_t loop_{};
  std::unique_ptr<uv::Mailbox> mailbox_;
  BufferPool buffers_;
  OutboundBatchPool batches_;
  RingQueue<Deferred> deferred_;
  uv_check_t check_{};  // runs the deferred work after this turn's I/O callbacks
  uv_idle_t idle_{};    // active while work is deferred: the next poll does not block
  bool armed_ = false;
  bool running_ = false;
  bool closed_ = false;
};

}  // namespace pgsidecar::proxy::io
