// A connection's read buffer. Messages are framed in place and forwarded as slices of it,
// so bytes that a pending write still points at are never moved: compaction and growth
// happen only between writes. An empty buffer goes back to the worker's BufferPool, so an
// idle client holds no buffer memory.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace pgsidecar::proxy {

// Fixed-size chunks reused across connections of one worker: no malloc per read.
class BufferPool {
 public:
  static constexpr std::size_t kChunkSize = 16 * 1024;
  static constexpr std::size_t kMaxFree = 64;  // cap on cached chunks (1 MiB per worker)

  std::unique_ptr<std::byte[]> take();
  void give(std::unique_ptr<std::byte[]> chunk);
  // One chunk's worth of space to read into, valid until the next read on this worker.
  uv_buf_t scratch();

 private:
  std::vector<std::unique_ptr<std::byte[]>> free_;
  std::unique_ptr<std::byte[]> scratch_;
};

class InputBuffer {
 public:
  explicit InputBuffer(BufferPool& pool) : pool_(pool) {}
  InputBuffer(const InputBuffer&) = delete;
  InputBuffer& operator=(const InputBuffer&) = delete;
  ~InputBuffer();

  // Space for uv_read; len 0 when full (the caller stops reading until a compact()).
  uv_buf_t free_space();
  void commit(std::size_t n) { end_ += static_cast<uint32_t>(n); }
  // A connection that holds no memory reads into the pool's scratch space instead, and
  // keeps what it read with this: an end of file or a reset then costs no chunk.
  bool holds_memory() const { return data_ != nullptr; }
  void append(std::span<const std::byte> bytes);

  std::span<const std::byte> unread() const { return {data_ + pos_, end_ - pos_}; }
  const std::byte* read_pos() const { return data_ + pos_; }
  std::size_t unread_size() const { return end_ - pos_; }
  void consume(std::size_t n) { pos_ += static_cast<uint32_t>(n); }

  // Moves unread bytes to the front; only when no write points into the buffer.
  void compact();
  // Makes room for `bytes` unread bytes in one piece (a message that must be whole);
  // only when no write points into the buffer. Returns false past `limit`.
  bool reserve_unread(std::size_t bytes, std::size_t limit);
  std::size_t capacity() const { return capacity_; }
  bool full() const { return end_ == capacity_ && data_ != nullptr; }

  // Puts `bytes` back in front of the unread bytes (a request replayed on another server);
  // only when no write points into the buffer.
  void prepend(std::span<const std::byte> bytes);

  // Returns memory to the pool when nothing is buffered.
  void release_if_empty();

 private:
  // Returns the memory: a pool chunk to the pool, a larger block to the allocator.
  void drop_memory();

  // Kept small: every client has one, idle ones too.
  BufferPool& pool_;
  std::byte* data_ = nullptr;
  std::unique_ptr<std::byte[]> memory_;  // owns data_: a pool chunk, or a larger block
                                         // when a whole message needed more
  uint32_t capacity_ = 0;  // kChunkSize for a pool chunk; messages are < 2^31 bytes
  uint32_t pos_ = 0;       // first unread byte
  uint32_t end_ = 0;       // one past the last byte read
};

}  // namespace pgsidecar::proxy
