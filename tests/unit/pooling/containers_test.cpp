// The small building blocks idle clients and the hot path rely on: RingQueue (FIFO that
// keeps its capacity), ParamMap's shared copy-on-write lists, and InputBuffer appends from
// the worker's scratch space.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "proxy/io/input_buffer.h"
#include "proxy/io/ring_queue.h"
#include "proxy/pooling/parameters.h"

using namespace pgsidecar::proxy;

TEST_CASE("RingQueue is FIFO across wrap-around and growth") {
  RingQueue<std::string> q;
  int next_in = 0, next_out = 0;
  // Fill and drain unevenly so the head wraps many times and growth happens mid-wrap.
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < round % 7 + 1; ++i) q.push_back("item " + std::to_string(next_in++));
    for (int i = 0; i < round % 5 + 1 && !q.empty(); ++i) {
      CHECK(q.front() == "item " + std::to_string(next_out++));
      q.pop_front();
    }
    CHECK(q.size() == static_cast<std::size_t>(next_in - next_out));
  }
  while (!q.empty()) {
    CHECK(q.front() == "item " + std::to_string(next_out++));
    q.pop_front();
  }
  CHECK(next_out == next_in);
}

TEST_CASE("RingQueue::erase_first removes one match and keeps the order") {
  RingQueue<int> q;
  for (int i = 0; i < 6; ++i) q.push_back(i);
  q.pop_front();
  q.pop_front();  // the head is no longer at slot 0
  for (int i = 6; i < 10; ++i) q.push_back(i);  // 2..9, wrapped
  CHECK(q.erase_first([](int v) { return v % 2 == 1; }));  // removes 3 only
  CHECK_FALSE(q.erase_first([](int v) { return v > 100; }));
  std::string seen;
  while (!q.empty()) {
    seen += std::to_string(q.front());
    q.pop_front();
  }
  CHECK(seen == "2456789");
}

TEST_CASE("ParamMap lists are shared between equal maps and copied on write") {
  ParamSets sets;
  ParamMap a, b;
  a.set("client_encoding", "UTF8");
  a.set("TimeZone", "UTC");
  b.set("client_encoding", "UTF8");
  b.set("TimeZone", "UTC");
  sets.share(a);
  sets.share(b);
  CHECK(&a.entries() == &b.entries());  // one list for both
  CHECK_FALSE(b.set("timezone", "UTC"));  // same value, case-insensitive name: no change
  CHECK(&a.entries() == &b.entries());
  CHECK(b.set("TimeZone", "Europe/Paris"));
  CHECK(&a.entries() != &b.entries());  // b has its own copy now
  CHECK(*a.find("TimeZone") == "UTC");
  CHECK(*b.find("timezone") == "Europe/Paris");
  ParamMap c = a;  // copies share too
  CHECK(c.set("application_name", "x"));
  CHECK(a.find("application_name") == nullptr);
  CHECK(a == a);
  CHECK_FALSE(a == c);
}

namespace {

// What a client's read does without a buffer of its own: read into the pool's scratch
// space, consume `consumed` bytes there, keep the rest.
void read_through_scratch(BufferPool& pool, InputBuffer& in, const std::string& bytes, std::size_t consumed) {
  uv_buf_t scratch = pool.scratch();
  REQUIRE(scratch.len == BufferPool::kChunkSize);
  REQUIRE_FALSE(in.holds_memory());
  std::memcpy(scratch.base, bytes.data(), bytes.size());
  in.borrow({reinterpret_cast<std::byte*>(scratch.base), scratch.len}, bytes.size());
  CHECK(in.borrowed());
  REQUIRE(in.unread_size() == bytes.size());
  CHECK(in.read_pos() == reinterpret_cast<const std::byte*>(scratch.base));  // not copied
  in.consume(consumed);
  in.end_borrow();
  CHECK_FALSE(in.borrowed());
  std::memset(scratch.base, 'z', bytes.size());  // the next read on the worker
}

}  // namespace

