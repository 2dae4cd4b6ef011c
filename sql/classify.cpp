#include "sql/classify.h"

#include <pg_query.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "sql/classify_functions.h"
#include "sql/parse_tree.h"
#include "sql/classify_quick.h"

namespace pgsidecar::sql {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;
using namespace tree;

// Calls f(def) for each DefElem in the option list under `list_key`, in order.
template <typename F>
void for_each_def_elem(object holder, std::string_view list_key, F&& f) {
  array options;
  if (!array_field(holder, list_key, options)) return;
  for (element option : options) {
    std::string_view type;
    object def;
    if (unwrap(option, type, def) && type == "DefElem") f(def);
  }
}

// The last DefElem named `name` in the option list under `list_key` (later options
// override earlier ones, as on the server).
struct Option {
  bool given = false;
  bool has_arg = false;  // EXPLAIN (ANALYZE) has none: it means true
  element arg;
};

Option last_option(object holder, std::string_view list_key, std::string_view name) {
  Option found;
  for_each_def_elem(holder, list_key, [&](object def) {
    if (string_field(def, "defname") != name) return;
    found.given = true;
    found.has_arg = def["arg"].get(found.arg) == simdjson::SUCCESS;
  });
  return found;
}

// Transaction modes from BEGIN, START TRANSACTION or SET TRANSACTION. READ ONLY arrives
// as transaction_read_only = 1, READ WRITE as 0. The server applies the modes one by one,
// so the last READ ONLY/READ WRITE decides the mode, but a hot standby refuses the
// statement if any mode it applies is READ WRITE or SERIALIZABLE ("cannot set
// transaction read-write mode during recovery", "cannot use serializable mode in a hot
// standby"), even when a later mode overrides it.
struct TransactionModes {
  std::optional<bool> read_only;
  bool any_read_write = false;
  bool any_serializable = false;
};

TransactionModes transaction_modes(object holder, std::string_view list_key) {
  TransactionModes modes;
  for_each_def_elem(holder, list_key, [&](object def) {
    element arg;
    if (def["arg"].get(arg) != simdjson::SUCCESS) return;
    const std::string_view name = string_field(def, "defname");
    if (name == "transaction_read_only") {
      modes.read_only = node_as_bool(arg);
      if (modes.read_only == false) modes.any_read_write = true;
    } else if (name == "transaction_isolation" && node_as_string(arg) == "serializable") {
      modes.any_serializable = true;
    }
  });
  return modes;
}

// Why a hot standby refuses these modes; empty when it accepts them.
std::string_view needs_primary(const TransactionModes& modes) {
  if (modes.any_read_write) return " READ WRITE";
  if (modes.any_serializable) return " ISOLATION LEVEL SERIALIZABLE";
  return {};
}

std::string joined(const std::array<std::string_view, 3>& parts, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += '.';
    out += parts[i];
  }
  return out;
}

// --- SELECT: look everywhere for what makes it write ------------------------------------

struct Verdict {
  StatementKind kind = StatementKind::Read;
  std::string reason;
};

Verdict write(std::string reason) { return {StatementKind::Write, std::move(reason)}; }

class SelectScan {
 public:
  // True when something in the tree writes; reason() says what. The recursion is as
  // deep as the JSON, which simdjson caps (1024 levels; deeper is a parse failure).
  bool find_write(object o) {
    for (auto field : o) {
      if (check(field.key, field.value) || find_write(field.value)) return true;
    }
    return false;
  }

  bool find_write(element e) {
    object o;
    array a;
    if (e.get(o) == simdjson::SUCCESS) {
      return find_write(o);
    } else if (e.get(a) == simdjson::SUCCESS) {
      for (element item : a) {
        if (find_write(item)) return true;
      }
    }
    return false;
  }

  std::string& reason() { return reason_; }

 private:
  bool check(std::string_view key, element value) {
    if (key.empty()) return false;
    switch (key.front()) {
      case 'F': return key == "FuncCall" && check_function(value);
      case 'L': return key == "LockingClause" && found(lock_reason(value));
      case 'i': return key == "intoClause" && found("SELECT INTO");
      case 'I': return key == "InsertStmt" && found("WITH ... INSERT");
      case 'U': return key == "UpdateStmt" && found("WITH ... UPDATE");
      case 'D': return key == "DeleteStmt" && found("WITH ... DELETE");
      case 'M': return key == "MergeStmt" && found("WITH ... MERGE");
      case 'A': return key == "A_Expr" && check_operator(value);
      default: return false;
    }
  }

