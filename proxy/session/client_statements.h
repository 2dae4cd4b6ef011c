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

// What a statement's text means for routing its transaction, known once it has been
// classified (sql::quick_classify, then the classifier): a statement is classified once,
// not at every Bind.
enum class TextRoute : uint8_t {
  Unknown,                // not classified yet
  Read,
  Write,
  ReadIfSessionReadOnly,  // a plain BEGIN and the like: read only under default_transaction_read_only
};

struct PreparedStatement {
  StatementRef statement;            // shared with the books of the servers that hold it
  bool sets_session_config = false;  // runs a set_config() that outlives its transaction
  TextRoute route = TextRoute::Unknown;
};

class ClientStatements {
 public:
  explicit ClientStatements(std::size_t limit, std::size_t byte_limit = SIZE_MAX)
      : limit_(limit), byte_limit_(byte_limit) {}

  enum class AddResult { Added, Replaced, LimitReached, BytesLimitReached };
  AddResult add(std::string_view name, std::string_view query, std::span<const std::byte> param_types_raw,
                int16_t param_count, bool sets_session_config = false, TextRoute route = TextRoute::Unknown);
  const PreparedStatement* find(std::string_view name) const;
  PreparedStatement* find(std::string_view name);
  void erase(std::string_view name);
  void clear() {
    by_name_.reset();
    bytes_ = 0;
  }
  std::size_t size() const { return by_name_ != nullptr ? by_name_->size() : 0; }
  std::size_t limit() const { return limit_; }
  // Text and name bytes of the statements kept, and their bound (max_prepared_bytes_per_client).
  std::size_t bytes() const { return bytes_; }
  std::size_t byte_limit() const { return byte_limit_; }
  // What the statements would take with `query` under `name` (replacing one of that name).
  std::size_t bytes_with(std::string_view name, std::string_view query) const;

 private:
  static std::size_t cost(std::string_view name, std::string_view query) { return name.size() + query.size(); }

  std::size_t limit_;
  std::size_t byte_limit_;
  std::size_t bytes_ = 0;
  // Made at the first Parse: most clients never name a statement, and an idle client
  // should cost little memory.
  std::unique_ptr<std::unordered_map<std::string, PreparedStatement>> by_name_;
};

// The statement name of `DEALLOCATE [PREPARE] name`, or "" when `sql` is not one
// (DEALLOCATE ALL is seen later, in its CommandComplete tag).
std::string deallocate_target(std::string_view sql);

}  // namespace pgsidecar::proxy
