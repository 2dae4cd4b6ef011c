#include "proxy/pooling/parameters.h"

#include <array>
#include <strings.h>

namespace pgsidecar::proxy {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Reported by PostgreSQL 15 (GUC_REPORT) and settable by a client. The read-only ones
// (server_version, is_superuser, ...) are never restored.
constexpr std::array<std::string_view, 7> kTracked = {
    "client_encoding", "DateStyle", "TimeZone", "IntervalStyle", "application_name",
    "standard_conforming_strings", "default_transaction_read_only"};

constexpr std::array<std::string_view, 4> kProtocolOnly = {"user", "database", "replication", "options"};

}  // namespace

bool is_tracked_parameter(std::string_view name) {
  for (auto t : kTracked)
    if (iequals(t, name)) return true;
  return false;
}

bool is_protocol_startup_parameter(std::string_view name) {
  for (auto t : kProtocolOnly)
    if (iequals(t, name)) return true;
  return false;
}

std::size_t ParamMap::index_of(std::string_view name) const {
  const ParamList& list = entries();
  for (std::size_t i = 0; i < list.size(); ++i)
    if (iequals(list[i].first, name)) return i;
  return list.size();
}

const std::string* ParamMap::find(std::string_view name) const {
  const std::size_t i = index_of(name);
  return i < entries().size() ? &entries()[i].second : nullptr;
}

const ParamList& ParamMap::entries() const {
  static const ParamList kNone;
  return entries_ != nullptr ? *entries_ : kNone;
}

bool ParamMap::set(std::string_view name, std::string_view value) {
  const std::size_t i = index_of(name);
  if (i < entries().size() && entries()[i].second == value) return false;
  // Copy on write. use_count() 1 means no one else can reach the list, so no one can take
  // a new share meanwhile; owners on other threads (PoolLimits' copy of the settings a
  // server reported) can only drop theirs, which at worst costs an unneeded copy.
  if (entries_ == nullptr) {
    entries_ = std::make_shared<ParamList>();
  } else if (entries_.use_count() > 1) {
    entries_ = std::make_shared<ParamList>(*entries_);
  }
  if (i < entries_->size()) {
    (*entries_)[i].second.assign(value);
  } else {
    entries_->emplace_back(std::string(name), std::string(value));
  }
  return true;
}

void ParamSets::share(ParamMap& map) {
  if (map.entries_ == nullptr) return;
  for (const auto& known : sets_) {
    if (known != map.entries_ && *known != *map.entries_) continue;
    map.entries_ = known;
    return;
  }
  map.entries_->shrink_to_fit();
  if (sets_.size() == kMaxSets) sets_.erase(sets_.begin());  // the oldest goes
  sets_.push_back(map.entries_);
}

}  // namespace pgsidecar::proxy