  bool found(std::string reason) {
    reason_ = std::move(reason);
    return true;
  }

  static std::string lock_reason(element clause) {
    object o;
    if (clause.get(o) != simdjson::SUCCESS) return "SELECT ... FOR UPDATE";
    const std::string_view strength = string_field(o, "strength");
    if (strength == "LCS_FORKEYSHARE") return "SELECT ... FOR KEY SHARE";
    if (strength == "LCS_FORSHARE") return "SELECT ... FOR SHARE";
    if (strength == "LCS_FORNOKEYUPDATE") return "SELECT ... FOR NO KEY UPDATE";
    return "SELECT ... FOR UPDATE";
  }

  bool check_function(element call) {
    object o;
    std::array<std::string_view, 3> parts;
    const std::size_t n = call.get(o) == simdjson::SUCCESS ? name_parts(o, "funcname", parts) : 0;
    if (n == 0) return found("unreadable function call");
    const std::string_view name = parts[n - 1];
    // Only pg_catalog is known; any other schema, even one shadowing a built-in's
    // name, holds user code.
    if (n > 2 || (n == 2 && parts[0] != "pg_catalog"))
      return found(joined(parts, n) + "() is not known to be read-only");
    switch (builtin_function_kind(name)) {
      case FunctionKind::ReadOnly: return false;
      case FunctionKind::Writes: return found(std::string(name) + "() writes");
      case FunctionKind::PrimaryOnly: return found(std::string(name) + "() runs on the primary only");
      case FunctionKind::Unknown: break;
    }
    return found(std::string(name) + "() is not known to be read-only");
  }

  // Operators run functions too. Built-in and user operators share spellings, so only
  // an explicit OPERATOR(schema.op) outside pg_catalog is visibly user code.
  bool check_operator(element expr) {
    object o;
    std::array<std::string_view, 3> parts;
    if (expr.get(o) != simdjson::SUCCESS) return false;
    const std::size_t n = name_parts(o, "name", parts);
    if (n > 2 || (n == 2 && parts[0] != "pg_catalog"))
      return found("operator " + joined(parts, n) + " is not known to be read-only");
    return false;
  }

  std::string reason_;
};

Verdict classify_select(object body) {
  SelectScan scan;
  if (scan.find_write(body)) return write(std::move(scan.reason()));
  return {StatementKind::Read, "SELECT"};
}

// --- the other statements ---------------------------------------------------------------

// EXPLAIN plans without running anything, unless ANALYZE (which runs the statement).
Verdict classify_explain(object body) {
  const Option analyze = last_option(body, "options", "analyze");
  if (analyze.given && (!analyze.has_arg || node_as_bool(analyze.arg).value_or(true)))
    return write("EXPLAIN ANALYZE");  // a value the server rejects counts as on
  std::string_view type;
  object query;
  element query_node;
  if (body["query"].get(query_node) == simdjson::SUCCESS && unwrap(query_node, type, query) &&
      type == "ExecuteStmt")
    return write("EXPLAIN EXECUTE");  // names a prepared statement only its server has
  return {StatementKind::Read, "EXPLAIN"};
}

struct TransactionKind {
  std::string_view kind;
  std::string_view name;
  StatementKind verdict;
};

// Two-phase commit writes state files and cannot run on a standby.
constexpr std::array kTransactionKinds = std::to_array<TransactionKind>({
    {"TRANS_STMT_COMMIT", "COMMIT", StatementKind::Read},
    {"TRANS_STMT_ROLLBACK", "ROLLBACK", StatementKind::Read},
    {"TRANS_STMT_SAVEPOINT", "SAVEPOINT", StatementKind::Read},
    {"TRANS_STMT_RELEASE", "RELEASE SAVEPOINT", StatementKind::Read},
    {"TRANS_STMT_ROLLBACK_TO", "ROLLBACK TO SAVEPOINT", StatementKind::Read},
    {"TRANS_STMT_PREPARE", "PREPARE TRANSACTION", StatementKind::Write},
    {"TRANS_STMT_COMMIT_PREPARED", "COMMIT PREPARED", StatementKind::Write},
    {"TRANS_STMT_ROLLBACK_PREPARED", "ROLLBACK PREPARED", StatementKind::Write},
});

