#include "proxy/io/loop.h"

namespace pgsidecar::proxy::io {

Loop::Loop(int id) : id_(id) {
  uv_loop_init(&loop_);
  mailbox_ = std::make_unique<uv::Mailbox>(&loop_);
  uv_check_init(&loop_, &check_);
  check_.data = this;
  uv_idle_init(&loop_, &idle_);
  idle_.data = this;
  // Neither handle keeps the loop alive by itself: the loop ends when connections do.
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&idle_));
}

Loop::~Loop() {
  uv_run(&loop_, UV_RUN_NOWAIT);  // close callbacks still pending
  uv_loop_close(&loop_);
}

namespace {

struct QueuedWork {
  uv_work_t req{};
  std::function<void()> work;
  std::function<void()> done;
};

}  // namespace

void Loop::queue_work(std::function<void()> work, std::function<void()> done) {
  auto* w = new QueuedWork{{}, std::move(work), std::move(done)};
  w->req.data = w;
  const auto run = [](uv_work_t* req) { static_cast<QueuedWork*>(req->data)->work(); };
  const auto after = [](uv_work_t* req, int) {
    std::unique_ptr<QueuedWork> owned(static_cast<QueuedWork*>(req->data));
    owned->done();
  };
  if (uv_queue_work(&loop_, &w->req, run, after) != 0) {  // only for a null callback: not reached
    std::unique_ptr<QueuedWork> owned(w);
    owned->work();
    owned->done();
  }
}

void Loop::defer(DeferredFn fn, void* context, uint64_t argument) {
  if (closed_) return;
  deferred_.push_back(Deferred{fn, context, argument});
  if (armed_) return;
  armed_ = true;
  uv_check_start(&check_, &Loop::on_check);
  // Deferred from a timer or the mailbox, before this turn's poll: do not let the poll
  // block until the next event.
  uv_idle_start(&idle_, &Loop::on_idle);
}

void Loop::on_check(uv_check_t* h) { static_cast<Loop*>(h->data)->run_deferred(); }

void Loop::run_deferred() {
  if (running_ || !armed_) return;
  running_ = true;
  // Work deferred by deferred work runs in this same pass, after what was already queued.
  while (!deferred_.empty()) {
    const Deferred d = deferred_.front();
    deferred_.pop_front();
    d.fn(d.context, d.argument);
  }
  running_ = false;
  armed_ = false;
  uv_check_stop(&check_);
  uv_idle_stop(&idle_);
}

void Loop::close() {
  if (closed_) return;
  closed_ = true;
  deferred_.clear();
  mailbox_->close();
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
}

}  // namespace pgsidecar::proxy::io
