#include "sql/session_effects.h"

#include <array>
#include <cstdint>
#include <cctype>

#include "sql/classify_quick.h"
#include "sql/parse_tree.h"

namespace pgsidecar::sql {

namespace {

using namespace tree;

// ASCII only, inline: these run on every character of every statement sent.
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

bool holds_word(std::string_view sql, std::size_t i, std::string_view word) {
  if (sql.size() - i < word.size()) return false;
  for (std::size_t k = 0; k < word.size(); ++k)
    if (ascii_lower(sql[i + k]) != word[k]) return false;
  return true;
}

// Words that may give a statement session effects wherever they appear, by first letter
// (lower case): "temp" covers TEMPORARY and pg_temp (CREATE TEMP, SELECT ... INTO TEMP),
// "advisory" the lock functions, "hold" DECLARE ... WITH HOLD, "set_config" itself. A
// Unicode escape (U&"...") may spell any name.
bool word_anywhere_at(std::string_view sql, std::size_t i) {
  switch (ascii_lower(sql[i])) {
    case 't': return holds_word(sql, i, "temp");
    case 'a': return holds_word(sql, i, "advisory");
    case 'h': return holds_word(sql, i, "hold");
    case 's': return holds_word(sql, i, "set_config");
    case 'u': return holds_word(sql, i, "u&");
    default: return false;
  }
}

// Words that give a statement session effects only as its first word: SET and RESET
// (not UPDATE ... SET), CLOSE, [UN]LISTEN, PREPARE, DEALLOCATE, DISCARD, DO (its code may
// SET anything); and with `transaction_words`, transaction control (not CASE ... END).
bool first_word_at(std::string_view sql, std::size_t i, bool transaction_words) {
  switch (ascii_lower(sql[i])) {
    case 's': return holds_word(sql, i, "set") || (transaction_words && holds_word(sql, i, "savepoint"));
    case 'r':
      return holds_word(sql, i, "reset") ||
             (transaction_words && (holds_word(sql, i, "rollback") || holds_word(sql, i, "release")));
    case 'c': return holds_word(sql, i, "close") || (transaction_words && holds_word(sql, i, "commit"));
    case 'l': return holds_word(sql, i, "listen");
    case 'u': return holds_word(sql, i, "unlisten");
    case 'p': return holds_word(sql, i, "prepare");
    case 'd': return holds_word(sql, i, "deallocate") || holds_word(sql, i, "discard") || holds_word(sql, i, "do");
    case 'a': return transaction_words && holds_word(sql, i, "abort");
    case 'e': return transaction_words && holds_word(sql, i, "end");
    default: return false;
  }
}

// What a character may begin, for scan(): a word that counts anywhere, a statement's
// first word, or what separates statements (';', white space, a comment). Most
// characters begin none, and cost one look-up.
enum : uint8_t { kAnywhere = 1, kFirst = 2, kSeparator = 4 };
constexpr std::array<uint8_t, 256> kCharKinds = [] {
  std::array<uint8_t, 256> t{};
  auto mark = [&t](std::string_view chars, uint8_t kind, bool letters) {
    for (const char c : chars) {
      t[static_cast<unsigned char>(c)] |= kind;
      if (letters) t[static_cast<unsigned char>(c - ('a' - 'A'))] |= kind;
    }
  };
  mark("tahsu", kAnywhere, true);
  mark("srclupdae", kFirst, true);
  mark(" \t\n\v\f\r;-/", kSeparator, false);
  return t;
}();

// Statements start at the text's start and after each ';', white space and comments
// between. (A ';' inside a string only makes the check say yes more often.)
bool scan(std::string_view sql, bool transaction_words) {
  bool at_start = true;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    const uint8_t kind = kCharKinds[static_cast<unsigned char>(c)];
    if (kind == 0) {
      at_start = false;
      continue;
    }
    if ((kind & kSeparator) != 0) {
      if (c == ';') {
        at_start = true;
      } else if (c == '-' || c == '/') {
        const char next = i + 1 < sql.size() ? sql[i + 1] : '\0';
        if (c == '-' && next == '-') {
          while (i < sql.size() && sql[i] != '\n') ++i;
        } else if (c == '/' && next == '*') {
          int depth = 1;  // PostgreSQL's block comments nest
          for (i += 2; i < sql.size() && depth > 0; ++i) {
            if (sql[i] == '/' && i + 1 < sql.size() && sql[i + 1] == '*') depth += 1, ++i;
            else if (sql[i] == '*' && i + 1 < sql.size() && sql[i + 1] == '/') depth -= 1, ++i;
          }
          --i;
        } else {
          at_start = false;
        }
      }
      continue;
    }
    if (at_start && (kind & kFirst) != 0 && first_word_at(sql, i, transaction_words)) return true;
    at_start = false;
    if ((kind & kAnywhere) != 0 && word_anywhere_at(sql, i)) return true;
  }
  return false;
}

void add(StatementEffects& out, EffectKind kind, std::string_view name = {}, std::string_view value = {}) {
  out.push_back(SessionEffect{kind, std::string(name), std::string(value)});
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Settings whose list elements the server quotes as identifiers (GUC_LIST_QUOTE).
bool quotes_list_elements(std::string_view name) {
  return name == "search_path" || name == "temp_tablespaces" || name == "session_preload_libraries" ||
         name == "local_preload_libraries";
}

bool plain_identifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s.front())) != 0) return false;
  for (char c : s)
    if (!(std::islower(static_cast<unsigned char>(c)) != 0 || std::isdigit(static_cast<unsigned char>(c)) != 0 ||
          c == '_' || c == '$'))
      return false;
  return true;
}

