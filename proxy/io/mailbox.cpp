#include "proxy/io/mailbox.h"

namespace pgsidecar::proxy::uv {

Mailbox::Mailbox(uv_loop_t* loop) {
  uv_async_init(loop, &async_, &Mailbox::on_wake);
  async_.data = this;
}

Mailbox::~Mailbox() = default;

void Mailbox::post(Task t) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    pending_.push_back(std::move(t));
  }
  uv_async_send(&async_);
}

void Mailbox::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    pending_.clear();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

void Mailbox::on_wake(uv_async_t* a) {
  auto* self = static_cast<Mailbox*>(a->data);
  {
    std::lock_guard lock(self->mu_);
    self->running_.swap(self->pending_);
  }
  for (auto& task : self->running_) task();
  self->running_.clear();
}

}  // namespace pgsidecar::proxy::uv
