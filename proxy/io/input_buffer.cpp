#include "proxy/io/input_buffer.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace pgsidecar::proxy {

namespace {

bool is_pool_chunk(std::size_t size) {
  return size == BufferPool::kChunkSize || size == BufferPool::kSmallChunkSize;
}

// The smallest memory that holds `bytes`: a pool chunk when one is large enough.
std::size_t capacity_for(std::size_t bytes) {
  if (bytes <= BufferPool::kSmallChunkSize) return BufferPool::kSmallChunkSize;
  return std::max(bytes, BufferPool::kChunkSize);
}

}  // namespace

std::unique_ptr<std::byte[]> BufferPool::take(std::size_t size) {
  auto& list = free_list(size);
  if (list.empty()) return std::make_unique_for_overwrite<std::byte[]>(size);
  auto chunk = std::move(list.back());
  list.pop_back();
  return chunk;
}

void BufferPool::give(std::unique_ptr<std::byte[]> chunk, std::size_t size) {
  auto& list = free_list(size);
  if (list.size() < (size == kSmallChunkSize ? kMaxSmallFree : kMaxFree)) list.push_back(std::move(chunk));
}

uv_buf_t BufferPool::scratch() {
  if (scratch_ == nullptr) scratch_ = std::make_unique_for_overwrite<std::byte[]>(kChunkSize);
  return uv_buf_init(reinterpret_cast<char*>(scratch_.get()), kChunkSize);
}

InputBuffer::~InputBuffer() { drop_memory(); }

void InputBuffer::borrow(std::span<std::byte> scratch, std::size_t filled) {
  drop_memory();
  data_ = scratch.data();
  capacity_ = static_cast<uint32_t>(scratch.size());
  end_ = static_cast<uint32_t>(filled);
}

void InputBuffer::end_borrow() {
  if (!borrowed()) return;
  const std::size_t unread = unread_size();
  if (unread == 0) {
    drop_memory();
  } else {
    move_to(capacity_for(unread));
  }
}

void InputBuffer::drop_memory() {
  if (memory_ != nullptr && is_pool_chunk(capacity_)) pool_.give(std::move(memory_), capacity_);
  memory_.reset();
  data_ = nullptr;
  capacity_ = pos_ = end_ = 0;
}

void InputBuffer::move_to(std::size_t capacity) {
  auto memory = is_pool_chunk(capacity) ? pool_.take(capacity) : std::make_unique_for_overwrite<std::byte[]>(capacity);
  const uint32_t unread = end_ - pos_;
  if (unread > 0) std::memcpy(memory.get(), data_ + pos_, unread);
  drop_memory();
  memory_ = std::move(memory);
  data_ = memory_.get();
  capacity_ = static_cast<uint32_t>(capacity);
  end_ = unread;
}

uv_buf_t InputBuffer::free_space() {
  if (data_ == nullptr) move_to(BufferPool::kChunkSize);
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
  if (data_ != nullptr && pos_ + bytes <= capacity_) return true;
  if (data_ != nullptr && bytes <= capacity_) {
    compact();
    return true;
  }
  move_to(capacity_for(bytes));
  return true;
}

void InputBuffer::shrink() {
  const std::size_t unread = unread_size();
  // Strictly less: a chunk it would fill stops reading, though the request may need more.
  if (capacity_ == BufferPool::kChunkSize && unread > 0 && unread < BufferPool::kSmallChunkSize)
    move_to(BufferPool::kSmallChunkSize);
}

void InputBuffer::expand() {
  if (capacity_ == BufferPool::kSmallChunkSize) move_to(BufferPool::kChunkSize);
}

void InputBuffer::prepend(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  const uint32_t unread = end_ - pos_;
  reserve_unread(unread + bytes.size(), SIZE_MAX);
  compact();
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
