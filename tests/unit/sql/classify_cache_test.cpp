#include <doctest/doctest.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <string>

#include "sql/classify_cache.h"

using pgsidecar::sql::Classification;
using pgsidecar::sql::ClassificationCache;
using pgsidecar::sql::classify_sql;
using pgsidecar::sql::StatementKind;

// Counts this thread's allocations, to hold the cache to "a hit does not allocate". Every
// unaligned form is replaced, so each allocation and its release meet in malloc/free
// (sanitizers check that new and delete pair up).
namespace {
thread_local std::size_t allocations = 0;

void* counted_malloc(std::size_t size) noexcept {
  ++allocations;
  return std::malloc(size == 0 ? 1 : size);
}

void* counted_or_throw(std::size_t size) {
  if (void* p = counted_malloc(size)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t size) { return counted_or_throw(size); }
void* operator new[](std::size_t size) { return counted_or_throw(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return counted_malloc(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return counted_malloc(size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

std::string numbered(int i) { return "select * from t where id = " + std::to_string(i); }

}  // namespace

TEST_CASE("a hit returns the stored classification without parsing again") {
  ClassificationCache cache(16);
  const Classification& first = cache.classify("select * from t for update");
  CHECK(first.kind == StatementKind::Write);
  CHECK(first.reason == "SELECT ... FOR UPDATE");
  const Classification& again = cache.classify("select * from t for update");
  CHECK(&again == &first);
  CHECK(again == classify_sql("select * from t for update"));
  CHECK(cache.hits() == 1);
  CHECK(cache.misses() == 1);
  CHECK(cache.size() == 1);
}

TEST_CASE("the key is the exact text") {
  ClassificationCache cache(16);
  CHECK(cache.classify("select * from t").kind == StatementKind::Read);
  CHECK(cache.classify("select * from t for share").kind == StatementKind::Write);
  CHECK(cache.classify("select * from t ").kind == StatementKind::Read);
  CHECK(cache.classify("SELECT * FROM t").kind == StatementKind::Read);
  CHECK(cache.size() == 4);
  CHECK(cache.hits() == 0);
  // A text that is a prefix of a cached one is its own entry.
  CHECK(cache.classify("select * from t for").kind == StatementKind::Write);  // parse error
  CHECK(cache.classify("select * from t for share").kind == StatementKind::Write);
  CHECK(cache.hits() == 1);
}

TEST_CASE("a hit does not allocate") {
  ClassificationCache cache(16);
  const std::string sql = numbered(123456789);  // longer than any small-string buffer
  cache.classify(sql);
  const std::size_t before = allocations;
  const Classification& hit = cache.classify(sql);
  const std::size_t during = allocations - before;
  CHECK(during == 0);
  CHECK(hit.kind == StatementKind::Read);
  CHECK(cache.hits() == 1);
}

TEST_CASE("the number of entries never passes the capacity") {
  ClassificationCache cache(8);
  for (int i = 0; i < 100; ++i) {
    const std::string sql = i % 3 == 0 ? numbered(i) + " for update" : numbered(i);
    const Classification& got = cache.classify(sql);
    CHECK(got.kind == (i % 3 == 0 ? StatementKind::Write : StatementKind::Read));
    CHECK(cache.size() <= 8);
  }
  CHECK(cache.size() == 8);
  CHECK(cache.misses() == 100);
  // The most recent texts are there; evicted ones come back as correct misses.
  CHECK(cache.classify(numbered(98)).kind == StatementKind::Read);
  CHECK(cache.hits() == 1);
  CHECK(cache.classify(numbered(0) + " for update").kind == StatementKind::Write);
  CHECK(cache.misses() == 101);
}

TEST_CASE("an entry hit since the hand last passed survives the next eviction") {
  ClassificationCache cache(4);
  cache.classify(numbered(1));
  cache.classify(numbered(2));
  cache.classify(numbered(3));
  cache.classify(numbered(4));
  cache.classify(numbered(1));  // hit: second chance
  cache.classify(numbered(5));  // evicts 2, the first entry not hit
  CHECK(cache.hits() == 1);
  cache.classify(numbered(1));
  CHECK(cache.hits() == 2);
  cache.classify(numbered(2));
  CHECK(cache.hits() == 2);  // 2 was evicted: a miss
  CHECK(cache.size() == 4);
}

TEST_CASE("texts longer than the limit are classified but not kept") {
  ClassificationCache cache(8, 32);
  const std::string long_read = "select 1 where 'x' = 'a long enough string'";
  const std::string long_write = long_read + " for update";
  CHECK(cache.classify(long_read).kind == StatementKind::Read);
  CHECK(cache.classify(long_write).kind == StatementKind::Write);
  CHECK(cache.classify(long_read).kind == StatementKind::Read);
  CHECK(cache.size() == 0);
  CHECK(cache.misses() == 3);
  CHECK(cache.classify("select 1").kind == StatementKind::Read);
  CHECK(cache.size() == 1);
}

TEST_CASE("a cache of capacity zero still classifies") {
  ClassificationCache cache(0);
  CHECK(cache.classify("select 1").kind == StatementKind::Read);
  CHECK(cache.classify("delete from t").kind == StatementKind::Write);
  CHECK(cache.classify("select 1").kind == StatementKind::Read);
  CHECK(cache.size() == 0);
  CHECK(cache.hits() == 0);
}

TEST_CASE("bad input is cached like any other") {
  ClassificationCache cache(4);
  const std::string with_nul("select 1\0 delete", 16);
  CHECK(cache.classify(with_nul).kind == StatementKind::Write);
  CHECK(cache.classify("select 1").kind == StatementKind::Read);  // not confused with it
  CHECK(cache.classify(with_nul).reason == "NUL byte in query: treated as write");
  CHECK(cache.classify("selec 1").reason == "parse error: treated as write");
  CHECK(cache.classify("").reason == "empty query");
  CHECK(cache.hits() == 1);
}
