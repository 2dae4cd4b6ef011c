// The named prepared statements a server connection holds, by name, each with the text
// and parameter types of the Parse that made it: a client whose statement of that name
// differs needs it re-Parsed here first. A statement is identified by its text and
// types, never by a hash alone (two clients' statements must not pass for each other).
#pragma once

#include "proxy/pooling/layer.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pgsidecar::proxy {

// Hashes the text and parameter types of a Parse: a quick first check of identity.
uint64_t statement_fingerprint(std::string_view query, std::span<const std::byte> param_types_raw);

// What a Parse prepares. Shared, immutable: the client's books and those of every
// server holding the statement point at one copy.
struct StatementText {
  std::string query;
  std::vector<int32_t> param_types;
  uint64_t fingerprint = 0;  // statement_fingerprint(query, the raw types)

  // The same statement: fingerprints first, then the text and the types.
  bool same_as(const StatementText& other) const {
    return this == &other ||
           (fingerprint == other.fingerprint && param_types == other.param_types && query == other.query);
  }
};
using StatementRef = std::shared_ptr<const StatementText>;

// A Parse's statement: its text and the first `param_count` types of `param_types_raw`
// (Int32 each, as on the wire; types the bytes do not cover are left out).
StatementRef make_statement(std::string_view query, std::span<const std::byte> param_types_raw, int16_t param_count);

// Looks a std::string key up by a std::string_view without making a string.
struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class ServerStatements {
 public:
  // The statement prepared under `name` on this server; nullptr when none, or when what
  // is there is not known (set_unknown).
  const StatementText* find(std::string_view name) const;
  // Something is prepared under `name` here, known or not: a Parse of it needs a Close first.
  bool contains(std::string_view name) const;
  // True when `name` here is `statement`.
  bool holds(std::string_view name, const StatementText& statement) const {
    const StatementText* have = find(name);
    return have != nullptr && have->same_as(statement);
  }
  // holds(), and when true the statement counts as just used (least recently used go first).
  bool use(std::string_view name, const StatementText& statement);
  void set(std::string_view name, StatementRef statement);
  // A statement of that name is still here, but which one is not known (a Close of it was
  // skipped after an error): never held to be anyone's, always closed before a Parse.
  void set_unknown(std::string_view name) { set(name, nullptr); }
  void erase(std::string_view name);
  void clear() { by_name_.clear(); }
  std::size_t size() const { return by_name_.size(); }
  // The name of the statement used least recently; "" when none is kept. A scan: called
  // only when the count is over its bound, between transactions.
  std::string_view least_recently_used() const;

 private:
  struct Held {
    StatementRef statement;
    uint64_t last_used = 0;  // use_clock_ at its Parse or its last use
  };
  std::unordered_map<std::string, Held, NameHash, std::equal_to<>> by_name_;
  uint64_t use_clock_ = 0;
};

}  // namespace pgsidecar::proxy
