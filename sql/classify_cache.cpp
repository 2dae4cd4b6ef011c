#include "sql/classify_cache.h"

#include <utility>

namespace pgsidecar::sql {

ClassificationCache::ClassificationCache(std::size_t capacity, std::size_t max_sql_bytes)
    : capacity_(capacity), max_sql_bytes_(max_sql_bytes) {
  entries_.reserve(capacity_);
  index_.reserve(capacity_);
}

const Classification& ClassificationCache::classify(std::string_view sql) {
  if (auto it = index_.find(sql); it != index_.end()) {
    ++hits_;
    Entry& entry = entries_[it->second];
    entry.referenced = true;
    return entry.result;
  }
  ++misses_;
  Classification result = classify_sql(sql);
  if (capacity_ == 0 || sql.size() > max_sql_bytes_) {
    uncached_ = std::move(result);
    return uncached_;
  }
  const std::size_t slot = claim_slot();
  Entry& entry = entries_[slot];
  entry.sql.assign(sql);
  entry.result = std::move(result);
  entry.referenced = false;  // earns its second chance on the first hit
  index_.emplace(std::string_view(entry.sql), slot);
  return entry.result;
}

std::size_t ClassificationCache::claim_slot() {
  if (entries_.size() < capacity_) {
    entries_.emplace_back();  // within the reserved capacity: no element moves
    return entries_.size() - 1;
  }
  // At most two sweeps: the first clears every referenced bit it passes.
  for (;;) {
    Entry& entry = entries_[hand_];
    const std::size_t slot = hand_;
    hand_ = (hand_ + 1) % capacity_;
    if (entry.referenced) {
      entry.referenced = false;
      continue;
    }
    index_.erase(std::string_view(entry.sql));  // before the text its key views changes
    return slot;
  }
}

}  // namespace pgsidecar::sql
