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

uv_buf_t BufferPool::scratch() {
  if (scratch_ == nullptr) scratch_ = std::make_unique_for_overwrite<std::byte[]>(kChunkSize);
  return uv_buf_init(reinterpret_cast<char*>(scratch_.get()), kChunkSize);
}

InputBuffer::~InputBuffer() { drop_memory(); }

void InputBuffer::append(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  reserve_unread(unread_size() + bytes.size(), SIZE_MAX);  // room after the unread bytes
  std::memcpy(data_ + end_, bytes.data(), bytes.size());
  end_ += static_cast<uint32_t>(bytes.size());
}

void InputBuffer::drop_memory() {
  if (memory_ != nullptr && capacity_ == BufferPool::kChunkSize) pool_.give(std::move(memory_));
  memory_.reset();
  data_ = nullptr;
  capacity_ = pos_ = end_ = 0;
}

uv_buf_t InputBuffer::free_space() {
  if (data_ == nullptr) {
    memory_ = pool_.take();
    data_ = memory_.get();
    capacity_ = BufferPool::kChunkSize;
    pos_ = end_ = 0;
  }
  return uv_buf_init(reinterpret_cast<char*>(data_ + end_), capacity_ - end_);
}

void InputBuffer::compact() {
  if (pos_ == 0) return;
  const uint32_t n = end_ - pos_;
  if (n > 0) std::memmove(data_, data_ + pos_, n);
  pos_ = 0;
  end_ = n;
}

bool InputBuffer::reserve_unread(std::size_t bytes, std::size_t limit) {
  if (bytes > limit || bytes >= (std::size_t{1} << 31)) return false;
  if (data_ == nullptr && bytes <= BufferPool::kChunkSize) {
    free_space();
    return true;
  }
  if (data_ != nullptr && pos_ + bytes <= capacity_) return true;
  compact();
  if (data_ != nullptr && bytes <= capacity_) return true;
  auto bigger = std::make_unique_for_overwrite<std::byte[]>(bytes);
  const uint32_t kept = end_;
  if (kept > 0) std::memcpy(bigger.get(), data_, kept);
  drop_memory();
  memory_ = std::move(bigger);
  data_ = memory_.get();
  capacity_ = static_cast<uint32_t>(bytes);
  end_ = kept;
  return true;
}

void InputBuffer::prepend(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  const uint32_t unread = end_ - pos_;
  reserve_unread(unread + bytes.size(), SIZE_MAX);
  compact();
  if (data_ == nullptr) free_space();
  std::memmove(data_ + bytes.size(), data_, unread);
  std::memcpy(data_, bytes.data(), bytes.size());
  pos_ = 0;
  end_ = unread + static_cast<uint32_t>(bytes.size());
}

void InputBuffer::release_if_empty() {
  if (pos_ != end_ || data_ == nullptr) return;
  drop_memory();
}

}  // namespace pgsidecar::proxy