TEST_CASE("InputBuffer works on a read in the scratch space and keeps only what is left") {
  BufferPool pool;
  InputBuffer in(pool);
  const std::string query("Q\0\0\0\x0dSELECT 1", 14);

  // All of it consumed (forwarded at once): nothing is kept, no memory taken.
  read_through_scratch(pool, in, query, query.size());
  CHECK_FALSE(in.holds_memory());

  // A part left (a request waiting for a server): kept in a small chunk of its own.
  read_through_scratch(pool, in, query, 1);
  REQUIRE(in.holds_memory());
  CHECK(in.capacity() == BufferPool::kSmallChunkSize);
  REQUIRE(in.unread_size() == query.size() - 1);
  CHECK(std::memcmp(in.read_pos(), query.data() + 1, query.size() - 1) == 0);
  in.consume(in.unread_size());
  in.release_if_empty();
  CHECK_FALSE(in.holds_memory());
}

TEST_CASE("InputBuffer keeps a small request in a small chunk and reads into a full one") {
  BufferPool pool;
  InputBuffer in(pool);
  const std::string query("Q\0\0\0\x0dSELECT 1", 14);

  read_through_scratch(pool, in, "x" + query, 1);
  CHECK(in.capacity() == BufferPool::kSmallChunkSize);
  // A client with a server reads into a full chunk; the unread bytes move along.
  in.expand();
  REQUIRE(in.capacity() == BufferPool::kChunkSize);
  REQUIRE(in.unread_size() == query.size());
  CHECK(std::memcmp(in.read_pos(), query.data(), query.size()) == 0);
  // Queued for a server again: back to a small chunk, bytes intact.
  in.consume(1);
  in.shrink();
  REQUIRE(in.capacity() == BufferPool::kSmallChunkSize);
  REQUIRE(in.unread_size() == query.size() - 1);
  CHECK(std::memcmp(in.read_pos(), query.data() + 1, query.size() - 1) == 0);

  // More than a small chunk holds cannot shrink.
  REQUIRE(in.reserve_unread(BufferPool::kSmallChunkSize + 1, SIZE_MAX));
  CHECK(in.capacity() == BufferPool::kChunkSize);
  CHECK(std::memcmp(in.read_pos(), query.data() + 1, query.size() - 1) == 0);
  uv_buf_t room = in.free_space();
  REQUIRE(room.len >= BufferPool::kSmallChunkSize);
  std::memset(room.base, 'y', BufferPool::kSmallChunkSize);
  in.commit(BufferPool::kSmallChunkSize);
  in.shrink();
  CHECK(in.capacity() == BufferPool::kChunkSize);
  CHECK(in.unread_size() == query.size() - 1 + BufferPool::kSmallChunkSize);

  // A whole message larger than a chunk gets a block of its own.
  in.consume(in.unread_size());
  in.release_if_empty();
  CHECK_FALSE(in.holds_memory());
  read_through_scratch(pool, in, query, 0);
  REQUIRE(in.reserve_unread(BufferPool::kChunkSize + 100, SIZE_MAX));
  CHECK(in.capacity() == BufferPool::kChunkSize + 100);
  CHECK(std::memcmp(in.read_pos(), query.data(), query.size()) == 0);
  CHECK_FALSE(in.reserve_unread(BufferPool::kChunkSize + 200, BufferPool::kChunkSize + 150));
}

TEST_CASE("BufferPool reuses chunks of each size") {
  BufferPool pool;
  auto small = pool.take(BufferPool::kSmallChunkSize);
  auto full = pool.take(BufferPool::kChunkSize);
  std::byte* small_ptr = small.get();
  std::byte* full_ptr = full.get();
  pool.give(std::move(small), BufferPool::kSmallChunkSize);
  pool.give(std::move(full), BufferPool::kChunkSize);
  CHECK(pool.take(BufferPool::kChunkSize).get() == full_ptr);
  CHECK(pool.take(BufferPool::kSmallChunkSize).get() == small_ptr);
}