Verdict classify_transaction(object body, Classification& out) {
  out.transaction_control = true;
  const std::string_view kind = string_field(body, "kind");
  if (kind == "TRANS_STMT_BEGIN" || kind == "TRANS_STMT_START") {
    const TransactionModes modes = transaction_modes(body, "options");
    out.local = kind == "TRANS_STMT_BEGIN" ? LocalStatement::Begin : LocalStatement::StartTransaction;
    out.begins_read_only = modes.read_only.value_or(false);
    std::string name = kind == "TRANS_STMT_BEGIN" ? "BEGIN" : "START TRANSACTION";
    if (const std::string_view why = needs_primary(modes); !why.empty())
      return write(name.append(why));
    return {StatementKind::Read, std::move(name)};
  }
  if (!bool_field(body, "chain")) {
    if (kind == "TRANS_STMT_COMMIT") out.local = LocalStatement::Commit;
    if (kind == "TRANS_STMT_ROLLBACK") out.local = LocalStatement::Rollback;
  }
  for (const TransactionKind& k : kTransactionKinds) {
    if (k.kind == kind) return {k.verdict, std::string(k.name)};
  }
  return write("TransactionStmt");
}

// The value of `SET name = value`; nullopt for a list of values.
std::optional<bool> single_value_as_bool(object set) {
  array args;
  element first;
  if (!array_field(set, "args", args) || args.size() != 1 || args.at(0).get(first))
    return std::nullopt;
  return node_as_bool(first);
}

void set_default_read_only(Classification& out, std::optional<bool> value) {
  if (!value) return;  // the server rejects a value that is not a boolean
  out.sets_default_read_only = value;
  out.resets_default_read_only = false;
}

void reset_default_read_only(Classification& out) {
  out.sets_default_read_only.reset();
  out.resets_default_read_only = true;
}

// SET changes session state, so it is a write (the pool tracks it). The exceptions set
// the current transaction's characteristics, like BEGIN's options.
Verdict classify_set(object body, Classification& out) {
  const std::string_view kind = string_field(body, "kind");
  const std::string_view name = string_field(body, "name");
  if (kind == "VAR_SET_MULTI" && name == "TRANSACTION") {
    out.transaction_control = true;
    const TransactionModes modes = transaction_modes(body, "args");
    if (modes.read_only.value_or(false)) out.sets_transaction_read_only = true;
    if (const std::string_view why = needs_primary(modes); !why.empty())
      return write("SET TRANSACTION" + std::string(why));
    return {StatementKind::Read, "SET TRANSACTION"};
  }
  if (kind == "VAR_SET_VALUE" && name == "transaction_read_only") {
    // With or without LOCAL, it lasts until the transaction ends.
    out.transaction_control = true;
    const std::optional<bool> value = single_value_as_bool(body);
    if (value != true) return write(value ? "SET transaction_read_only = off" : "SET");
    out.sets_transaction_read_only = true;
    return {StatementKind::Read, "SET transaction_read_only"};
  }
  if (kind == "VAR_SET_MULTI" && name == "SESSION CHARACTERISTICS") {
    // The same setting as default_transaction_read_only, under another name.
    const Option read_only = last_option(body, "args", "transaction_read_only");
    if (read_only.has_arg) set_default_read_only(out, node_as_bool(read_only.arg));
    return write("SET SESSION CHARACTERISTICS");
  }
  if (kind == "VAR_RESET_ALL") {
    out.local = LocalStatement::ResetAll;
    reset_default_read_only(out);
    return write("RESET ALL");
  }
  // SET LOCAL default_transaction_read_only only shapes transactions that start before
  // this one ends: none.
  if (name == "default_transaction_read_only" && !bool_field(body, "is_local")) {
    if (kind == "VAR_SET_VALUE") set_default_read_only(out, single_value_as_bool(body));
    if (kind == "VAR_SET_DEFAULT" || kind == "VAR_RESET") reset_default_read_only(out);
  }
  if (!bool_field(body, "is_local")) {
    if (kind == "VAR_SET_VALUE" || kind == "VAR_SET_DEFAULT") out.local = LocalStatement::Set;
    if (kind == "VAR_RESET") out.local = LocalStatement::Reset;
  }
  return write(kind == "VAR_RESET" ? "RESET" : "SET");
}