// One SET argument as the server flattens it (flatten_set_variable_args); false when it
// is not a constant this reader knows (a typed interval, say).
// The integer written at `location` of the statement's text: the parse tree leaves out an
// Integer whose value is 0 and, in this libpg_query's JSON, a negative one too.
bool integer_at(std::string_view sql, int64_t location, std::string& out) {
  if (location < 0 || static_cast<std::size_t>(location) >= sql.size()) return false;
  std::size_t i = static_cast<std::size_t>(location);
  std::string digits;
  if (sql[i] == '-' || sql[i] == '+') {
    if (sql[i] == '-') digits += '-';
    for (++i; i < sql.size() && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r'); ++i) {
    }
  }
  const std::size_t first = i;
  for (; i < sql.size() && sql[i] >= '0' && sql[i] <= '9'; ++i) digits += sql[i];
  if (i == first) return false;
  out += digits == "-0" ? std::string("0") : digits;
  return true;
}

bool flatten_arg(element arg, std::string_view name, std::string_view sql, std::string& out) {
  std::string_view type;
  object body;
  if (!unwrap(arg, type, body) || type != "A_Const") return false;
  object inner;
  if (body["sval"].get(inner) == simdjson::SUCCESS) {
    const std::string_view s = string_field(inner, "sval");
    if (!quotes_list_elements(name) || plain_identifier(s)) {
      out += s;
    } else {
      out += '"';
      for (char c : s) {
        if (c == '"') out += '"';
        out += c;
      }
      out += '"';
    }
    return true;
  }
  if (body["ival"].get(inner) == simdjson::SUCCESS) {
    int64_t v = 0;
    const auto err = inner["ival"].get(v);
    if (err == simdjson::NO_SUCH_FIELD) {
      int64_t location = -1;
      return body["location"].get(location) == simdjson::SUCCESS && integer_at(sql, location, out);
    }
    if (err != simdjson::SUCCESS) return false;
    out += std::to_string(v);
    return true;
  }
  if (body["fval"].get(inner) == simdjson::SUCCESS) {
    out += string_field(inner, "fval");
    return true;
  }
  if (body["boolval"].get(inner) == simdjson::SUCCESS) {
    out += bool_field(inner, "boolval") ? "on" : "off";
    return true;
  }
  return false;
}

