#include "proxy/io/outbound_batch.h"

namespace pgsidecar::proxy {

void OutboundBatch::add_input(const std::byte* p, std::size_t n) {
  if (n == 0) return;
  bytes_ += n;
  if (!slices_.empty()) {
    Slice& last = slices_.back();
    if (last.input != nullptr && last.input + last.len == p) {
      last.len += n;
      return;
    }
  }
  slices_.push_back(Slice{p, 0, n});
}

std::vector<std::byte>& OutboundBatch::injected_out() { return injected_; }

void OutboundBatch::commit_injected() {
  const std::size_t n = injected_.size() - injected_committed_;
  if (n == 0) return;
  slices_.push_back(Slice{nullptr, injected_committed_, n});
  injected_committed_ = injected_.size();
  bytes_ += n;
}

OutboundBatch::Flush OutboundBatch::flush(io::Sink dest, void* owner, uv_write_cb cb, Input input) {
  bufs_.clear();
  for (const Slice& s : slices_) {
    const std::byte* base = s.input != nullptr ? s.input : injected_.data() + s.offset;
    bufs_.push_back(uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(base)),
                                static_cast<unsigned>(s.len)));
  }
  auto failed = [this](int error) {
    complete();
    error_ = error;
    return Flush::Failed;
  };
  if (dest.tls != nullptr) {
    req_.data = owner;
    switch (dest.tls->write(bufs_.data(), static_cast<unsigned>(bufs_.size()), &req_, cb)) {
      case io::TlsStream::Write::Sent:
        complete();
        return Flush::Sent;
      case io::TlsStream::Write::Queued:
        in_flight_ = true;
        return Flush::Queued;
      case io::TlsStream::Write::Failed:
        return failed(UV_EPROTO);
    }
  }
  // uv_try_write refuses (UV_EAGAIN) while earlier writes are queued, so order holds.
  const int written = uv_try_write(dest.stream, bufs_.data(), static_cast<unsigned>(bufs_.size()));
  if (written < 0 && written != UV_EAGAIN) return failed(written);
  std::size_t skip = written > 0 ? static_cast<std::size_t>(written) : 0;
  if (skip == bytes_) {
    complete();
    return Flush::Sent;
  }
  // Queue what the socket did not take: drop whole buffers, then trim the first one.
  std::size_t first = 0;
  while (skip >= bufs_[first].len) skip -= bufs_[first++].len;
  bufs_[first].base += skip;
  bufs_[first].len -= static_cast<unsigned>(skip);
  if (input == Input::Scratch) {
    // Rare (the socket took only part of a request); the scratch space is read into again
    // as soon as this callback returns.
    spilled_.clear();
    for (std::size_t i = first; i < bufs_.size(); ++i) {
      const auto* p = reinterpret_cast<const std::byte*>(bufs_[i].base);
      spilled_.insert(spilled_.end(), p, p + bufs_[i].len);
    }
    bufs_.assign(1, uv_buf_init(reinterpret_cast<char*>(spilled_.data()), static_cast<unsigned>(spilled_.size())));
    first = 0;
  }
  req_.data = owner;
  in_flight_ = true;
  const int rc = uv_write(&req_, dest.stream, bufs_.data() + first, static_cast<unsigned>(bufs_.size() - first), cb);
  return rc != 0 ? failed(rc) : Flush::Queued;
}

std::unique_ptr<OutboundBatch> OutboundBatchPool::take() {
  if (free_.empty()) return std::make_unique<OutboundBatch>();
  std::unique_ptr<OutboundBatch> batch = std::move(free_.back());
  free_.pop_back();
  return batch;
}

void OutboundBatchPool::give(std::unique_ptr<OutboundBatch> batch) {
  if (free_.size() >= kMaxFree) return;
  batch->complete();  // whatever was left for a server that is gone
  free_.push_back(std::move(batch));
}

void OutboundBatch::complete() {
  in_flight_ = false;
  slices_.clear();
  injected_.clear();
  injected_committed_ = 0;
  bytes_ = 0;
  if (spilled_.capacity() > kKeepSpilled) {
    std::vector<std::byte>().swap(spilled_);
  } else {
    spilled_.clear();
  }
}

}  // namespace pgsidecar::proxy