// Short names for the Write reason; other statements are named by their node type
// ("CreateStmt", "AlterTableStmt", ...).
constexpr std::array kStatementNames = std::to_array<std::pair<std::string_view, std::string_view>>({
    {"AlterSystemStmt", "ALTER SYSTEM"}, {"CallStmt", "CALL"},
    {"CheckPointStmt", "CHECKPOINT"}, {"ClosePortalStmt", "CLOSE"},
    {"ClusterStmt", "CLUSTER"}, {"ConstraintsSetStmt", "SET CONSTRAINTS"},
    {"CopyStmt", "COPY"}, {"CreateTableAsStmt", "CREATE TABLE AS"},
    {"DeallocateStmt", "DEALLOCATE"}, {"DeclareCursorStmt", "DECLARE CURSOR"},
    {"DeleteStmt", "DELETE"}, {"DoStmt", "DO"}, {"ExecuteStmt", "EXECUTE"},
    {"FetchStmt", "FETCH"}, {"GrantStmt", "GRANT/REVOKE"}, {"InsertStmt", "INSERT"},
    {"ListenStmt", "LISTEN"}, {"LoadStmt", "LOAD"}, {"LockStmt", "LOCK"},
    {"MergeStmt", "MERGE"}, {"NotifyStmt", "NOTIFY"}, {"PrepareStmt", "PREPARE"},
    {"RefreshMatViewStmt", "REFRESH MATERIALIZED VIEW"}, {"ReindexStmt", "REINDEX"},
    {"TruncateStmt", "TRUNCATE"}, {"UnlistenStmt", "UNLISTEN"}, {"UpdateStmt", "UPDATE"},
});

// The ALL forms of these leave their name out: DEALLOCATE ALL, UNLISTEN *, CLOSE ALL.
constexpr std::array kAllForms = std::to_array<std::tuple<std::string_view, std::string_view, LocalStatement>>({
    {"DeallocateStmt", "name", LocalStatement::DeallocateAll},
    {"UnlistenStmt", "conditionname", LocalStatement::UnlistenAll},
    {"ClosePortalStmt", "portalname", LocalStatement::CloseAll},
});

Verdict classify_other(std::string_view type, object body, Classification& out) {
  if (type == "DiscardStmt") {
    if (string_field(body, "target") == "DISCARD_ALL") {
      out.local = LocalStatement::DiscardAll;
      reset_default_read_only(out);  // RESET ALL
    }
    return write("DISCARD");
  }
  for (const auto& [node, name_key, local] : kAllForms) {
    if (node == type && string_field(body, name_key).empty()) out.local = local;
  }
  if (type == "VacuumStmt") return write(bool_field(body, "is_vacuumcmd") ? "VACUUM" : "ANALYZE");
  for (const auto& [node, name] : kStatementNames) {
    if (node == type) return write(std::string(name));
  }
  return write(std::string(type));
}

Verdict classify_statement(element stmt, Classification& out) {
  std::string_view type;
  object body;
  if (!unwrap(stmt, type, body)) return write("unreadable statement");
  if (type == "SelectStmt") return classify_select(body);  // also VALUES and TABLE
  if (type == "ExplainStmt") return classify_explain(body);
  if (type == "VariableShowStmt") return {StatementKind::Read, "SHOW"};
  if (type == "TransactionStmt") return classify_transaction(body, out);
  if (type == "VariableSetStmt") return classify_set(body, out);
  return classify_other(type, body, out);
}

// --- session state that no command tag shows --------------------------------------------

// set_config(setting_name, new_value, is_local) lasts past the transaction unless
// is_local is the constant true; positional or named (is_local => ...). Any function of
// that name counts: one in another schema is user code that may do the same.
bool is_session_set_config(object call) {
  std::array<std::string_view, 3> parts;
  const std::size_t n = name_parts(call, "funcname", parts);
  if (n == 0 || parts[n - 1] != "set_config") return false;
  array args;
  if (!array_field(call, "args", args)) return true;
  std::optional<bool> is_local;
  std::size_t position = 0;
  for (element arg : args) {
    std::string_view type;
    object named;
    if (unwrap(arg, type, named) && type == "NamedArgExpr") {
      element value;
      if (string_field(named, "name") == "is_local" && named["arg"].get(value) == simdjson::SUCCESS)
        is_local = node_as_bool(value);
    } else if (position == 2) {
      is_local = node_as_bool(arg);
    }
    ++position;
  }
  return is_local != true;
}

// Anywhere in a statement: a session-level set_config() call, or a DO block (its body is
// a string PostgreSQL parses only when it runs it).
bool find_session_set_config(element e) {
  object o;
  array a;
  if (e.get(o) == simdjson::SUCCESS) {
    for (auto field : o) {
      object call;
      if (field.key == "DoStmt") return field.value.get(call) != simdjson::SUCCESS || plpgsql_may_set(tree::do_body(call));
      if (field.key == "FuncCall" && field.value.get(call) == simdjson::SUCCESS && is_session_set_config(call))
        return true;
      if (find_session_set_config(field.value)) return true;
    }
  } else if (e.get(a) == simdjson::SUCCESS) {
    for (element item : a)
      if (find_session_set_config(item)) return true;
  }
  return false;
}