void collect_set(object set, std::string_view sql, StatementEffects& out) {
  if (bool_field(set, "is_local")) return;  // lasts to the end of the transaction
  const std::string_view kind = string_field(set, "kind");
  const std::string name = lower(string_field(set, "name"));
  if (kind == "VAR_RESET_ALL") return add(out, EffectKind::ResetAll);
  if (kind == "VAR_RESET" || kind == "VAR_SET_DEFAULT") return add(out, EffectKind::Reset, name);
  if (kind == "VAR_SET_MULTI") {
    if (name != "session characteristics") return;  // SET TRANSACTION: this transaction only
    array args;
    if (!array_field(set, "args", args)) return;
    for (element a : args) {
      std::string_view type;
      object def;
      element value;
      if (!unwrap(a, type, def) || type != "DefElem" || def["arg"].get(value) != simdjson::SUCCESS) continue;
      const std::string setting = "default_" + std::string(string_field(def, "defname"));
      std::string flat;
      const std::optional<bool> flag = node_as_bool(value);
      if (setting != "default_transaction_isolation" && flag) flat = *flag ? "on" : "off";
      else if (!flatten_arg(value, setting, sql, flat)) add(out, EffectKind::UntrackedSetting, setting);
      if (!flat.empty()) add(out, EffectKind::Set, setting, flat);
    }
    return;
  }
  if (kind != "VAR_SET_VALUE") {
    add(out, EffectKind::UntrackedSetting, name);  // SET ... FROM CURRENT and the like
    return;
  }
  array args;
  std::string flat;
  bool first = true;
  if (array_field(set, "args", args)) {
    for (element a : args) {
      if (!first) flat += ", ";
      first = false;
      if (!flatten_arg(a, name, sql, flat)) return add(out, EffectKind::UntrackedSetting, name);
    }
  }
  add(out, EffectKind::Set, name, flat);
}

// A constant text argument, possibly cast ('x'::text).
bool constant_text(element arg, std::string& out) {
  std::string_view type;
  object body;
  if (!unwrap(arg, type, body)) return false;
  element inner;
  if (type == "TypeCast" && body["arg"].get(inner) == simdjson::SUCCESS) return constant_text(inner, out);
  if (type != "A_Const") return false;
  object s;
  if (body["sval"].get(s) != simdjson::SUCCESS) return false;
  out = string_field(s, "sval");
  return true;
}

// A parameter of the statement, possibly cast to text or varchar ($1::text): its number,
// else 0. A cast to another type (name, char) may change the text the function is given.
uint16_t text_param(element arg) {
  std::string_view type;
  object body;
  if (!unwrap(arg, type, body)) return 0;
  if (type == "TypeCast") {
    object type_name;
    array typmods;
    std::array<std::string_view, 3> parts;
    element inner;
    if (body["typeName"].get(type_name) != simdjson::SUCCESS || array_field(type_name, "typmods", typmods) ||
        bool_field(type_name, "setof") || body["arg"].get(inner) != simdjson::SUCCESS)
      return 0;
    const std::size_t n = name_parts(type_name, "names", parts);
    if (n == 0 || (n == 2 && parts[0] != "pg_catalog") || n > 2) return 0;
    if (parts[n - 1] != "text" && parts[n - 1] != "varchar") return 0;
    return text_param(inner);
  }
  int64_t number = 0;
  if (type != "ParamRef" || body["number"].get(number) != simdjson::SUCCESS || number < 1 || number > UINT16_MAX)
    return 0;
  return static_cast<uint16_t>(number);
}

bool text_or_param(element arg, std::string& text, uint16_t& param) {
  if (constant_text(arg, text)) return true;
  param = text_param(arg);
  return param != 0;
}

// set_config(name, value, is_local): a setting when is_local is not the constant true.
void collect_set_config(object call, StatementEffects& out) {
  array args;
  std::array<element, 3> pos{};
  std::size_t n = 0;
  bool named = false;
  if (array_field(call, "args", args)) {
    for (element a : args) {
      std::string_view type;
      object body;
      if (unwrap(a, type, body) && type == "NamedArgExpr") named = true;
      if (n < pos.size()) pos[n] = a;
      ++n;
    }
  }
  if (n != 3 || named) return add(out, EffectKind::UntrackedSetting, "set_config");
  if (node_as_bool(pos[2]) == true) return;
  if (node_as_bool(pos[2]) != false) return add(out, EffectKind::UntrackedSetting, "set_config");
  std::string name, value;
  uint16_t name_param = 0, value_param = 0;
  if (!text_or_param(pos[0], name, name_param) || !text_or_param(pos[1], value, value_param))
    return add(out, EffectKind::UntrackedSetting, "set_config");
  if (name_param == 0 && value_param == 0) return add(out, EffectKind::Set, lower(name), value);
  out.push_back(SessionEffect{EffectKind::SetFromParams, lower(name), value, name_param, value_param});
}

