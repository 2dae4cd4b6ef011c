#include "proxy/pooling/server_statements.h"

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
  return h == 0 ? 1 : h;  // 0 means "none" in ServerStatements
}

uint64_t ServerStatements::find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? 0 : it->second;
}

void ServerStatements::set(std::string_view name, uint64_t fingerprint) {
  by_name_[std::string(name)] = fingerprint;
}

void ServerStatements::erase(std::string_view name) { by_name_.erase(std::string(name)); }

}  // namespace pgsidecar::proxy
