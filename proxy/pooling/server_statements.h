// The named prepared statements a server connection holds, by name, with the fingerprint
// of the Parse that made each: a client whose statement of that name has another
// fingerprint needs it re-Parsed here first.
#pragma once

#include "proxy/pooling/layer.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pgsidecar::proxy {

// Identifies the text and parameter types of a Parse: equal fingerprints, same statement.
uint64_t statement_fingerprint(std::string_view query, std::span<const std::byte> param_types_raw);

class ServerStatements {
 public:
  // The fingerprint prepared under `name` on this server, or 0 when none.
  uint64_t find(std::string_view name) const;
  void set(std::string_view name, uint64_t fingerprint);
  void erase(std::string_view name);
  void clear() { by_name_.clear(); }
  std::size_t size() const { return by_name_.size(); }

 private:
  std::unordered_map<std::string, uint64_t> by_name_;
};

}  // namespace pgsidecar::proxy