enum class Advisory { None, Lock, Unlock, UnlockAll };

Advisory advisory_kind(std::string_view f) {
  if (f == "pg_advisory_lock" || f == "pg_advisory_lock_shared" || f == "pg_try_advisory_lock" ||
      f == "pg_try_advisory_lock_shared")
    return Advisory::Lock;
  if (f == "pg_advisory_unlock" || f == "pg_advisory_unlock_shared") return Advisory::Unlock;
  if (f == "pg_advisory_unlock_all") return Advisory::UnlockAll;
  return Advisory::None;
}

// Function calls anywhere in a statement. `counted`: a call in the target list of a
// SELECT with no FROM, WHERE or set operation runs exactly once.
class CallScan {
 public:
  explicit CallScan(StatementEffects& out) : out_(out) {}

  void statement(object select_or_other, bool is_select) {
    bool simple = is_select;
    if (is_select) {
      element skip;
      for (std::string_view k : {"fromClause", "whereClause", "havingClause", "groupClause", "larg", "rarg",
                                 "withClause", "valuesLists"})
        if (select_or_other[k].get(skip) == simdjson::SUCCESS) simple = false;
    }
    simple_ = simple;
    walk_object(select_or_other, 0);
  }

 private:
  void walk_object(object o, int depth) {
    for (auto field : o) {
      object call;
      if (field.key == "FuncCall" && field.value.get(call) == simdjson::SUCCESS) call_found(call, depth);
      // Below a CASE, a subquery or a boolean test a call may run any number of times.
      const bool deeper = field.key == "CaseExpr" || field.key == "SubLink" || field.key == "BoolExpr" ||
                          field.key == "CoalesceExpr" || field.key == "FuncCall";
      walk(field.value, depth + (deeper ? 1 : 0));
    }
  }

  void walk(element e, int depth) {
    object o;
    array a;
    if (e.get(o) == simdjson::SUCCESS) {
      walk_object(o, depth);
    } else if (e.get(a) == simdjson::SUCCESS) {
      for (element item : a) walk(item, depth);
    }
  }

  void call_found(object call, int depth) {
    std::array<std::string_view, 3> parts;
    const std::size_t n = name_parts(call, "funcname", parts);
    if (n == 0) return;
    const std::string_view f = parts[n - 1];
    if (f == "set_config") return collect_set_config(call, out_);
    const bool counted = simple_ && depth == 0;
    switch (advisory_kind(f)) {
      case Advisory::None: return;
      case Advisory::Lock:
        return add(out_, counted ? EffectKind::AdvisoryLock : EffectKind::AdvisoryLockUncounted, {}, std::string(f) + "()");
      case Advisory::Unlock:
        if (counted) add(out_, EffectKind::AdvisoryUnlock);  // else unknown: the lock count stays
        return;
      case Advisory::UnlockAll:
        if (counted) add(out_, EffectKind::AdvisoryUnlockAll);
        return;
    }
  }

  StatementEffects& out_;
  bool simple_ = false;
};

bool is_temp(object rel) {
  return string_field(rel, "relpersistence") == "t" || string_field(rel, "schemaname") == "pg_temp";
}

void collect_temp(std::string_view type, object body, StatementEffects& out) {
  object rel, into;
  if (type == "CreateStmt" && body["relation"].get(rel) == simdjson::SUCCESS && is_temp(rel) &&
      string_field(body, "oncommit") != "ONCOMMIT_DROP")
    add(out, EffectKind::TempTable, {}, "CREATE TEMP TABLE");
  if (type == "ViewStmt" && body["view"].get(rel) == simdjson::SUCCESS && is_temp(rel))
    add(out, EffectKind::TempTable, {}, "CREATE TEMP VIEW");
  if (type == "CreateSeqStmt" && body["sequence"].get(rel) == simdjson::SUCCESS && is_temp(rel))
    add(out, EffectKind::TempTable, {}, "CREATE TEMP SEQUENCE");
  if ((type == "CreateTableAsStmt" && body["into"].get(into) == simdjson::SUCCESS) ||
      (type == "SelectStmt" && body["intoClause"].get(into) == simdjson::SUCCESS)) {
    if (into["rel"].get(rel) == simdjson::SUCCESS && is_temp(rel) && string_field(into, "onCommit") != "ONCOMMIT_DROP")
      add(out, EffectKind::TempTable, {}, type == "SelectStmt" ? "SELECT INTO TEMP" : "CREATE TEMP TABLE AS");
  }
}

