// A bounded cache of classify_sql results: applications send the same statement texts
// over and over, and a hit costs a hash and a compare instead of a parse.
#pragma once

#include "sql/layer.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sql/classify.h"

namespace pgsidecar::sql {

// Keyed by the exact text (hash, then a full compare). CLOCK eviction. One per worker:
// not thread-safe.
class ClassificationCache {
 public:
  // Texts longer than max_sql_bytes are classified but not kept: they are usually
  // one-off bulk statements, and keeping them would make the bound on entries
  // meaningless as a bound on memory.
  static constexpr std::size_t kDefaultMaxSqlBytes = 16 * 1024;

  explicit ClassificationCache(std::size_t capacity = 4096,
                               std::size_t max_sql_bytes = kDefaultMaxSqlBytes);
  ClassificationCache(const ClassificationCache&) = delete;  // index_ points into entries_
  ClassificationCache& operator=(const ClassificationCache&) = delete;

  // The reference is valid until the next classify() call. A hit does not allocate.
  const Classification& classify(std::string_view sql);

  std::size_t size() const { return entries_.size(); }
  std::size_t capacity() const { return capacity_; }
  std::size_t hits() const { return hits_; }
  std::size_t misses() const { return misses_; }

 private:
  struct Entry {
    std::string sql;  // index_ keys are views of this text
    Classification result;
    bool referenced = false;  // CLOCK's second-chance bit, set on every hit
  };

  std::size_t claim_slot();  // a free entry, or the CLOCK victim with its key removed

  std::size_t capacity_;
  std::size_t max_sql_bytes_;
  std::vector<Entry> entries_;  // reserved to capacity_ up front: never reallocates
  std::unordered_map<std::string_view, std::size_t> index_;  // text -> entries_ slot
  std::size_t hand_ = 0;
  Classification uncached_;  // result for texts too long to keep, or capacity 0
  std::size_t hits_ = 0;
  std::size_t misses_ = 0;
};

}  // namespace pgsidecar::sql