// --- parsing ----------------------------------------------------------------------------

class ParseTree {
 public:
  explicit ParseTree(const char* sql) : result_(pg_query_parse(sql)) {}
  ParseTree(const ParseTree&) = delete;
  ParseTree& operator=(const ParseTree&) = delete;
  ~ParseTree() { pg_query_free_parse_result(result_); }

  bool ok() const { return result_.error == nullptr && result_.parse_tree != nullptr; }
  const char* json() const { return result_.parse_tree; }

 private:
  PgQueryParseResult result_;
};

// One per thread, reused: simdjson's parser keeps its buffers between documents, so a
// steady workload parses without allocating. Buffers grown by an unusually large
// statement are released afterwards.
class JsonReader {
 public:
  simdjson::simdjson_result<element> parse(const char* json) {
    const std::size_t len = std::strlen(json);
    padded_.resize(len + simdjson::SIMDJSON_PADDING);  // simdjson reads past the end
    std::memcpy(padded_.data(), json, len);
    return parser_.parse(padded_.data(), len, false);
  }

  void release_if_large() {
    if (padded_.capacity() > kKeepBytes) std::string().swap(padded_);
    if (parser_.capacity() > kKeepBytes) parser_ = simdjson::dom::parser{};
  }

 private:
  static constexpr std::size_t kKeepBytes = 256 * 1024;
  simdjson::dom::parser parser_;
  std::string padded_;
};

JsonReader& reader() {
  thread_local JsonReader one;
  return one;
}

Classification write_classification(std::string reason) {
  Classification out;
  out.kind = StatementKind::Write;
  out.reason = std::move(reason);
  return out;
}

}  // namespace

Classification classify_sql(std::string_view sql) {
  // The server reads a Query string up to its first NUL and then rejects the message,
  // so text after a NUL must not decide anything.
  if (sql.find('\0') != std::string_view::npos)
    return write_classification("NUL byte in query: treated as write");
  const std::string text(sql);  // libpg_query wants a NUL-terminated string
  const ParseTree tree(text.c_str());
  if (!tree.ok()) return write_classification("parse error: treated as write");  // the server rejects it too

  // A tree this reader cannot walk may still run on the server: assume the worst.
  const bool may_set_config = may_set_session_config(sql);
  auto unreadable = [may_set_config](std::string reason) {
    reader().release_if_large();
    Classification out = write_classification(std::move(reason));
    out.sets_session_config = may_set_config;
    return out;
  };
  element root;
  array stmts;
  if (reader().parse(tree.json()).get(root) != simdjson::SUCCESS)
    return unreadable("parse tree too deep: treated as write");  // nesting past simdjson's limit
  if (root["stmts"].get(stmts) != simdjson::SUCCESS) return unreadable("unreadable parse tree: treated as write");

  Classification out;
  out.kind = StatementKind::Read;
  std::size_t count = 0;
  const bool effects = may_control_transaction(sql);
  bool any_effect = false;
  for (element raw : stmts) {
    ++count;
    element stmt;
    Verdict verdict = raw["stmt"].get(stmt) == simdjson::SUCCESS
                          ? classify_statement(stmt, out)
                          : write("unreadable statement");
    const bool first_write =
        verdict.kind == StatementKind::Write && out.kind == StatementKind::Read;
    if (out.reason.empty() || first_write) out.reason = std::move(verdict.reason);
    if (verdict.kind == StatementKind::Write) out.kind = StatementKind::Write;
    if (may_set_config && !out.sets_session_config) out.sets_session_config = find_session_set_config(raw);
    if (effects) {
      out.session_effects.emplace_back();
      if (raw["stmt"].get(stmt) == simdjson::SUCCESS)
        tree::collect_session_effects(stmt, sql, may_set_config, out.session_effects.back());
      any_effect = any_effect || !out.session_effects.back().empty();
    }
  }
  if (!any_effect) out.session_effects.clear();
  if (out.reason.empty()) out.reason = "empty query";
  if (count != 1) out.local = count == 0 ? LocalStatement::Empty : LocalStatement::None;
  reader().release_if_large();
  return out;
}

}  // namespace pgsidecar::sql
