#include "proxy/input_buffer.h"

#include <cstdint>
#include <cstring>

namespace pgsidecar::proxy {

std::unique_ptr<std::byte[]> BufferPool::take() {
  if (free_.empty()) return std::make_unique<std::byte[]>(kChunkSize);
  auto chunk = std::move(free_.back());
  free_.pop_back();
  return chunk;
}

void BufferPool::give(std::unique_ptr<std::byte[]> chunk) {
  if (free_.size() < kMaxFree) free_.push_back(std::move(chunk));
}

InputBuffer::~InputBuffer() {
  if (chunk_) pool_.give(std::move(chunk_));
}

uv_buf_t InputBuffer::free_space() {
  if (data_ == nullptr) {
    chunk_ = pool_.take();
    data_ = chunk_.get();
    capacity_ = BufferPool::kChunkSize;
    pos_ = end_ = 0;
  }
  return uv_buf_init(reinterpret_cast<char*>(data_ + end_), static_cast<unsigned>(capacity_ - end_));
}

void InputBuffer::compact() {
  if (pos_ == 0) return;
  const std::size_t n = end_ - pos_;
  if (n > 0) std::memmove(data_, data_ + pos_, n);
  pos_ = 0;
  end_ = n;
}

bool InputBuffer::reserve_unread(std::size_t bytes, std::size_t limit) {
  if (bytes > limit) return false;
  if (data_ == nullptr && bytes <= BufferPool::kChunkSize) {
    free_space();
    return true;
  }
  if (data_ != nullptr && pos_ + bytes <= capacity_) return true;
  compact();
  if (data_ != nullptr && bytes <= capacity_) return true;
  std::vector<std::byte> bigger(bytes);
  if (end_ > 0) std::memcpy(bigger.data(), data_, end_);
  if (chunk_) pool_.give(std::move(chunk_));
  large_ = std::move(bigger);
  data_ = large_.data();
  capacity_ = large_.size();
  return true;
}

void InputBuffer::prepend(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  const std::size_t unread = end_ - pos_;
  reserve_unread(unread + bytes.size(), SIZE_MAX);
  compact();
  if (data_ == nullptr) free_space();
  std::memmove(data_ + bytes.size(), data_, unread);
  std::memcpy(data_, bytes.data(), bytes.size());
  pos_ = 0;
  end_ = unread + bytes.size();
}

void InputBuffer::release_if_empty() {
  if (pos_ != end_ || data_ == nullptr) return;
  if (chunk_) pool_.give(std::move(chunk_));
  large_ = {};
  large_.shrink_to_fit();
  data_ = nullptr;
  capacity_ = pos_ = end_ = 0;
}

}  // namespace pgsidecar::proxy
