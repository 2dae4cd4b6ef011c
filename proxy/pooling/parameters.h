// Settings as PostgreSQL reports them with ParameterStatus (client_encoding, DateStyle,
// ...): the values a server connection carries, and the values a client expects. Shared,
// copy-on-write lists keep thousands of idle clients with equal settings cheap.
#pragma once

#include "proxy/pooling/layer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgsidecar::proxy {

using ParamList = std::vector<std::pair<std::string, std::string>>;

// A setting that PostgreSQL reports and a client may change; case-insensitive.
bool is_tracked_parameter(std::string_view name);
// A startup parameter that is not a setting at all (user, database, replication, ...).
bool is_protocol_startup_parameter(std::string_view name);

// Ordered name -> value map with case-insensitive names (PostgreSQL's GUC names are).
// The entries are shared and copied on write: thousands of idle clients with the same
// settings hold one list between them (see ParamSets), not one each.
class ParamMap {
 public:
  const std::string* find(std::string_view name) const;
  // Returns true when the value changed.
  bool set(std::string_view name, std::string_view value);
  const ParamList& entries() const;
  // The list itself, for a holder that compares identities: a shared list is never changed
  // in place, so while it is held, the same pointer means the same settings.
  std::shared_ptr<const ParamList> shared_entries() const { return entries_; }
  bool empty() const { return entries_ == nullptr || entries_->empty(); }
  void clear() { entries_.reset(); }
  bool operator==(const ParamMap& other) const { return entries() == other.entries(); }

 private:
  friend class ParamSets;
  std::size_t index_of(std::string_view name) const;  // entries().size() when absent
  std::shared_ptr<ParamList> entries_;  // never changed in place while shared
};

// A worker's recently seen settings lists, so that equal maps share one copy.
class ParamSets {
 public:
  // Makes `map` share the list of an equal map seen before, or remembers its list.
  void share(ParamMap& map);

 private:
  static constexpr std::size_t kMaxSets = 16;  // a handful of distinct settings is typical
  std::vector<std::shared_ptr<ParamList>> sets_;  // the oldest first
};

}  // namespace pgsidecar::proxy
