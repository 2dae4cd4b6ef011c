// Protocol-level named prepared statements in transaction mode. A client's statements
// live on whichever server it last used; pgsidecar keeps each client's Parse messages
// (ClientStatements) and each server connection knows what it holds (ServerStatements),
// so a Bind or Describe that lands on a server lacking the statement is preceded by a
// re-Parse the client never sees.
#pragma once

#include "proxy/session/layer.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/pooling/server_statements.h"

namespace pgsidecar::proxy {

struct PreparedStatement {
  StatementRef statement;            // shared with the books of the servers that hold it
  bool sets_session_config = false;  // runs a set_config() that outlives its transaction
};

class ClientStatements {
 public:
  explicit ClientStatements(std::size_t limit) : limit_(limit) {}

  enum class AddResult { Added, Replaced, LimitReached };
  AddResult add(std::string_view name, std::string_view query, std::span<const std::byte> param_types_raw,
                int16_t param_count, bool sets_session_config = false);
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

// The statement name of `DEALLOCATE [PREPARE] name`, or "" when `sql` is not one
// (DEALLOCATE ALL is seen later, in its CommandComplete tag).
std::string deallocate_target(std::string_view sql);

}  // namespace pgsidecar::proxy
