// Protocol-level named prepared statements in transaction mode. A client's statements
// live on whichever server it last used; pgsidecar keeps each client's Parse messages
// (ClientStatements) and what each server has prepared (ServerStatements), so a Bind or
// Describe that lands on a server lacking the statement is preceded by a re-Parse the
// client never sees.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pgsidecar::proxy {

// Identifies the text and parameter types of a Parse: equal fingerprints, same statement.
uint64_t statement_fingerprint(std::string_view query, std::span<const std::byte> param_types_raw);

struct PreparedStatement {
  std::string query;
  std::vector<int32_t> param_types;
  uint64_t fingerprint = 0;
};

class ClientStatements {
 public:
  explicit ClientStatements(std::size_t limit) : limit_(limit) {}

  enum class AddResult { Added, Replaced, LimitReached };
  AddResult add(std::string_view name, std::string_view query, std::span<const std::byte> param_types_raw,
                int16_t param_count);
  const PreparedStatement* find(std::string_view name) const;
  void erase(std::string_view name);
  void clear() { by_name_.reset(); }
  std::size_t size() const { return by_name_ != nullptr ? by_name_->size() : 0; }
  std::size_t limit() const { return limit_; }

 private:
  std::size_t limit_;
  // Made at the first Parse: most clients never name a statement, and an idle client
  // should cost little memory.
  std::unique_ptr<std::unordered_map<std::string, PreparedStatement>> by_name_;
};

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

// The statement name of `DEALLOCATE [PREPARE] name`, or "" when `sql` is not one
// (DEALLOCATE ALL is seen later, in its CommandComplete tag).
std::string deallocate_target(std::string_view sql);

}  // namespace pgsidecar::proxy
