// Requests pgsidecar answers without a server (docs/pooling.md, "Round trips saved"): how
// to find one whole at the head of a client's input, and the bytes PostgreSQL itself
// would send in reply. Pure: no session, no I/O.
#pragma once

#include "proxy/session/layer.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sql/classify.h"

namespace pgsidecar::proxy {

class ClientStatements;

// One request at the head of the input: a Query, or an extended-protocol exchange of the
// shape drivers use for a single statement, [Parse] Bind [Describe portal] Execute Sync,
// on the unnamed portal, with no parameters and text results.
struct LocalRequest {
  bool extended = false;
  std::string_view sql;     // the statement's text: in the input, or in the client's books
  std::size_t bytes = 0;    // the whole request, up to and including its Sync
  bool parse = false;       // extended: the messages it holds, each answered in turn
  bool describe = false;
};

enum class PeekLocal { Found, NeedMore, No };

// A request that may be answered here, whole in `in` (NeedMore: its start is there and
// it is short enough to wait for). `statements` resolves a Bind of a named statement.
PeekLocal peek_local_request(std::span<const std::byte> in, const ClientStatements& statements, LocalRequest& out);

// At most this many bytes of a request are looked at (and waited for) to answer it here.
inline constexpr std::size_t kLocalRequestMaxBytes = 4096;

// Statement texts longer than this are never answered here.
inline constexpr std::size_t kLocalSqlMaxBytes = 512;
// Whether `sql` is worth asking the classifier about: a first keyword that starts one of
// sql::LocalStatement's statements, or no statement at all; at most kLocalSqlMaxBytes.
// Cheap, on every request without a server.
bool may_be_local(std::string_view sql);
// SELECT 1, as connection pools send it to check a connection ("select 1;" too).
bool is_ping(std::string_view sql);

// What a statement answered here returns.
struct LocalReply {
  std::string_view command_tag;  // CommandComplete; empty for the empty query
  bool ping_row = false;         // SELECT 1's RowDescription and DataRow
  bool no_transaction_warning = false;  // WARNING 25P01 "there is no transaction in progress"
  char status = 'I';             // ReadyForQuery
  // ParameterStatus after the CommandComplete, in this order (reported settings changed).
  std::vector<std::pair<std::string, std::string>> parameter_status;
};

// The reply to `request`, message for message as PostgreSQL sends it. PostgreSQL's
// notices also carry the source file, line and routine (fields F, L, R), which name its
// own code; these are left out.
void append_local_reply(std::vector<std::byte>& out, const LocalRequest& request, const LocalReply& reply);

// The command tag of a statement whose reply is known; empty for the empty query.
std::string_view local_command_tag(sql::LocalStatement s);

}  // namespace pgsidecar::proxy
