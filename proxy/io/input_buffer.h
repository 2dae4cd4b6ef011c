// A connection's read buffer. Messages are framed in place and forwarded as slices of it,
// so bytes that a pending write still points at are never moved: compaction and growth
// happen only between writes. An empty buffer goes back to the worker's BufferPool, so an
// idle client holds no buffer memory, and a client queued for a server holds a small chunk.
#pragma once

#include "proxy/io/layer.h"

#include <uv.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace pgsidecar::proxy {

// Chunks of two fixed sizes reused across connections of one worker: no malloc per read.
// Full chunks are read into; small ones hold the request of a client that waits for a
// server, which at a full pool is most clients (a request is rarely over 2 KB).
class BufferPool {
 public:
  static constexpr std::size_t kChunkSize = 16 * 1024;
  static constexpr std::size_t kSmallChunkSize = 2 * 1024;
  static constexpr std::size_t kMaxFree = 64;        // cached full chunks: 1 MiB per worker
  static constexpr std::size_t kMaxSmallFree = 512;  // cached small chunks: 1 MiB per worker

  // `size` is kChunkSize or kSmallChunkSize.
  std::unique_ptr<std::byte[]> take(std::size_t size);
  void give(std::unique_ptr<std::byte[]> chunk, std::size_t size);
  // One chunk's worth of space to read into, valid until the next read on this worker.
  uv_buf_t scratch();

 private:
  std::vector<std::unique_ptr<std::byte[]>>& free_list(std::size_t size) {
    return size == kSmallChunkSize ? small_free_ : free_;
  }

  std::vector<std::unique_ptr<std::byte[]>> free_;
  std::vector<std::unique_ptr<std::byte[]>> small_free_;
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
  // A connection that holds no memory reads into the pool's scratch space instead and
  // works on the bytes there: an end of file or a reset then costs no chunk, and a
  // request forwarded at once is never copied. end_borrow() keeps whatever is left (in a
  // chunk of its own) before the scratch space is read into again.
  bool holds_memory() const { return data_ != nullptr; }
  void borrow(std::span<std::byte> scratch, std::size_t filled);
  bool borrowed() const { return data_ != nullptr && memory_ == nullptr; }
  void end_borrow();

  std::span<const std::byte> unread() const { return {data_ + pos_, end_ - pos_}; }
  const std::byte* read_pos() const { return data_ + pos_; }
  std::size_t unread_size() const { return end_ - pos_; }
  void consume(std::size_t n) { pos_ += static_cast<uint32_t>(n); }
  // The rest of a message already decided on (`remaining` bytes still to come): consumes
  // what of it is here, counts it off `remaining`, and returns it. The bytes stay in the
  // buffer until the next compact(), so a pending write may point at them.
  std::span<const std::byte> take_rest(std::size_t& remaining) {
    const std::size_t n = std::min(remaining, unread().size());
    const std::span<const std::byte> part(read_pos(), n);
    consume(n);
    remaining -= n;
    return part;
  }

  // Moves unread bytes to the front; only when no write points into the buffer.
  void compact();
  // Makes room for `bytes` unread bytes in one piece (a message that must be whole);
  // only when no write points into the buffer. Returns false past `limit`.
  bool reserve_unread(std::size_t bytes, std::size_t limit);
  std::size_t capacity() const { return capacity_; }
  bool full() const { return end_ == capacity_ && data_ != nullptr; }

  // Moves the unread bytes of a full chunk into a small one when they leave room there: a
  // client that waits for a server keeps its request in 2 KB instead of 16. Only when no
  // write points into the buffer.
  void shrink();
  // Moves the unread bytes of a small chunk into a full one, so that reads are large again
  // (a client that has a server may stream COPY data). Only when no write points into it.
  void expand();

  // Puts `bytes` back in front of the unread bytes (a request replayed on another server);
  // only when no write points into the buffer.
  void prepend(std::span<const std::byte> bytes);

  // Returns memory to the pool when nothing is buffered.
  void release_if_empty();

 private:
  // Returns the memory: a pool chunk to the pool, a larger block to the allocator.
  void drop_memory();
  // Holds `capacity` bytes (a pool chunk size or more) with the unread bytes at the front.
  void move_to(std::size_t capacity);

  // Kept small: every client has one, idle ones too.
  BufferPool& pool_;
  std::byte* data_ = nullptr;
  std::unique_ptr<std::byte[]> memory_;  // owns data_: a pool chunk, or a larger block
                                         // when a whole message needed more; nullptr
                                         // while data_ is borrowed scratch space
  uint32_t capacity_ = 0;  // a pool chunk size, or more; messages are < 2^31 bytes
  uint32_t pos_ = 0;       // first unread byte
  uint32_t end_ = 0;       // one past the last byte read
};

}  // namespace pgsidecar::proxy