void collect_transaction(object body, StatementEffects& out) {
  const std::string_view kind = string_field(body, "kind");
  const std::string_view savepoint = string_field(body, "savepoint_name");
  if (kind == "TRANS_STMT_COMMIT" || kind == "TRANS_STMT_PREPARE") add(out, EffectKind::Commit);
  else if (kind == "TRANS_STMT_ROLLBACK") add(out, EffectKind::Rollback);
  else if (kind == "TRANS_STMT_SAVEPOINT") add(out, EffectKind::Savepoint, savepoint);
  else if (kind == "TRANS_STMT_ROLLBACK_TO") add(out, EffectKind::RollbackTo, savepoint);
  else if (kind == "TRANS_STMT_RELEASE") add(out, EffectKind::Release, savepoint);
}

constexpr int kCursorOptHold = 0x20;  // CURSOR_OPT_HOLD


}  // namespace

bool creates_pinned_state(EffectKind kind) {
  switch (kind) {
    case EffectKind::UntrackedSetting:
    case EffectKind::TempTable:
    case EffectKind::AdvisoryLock:
    case EffectKind::AdvisoryLockUncounted:
    case EffectKind::HoldCursor:
    case EffectKind::Listen:
    case EffectKind::Prepare:
      return true;
    default:
      return false;
  }
}

bool is_transaction_control(EffectKind kind) {
  return kind == EffectKind::Commit || kind == EffectKind::Rollback || kind == EffectKind::Savepoint ||
         kind == EffectKind::RollbackTo || kind == EffectKind::Release;
}

bool may_affect_session(std::string_view sql) { return scan(sql, false); }
bool may_control_transaction(std::string_view sql) { return scan(sql, true); }

namespace tree {

void collect_session_effects(element stmt, std::string_view sql, bool do_may_set, StatementEffects& out) {
  std::string_view type;
  object body;
  if (!unwrap(stmt, type, body)) return;
  if (type == "VariableSetStmt") return collect_set(body, sql, out);
  if (type == "TransactionStmt") return collect_transaction(body, out);
  if (type == "DiscardStmt") {
    const std::string_view target = string_field(body, "target");
    if (target == "DISCARD_ALL") add(out, EffectKind::DiscardAll);
    if (target == "DISCARD_TEMP") add(out, EffectKind::DiscardTemp);
    return;
  }
  if (type == "DeclareCursorStmt") {
    int64_t options = 0;
    if (body["options"].get(options) == simdjson::SUCCESS && (options & kCursorOptHold) != 0)
      add(out, EffectKind::HoldCursor, string_field(body, "portalname"), "DECLARE ... WITH HOLD");
    return;
  }
  if (type == "ClosePortalStmt") {
    const std::string_view name = string_field(body, "portalname");
    return name.empty() ? add(out, EffectKind::CloseAllCursors) : add(out, EffectKind::CloseCursor, name);
  }
  if (type == "ListenStmt") return add(out, EffectKind::Listen, string_field(body, "conditionname"), "LISTEN");
  if (type == "UnlistenStmt") {
    const std::string_view name = string_field(body, "conditionname");
    return name.empty() ? add(out, EffectKind::UnlistenAll) : add(out, EffectKind::Unlisten, name);
  }
  if (type == "PrepareStmt") return add(out, EffectKind::Prepare, string_field(body, "name"), "PREPARE");
  if (type == "DeallocateStmt") {
    const std::string_view name = string_field(body, "name");
    return name.empty() ? add(out, EffectKind::DeallocateAll) : add(out, EffectKind::Deallocate, name);
  }
  if (type == "DoStmt") {
    // Its body is parsed only when it runs: a SET or set_config() in it cannot be followed.
    if (do_may_set && plpgsql_may_set(do_body(body))) add(out, EffectKind::UntrackedSetting, "DO");
    return;
  }
  collect_temp(type, body, out);
  CallScan(out).statement(body, type == "SelectStmt");
}

}  // namespace tree

}  // namespace pgsidecar::sql
