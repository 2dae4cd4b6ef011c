#include "proxy/pooling/server_statements.h"

#include <algorithm>

#include "protocol/wire.h"

namespace pgsidecar::proxy {

uint64_t statement_fingerprint(std::string_view query, std::span<const std::byte> param_types_raw) {
  // FNV-1a over both parts, with a separator so ("ab","") and ("a","b") differ.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;
  };
  for (char c : query) mix(static_cast<unsigned char>(c));
  mix(0);
  for (std::byte b : param_types_raw) mix(static_cast<unsigned char>(b));
  return h;
}

StatementRef make_statement(std::string_view query, std::span<const std::byte> param_types_raw, int16_t param_count) {
  auto stmt = std::make_shared<StatementText>();
  stmt->query.assign(query);
  stmt->param_types.reserve(static_cast<std::size_t>(std::max<int16_t>(param_count, 0)));
  for (int16_t i = 0; i < param_count && static_cast<std::size_t>(i) * 4 + 4 <= param_types_raw.size(); ++i)
    stmt->param_types.push_back(static_cast<int32_t>(protocol::load_be32(param_types_raw.data() + i * 4)));
  stmt->fingerprint = statement_fingerprint(query, param_types_raw);
  return stmt;
}

const StatementText* ServerStatements::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second.statement.get();
}

bool ServerStatements::contains(std::string_view name) const { return by_name_.find(name) != by_name_.end(); }

bool ServerStatements::use(std::string_view name, const StatementText& statement) {
  auto it = by_name_.find(name);
  if (it == by_name_.end() || it->second.statement == nullptr || !it->second.statement->same_as(statement))
    return false;
  it->second.last_used = ++use_clock_;
  return true;
}

void ServerStatements::set(std::string_view name, StatementRef statement) {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) it = by_name_.emplace(std::string(name), Held{}).first;
  it->second = Held{std::move(statement), ++use_clock_};
}

void ServerStatements::erase(std::string_view name) {
  auto it = by_name_.find(name);
  if (it != by_name_.end()) by_name_.erase(it);
}

std::string_view ServerStatements::least_recently_used() const {
  const std::string* oldest = nullptr;
  uint64_t oldest_use = UINT64_MAX;
  for (const auto& [name, held] : by_name_) {
    if (held.last_used < oldest_use) {
      oldest_use = held.last_used;
      oldest = &name;
    }
  }
  return oldest != nullptr ? std::string_view(*oldest) : std::string_view();
}

}  // namespace pgsidecar::proxy
