#include "proxy/outbound_batch.h"

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

int OutboundBatch::flush(uv_stream_t* dest, void* owner, uv_write_cb cb) {
  bufs_.clear();
  for (const Slice& s : slices_) {
    const std::byte* base = s.input != nullptr ? s.input : injected_.data() + s.offset;
    bufs_.push_back(uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(base)),
                                static_cast<unsigned>(s.len)));
  }
  req_.data = owner;
  in_flight_ = true;
  const int rc = uv_write(&req_, dest, bufs_.data(), static_cast<unsigned>(bufs_.size()), cb);
  if (rc != 0) in_flight_ = false;
  return rc;
}

void OutboundBatch::complete() {
  in_flight_ = false;
  slices_.clear();
  injected_.clear();
  injected_committed_ = 0;
  bytes_ = 0;
}

}  // namespace pgsidecar::proxy
