#include "proxy/classify.h"

#include <pg_query.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <utility>

namespace pgsidecar::proxy {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// Built-in functions (pg_catalog, PostgreSQL 15) that neither write, lock, change session
// state, nor fail on a hot standby. A call to any other function makes a statement a
// write: PostgreSQL cannot tell what a user-defined function does. Sorted for
// binary search; docs/classifier.md lists them by family.
constexpr std::array kReadOnlyFunctions = std::to_array<std::string_view>({
    "abbrev", "abs", "acos", "acosd", "acosh", "age", "array_agg", "array_append",
    "array_cat", "array_dims", "array_fill", "array_length", "array_lower", "array_ndims",
    "array_position", "array_positions", "array_prepend", "array_remove", "array_replace",
    "array_to_json", "array_to_string", "array_to_tsvector", "array_upper", "ascii",
    "asin", "asind", "asinh", "atan", "atan2", "atan2d", "atand", "atanh", "avg",
    "bit_and", "bit_count", "bit_length", "bit_or", "bit_xor", "bool", "bool_and",
    "bool_or", "broadcast", "btrim", "cardinality", "cbrt", "ceil", "ceiling",
    "char_length", "character_length", "chr", "cidr", "clock_timestamp", "col_description",
    "concat", "concat_ws", "convert", "convert_from", "convert_to", "corr", "cos", "cosd",
    "cosh", "cot", "cotd", "count", "covar_pop", "covar_samp", "cume_dist",
    "current_database", "current_query", "current_schema", "current_schemas",
    "current_setting", "currval", "date", "date_bin", "date_part", "date_trunc",
    "daterange", "decode", "degrees", "dense_rank", "div", "encode", "enum_first",
    "enum_last", "enum_range", "every", "exp", "extract", "factorial", "family",
    "first_value", "float4", "float8", "floor", "format", "format_type", "gcd",
    "gen_random_uuid", "generate_series", "generate_subscripts", "get_bit", "get_byte",
    "has_any_column_privilege", "has_column_privilege", "has_database_privilege",
    "has_foreign_data_wrapper_privilege", "has_function_privilege",
    "has_language_privilege", "has_parameter_privilege", "has_schema_privilege",
    "has_sequence_privilege", "has_server_privilege", "has_table_privilege",
    "has_tablespace_privilege", "has_type_privilege", "host", "hostmask", "inet",
    "inet_client_addr", "inet_client_port", "inet_merge", "inet_same_family",
    "inet_server_addr", "inet_server_port", "initcap", "int2", "int4", "int4range", "int8",
    "int8range", "interval", "is_normalized", "isempty", "isfinite", "json_agg",
    "json_array_elements", "json_array_elements_text", "json_array_length",
    "json_build_array", "json_build_object", "json_each", "json_each_text",
    "json_extract_path", "json_extract_path_text", "json_object", "json_object_agg",
    "json_object_keys", "json_populate_record", "json_populate_recordset",
    "json_strip_nulls", "json_to_record", "json_to_recordset", "json_typeof", "jsonb_agg",
    "jsonb_array_elements", "jsonb_array_elements_text", "jsonb_array_length",
    "jsonb_build_array", "jsonb_build_object", "jsonb_each", "jsonb_each_text",
    "jsonb_extract_path", "jsonb_extract_path_text", "jsonb_insert", "jsonb_object",
    "jsonb_object_agg", "jsonb_object_keys", "jsonb_path_exists", "jsonb_path_exists_tz",
    "jsonb_path_match", "jsonb_path_match_tz", "jsonb_path_query",
    "jsonb_path_query_array", "jsonb_path_query_array_tz", "jsonb_path_query_first",
    "jsonb_path_query_first_tz", "jsonb_path_query_tz", "jsonb_populate_record",
    "jsonb_populate_recordset", "jsonb_pretty", "jsonb_set", "jsonb_set_lax",
    "jsonb_strip_nulls", "jsonb_to_record", "jsonb_to_recordset", "jsonb_typeof",
    "justify_days", "justify_hours", "justify_interval", "lag", "last_value", "lastval",
    "lcm", "lead", "left", "length", "ln", "log", "log10", "lower", "lower_inc",
    "lower_inf", "lpad", "ltrim", "make_date", "make_interval", "make_time",
    "make_timestamp", "make_timestamptz", "masklen", "max", "md5", "min", "min_scale",
    "mod", "mode", "netmask", "network", "normalize", "now", "nth_value", "ntile",
    "num_nonnulls", "num_nulls", "numeric", "numnode", "numrange", "obj_description",
    "octet_length", "overlaps", "overlay", "parse_ident", "percent_rank",
    "percentile_cont", "percentile_disc", "pg_backend_pid", "pg_blocking_pids",
    "pg_client_encoding", "pg_column_compression", "pg_column_size", "pg_conf_load_time",
    "pg_current_snapshot", "pg_current_xact_id_if_assigned", "pg_database_size",
    "pg_encoding_to_char", "pg_function_is_visible", "pg_get_constraintdef", "pg_get_expr",
    "pg_get_function_arguments", "pg_get_function_identity_arguments",
    "pg_get_function_result", "pg_get_functiondef", "pg_get_indexdef", "pg_get_keywords",
    "pg_get_partkeydef", "pg_get_ruledef", "pg_get_serial_sequence",
    "pg_get_statisticsobjdef", "pg_get_triggerdef", "pg_get_userbyid", "pg_get_viewdef",
    "pg_has_role", "pg_indexes_size", "pg_is_in_recovery", "pg_is_wal_replay_paused",
    "pg_jit_available", "pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn",
    "pg_last_xact_replay_timestamp", "pg_listening_channels", "pg_my_temp_schema",
    "pg_notification_queue_usage", "pg_postmaster_start_time", "pg_relation_filenode",
    "pg_relation_filepath", "pg_relation_size", "pg_safe_snapshot_blocking_pids",
    "pg_size_bytes", "pg_size_pretty", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
    "pg_snapshot_xip", "pg_snapshot_xmax", "pg_snapshot_xmin", "pg_table_is_visible",
    "pg_table_size", "pg_total_relation_size", "pg_trigger_depth", "pg_type_is_visible",
    "pg_typeof", "pg_visible_in_snapshot", "pg_wal_lsn_diff", "pg_xact_status",
    "phraseto_tsquery", "pi", "plainto_tsquery", "position", "power", "querytree",
    "quote_ident", "quote_literal", "quote_nullable", "radians", "random", "range_agg",
    "range_intersect_agg", "range_merge", "rank", "regexp_count", "regexp_instr",
    "regexp_like", "regexp_match", "regexp_matches", "regexp_replace",
    "regexp_split_to_array", "regexp_split_to_table", "regexp_substr", "regr_avgx",
    "regr_avgy", "regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx",
    "regr_sxy", "regr_syy", "repeat", "replace", "reverse", "right", "round", "row_number",
    "row_security_active", "row_to_json", "rpad", "rtrim", "scale", "set_bit", "set_byte",
    "set_masklen", "setweight", "sha224", "sha256", "sha384", "sha512",
    "shobj_description", "sign", "sin", "sind", "sinh", "split_part", "sqrt",
    "starts_with", "statement_timestamp", "stddev", "stddev_pop", "stddev_samp",
    "string_agg", "string_to_array", "string_to_table", "strip", "strpos", "substr",
    "substring", "sum", "tan", "tand", "tanh", "text", "time", "timeofday", "timestamp",
    "timestamptz", "timezone", "to_ascii", "to_char", "to_date", "to_hex", "to_json",
    "to_jsonb", "to_number", "to_regclass", "to_regcollation", "to_regnamespace",
    "to_regoper", "to_regoperator", "to_regproc", "to_regprocedure", "to_regrole",
    "to_regtype", "to_timestamp", "to_tsquery", "to_tsvector", "transaction_timestamp",
    "translate", "trim_array", "trim_scale", "trunc", "ts_headline", "ts_rank",
    "ts_rank_cd", "tsrange", "tstzrange", "tsvector_to_array", "txid_current_if_assigned",
    "txid_current_snapshot", "txid_snapshot_xip", "txid_snapshot_xmax",
    "txid_snapshot_xmin", "txid_status", "txid_visible_in_snapshot", "unistr", "unnest",
    "upper", "upper_inc", "upper_inf", "var_pop", "var_samp", "varchar", "variance",
    "version", "websearch_to_tsquery", "width_bucket", "xml_is_well_formed",
    "xml_is_well_formed_content", "xml_is_well_formed_document", "xmlagg", "xpath",
    "xpath_exists",
});
static_assert(std::ranges::is_sorted(kReadOnlyFunctions));

// Functions known to write (or to work on a primary only). Only for a clearer reason:
// not being read-only is enough to make a call a write.
constexpr std::array kWritingFunctions = std::to_array<std::string_view>({
    "loread", "lowrite", "nextval", "pg_backup_start", "pg_backup_stop",
    "pg_cancel_backend", "pg_create_restore_point", "pg_current_wal_flush_lsn",
    "pg_current_wal_insert_lsn", "pg_current_wal_lsn", "pg_current_xact_id",
    "pg_import_system_collations", "pg_log_backend_memory_contexts", "pg_notify",
    "pg_promote", "pg_reload_conf", "pg_rotate_logfile", "pg_start_backup",
    "pg_stop_backup", "pg_switch_wal", "pg_terminate_backend", "pg_wal_replay_pause",
    "pg_wal_replay_resume", "set_config", "setseed", "setval", "txid_current",
});
static_assert(std::ranges::is_sorted(kWritingFunctions));

// Whole families: advisory locks, large objects, statistics resets, replication slots
// and origins, logical decoding (which consumes changes), dblink.
constexpr std::array kWritingPrefixes = std::to_array<std::string_view>({
    "dblink", "lo_", "pg_advisory_", "pg_copy_", "pg_create_", "pg_drop_", "pg_logical_",
    "pg_replication_", "pg_stat_reset", "pg_try_advisory_",
});

bool is_listed(std::span<const std::string_view> sorted, std::string_view name) {
  return std::binary_search(sorted.begin(), sorted.end(), name);
}

bool is_writing_function(std::string_view name) {
  if (is_listed(kWritingFunctions, name)) return true;
  return std::ranges::any_of(kWritingPrefixes,
                             [name](std::string_view prefix) { return name.starts_with(prefix); });
}

// --- reading libpg_query's JSON parse tree ----------------------------------------------
// A node is {"TypeName": {fields}}; lists are arrays of nodes; fields that hold zero,
// false or nothing are left out.

std::string_view string_field(object o, std::string_view key) {
  std::string_view out;
  if (o[key].get(out) != simdjson::SUCCESS) return {};
  return out;
}

bool bool_field(object o, std::string_view key) {
  bool out = false;
  if (o[key].get(out) != simdjson::SUCCESS) return false;
  return out;
}

// False when the list is absent (empty lists are left out too). A default-constructed
// simdjson array must not be iterated, hence no "empty array" fallback.
bool array_field(object o, std::string_view key, array& out) {
  return o[key].get(out) == simdjson::SUCCESS;
}

// Splits a node into its type name and body; false when `e` is not a node.
bool unwrap(element e, std::string_view& type, object& body) {
  object o;
  if (e.get(o) != simdjson::SUCCESS) return false;
  for (auto field : o) {
    type = field.key;
    return field.value.get(body) == simdjson::SUCCESS;
  }
  return false;
}

// PostgreSQL's parse_bool(): true/false, yes/no and any prefix of them, on/off, 1/0,
// ignoring case. Anything else is an error on the server; here, "don't know".
std::optional<bool> parse_bool(std::string_view s) {
  auto prefix_of = [s](std::string_view word, std::size_t min_len) {
    if (s.size() < min_len || s.size() > word.size()) return false;
    return std::equal(s.begin(), s.end(), word.begin(),
                      [](char a, char b) { return (a | 0x20) == b; });
  };
  if (prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2)) return true;
  if (prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 3)) return false;
  if (s == "1") return true;
  if (s == "0") return false;
  return std::nullopt;
}

std::optional<bool> int_as_bool(object holder, std::string_view key) {
  int64_t value = 0;
  if (const auto err = holder[key].get(value); err != simdjson::SUCCESS && err != simdjson::NO_SUCH_FIELD)
    return std::nullopt;
  if (value == 0 || value == 1) return value == 1;
  return std::nullopt;
}

// The boolean a SET value or option argument spells: an A_Const, String, Integer or
// Boolean node (READ ONLY arrives as the integer 1, `= on` as the string "on").
std::optional<bool> node_as_bool(element node) {
  std::string_view type;
  object body;
  if (!unwrap(node, type, body)) return std::nullopt;
  if (type == "String") return parse_bool(string_field(body, "sval"));
  if (type == "Integer") return int_as_bool(body, "ival");
  if (type == "Boolean") return bool_field(body, "boolval");
  if (type != "A_Const") return std::nullopt;
  object inner;
  if (body["sval"].get(inner) == simdjson::SUCCESS) return parse_bool(string_field(inner, "sval"));
  if (body["ival"].get(inner) == simdjson::SUCCESS) return int_as_bool(inner, "ival");
  if (body["boolval"].get(inner) == simdjson::SUCCESS) return bool_field(inner, "boolval");
  return std::nullopt;
}

// The value of the last DefElem named `name` in the option list under `list_key`;
// `fallback` when it has no argument (EXPLAIN ANALYZE means ANALYZE true).
std::optional<bool> option_value(object holder, std::string_view list_key, std::string_view name,
                                 bool* present = nullptr,
                                 std::optional<bool> fallback = std::nullopt) {
  std::optional<bool> value;
  array options;
  if (!array_field(holder, list_key, options)) return value;
  for (element option : options) {
    std::string_view type;
    object def;
    if (!unwrap(option, type, def) || type != "DefElem" || string_field(def, "defname") != name)
      continue;
    if (present != nullptr) *present = true;
    element arg;
    value = def["arg"].get(arg) == simdjson::SUCCESS ? node_as_bool(arg) : fallback;
  }
  return value;
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

  // A name list: ["f"], ["schema", "f"] or ["catalog", "schema", "f"].
  static std::size_t name_parts(object o, std::string_view key, std::array<std::string_view, 3>& parts) {
    std::size_t n = 0;
    array items;
    if (!array_field(o, key, items)) return 0;
    for (element item : items) {
      std::string_view type;
      object body;
      if (n == parts.size() || !unwrap(item, type, body) || type != "String") return 0;
      parts[n++] = string_field(body, "sval");
    }
    return n;
  }

  static std::string joined(const std::array<std::string_view, 3>& parts, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) out += '.';
      out += parts[i];
    }
    return out;
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
    if (is_writing_function(name)) return found(std::string(name) + "() writes");
    if (!is_listed(kReadOnlyFunctions, name))
      return found(std::string(name) + "() is not known to be read-only");
    return false;
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
  bool analyze_given = false;
  const std::optional<bool> analyze =
      option_value(body, "options", "analyze", &analyze_given, true);
  if (analyze_given && analyze.value_or(true)) return write("EXPLAIN ANALYZE");
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
    // READ ONLY arrives as transaction_read_only = 1, READ WRITE as 0; the last wins.
    out.begins_read_only =
        option_value(body, "options", "transaction_read_only").value_or(false);
    return {StatementKind::Read, kind == "TRANS_STMT_BEGIN" ? "BEGIN" : "START TRANSACTION"};
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
    if (option_value(body, "args", "transaction_read_only").value_or(false))
      out.sets_transaction_read_only = true;
    return {StatementKind::Read, "SET TRANSACTION"};
  }
  if (kind == "VAR_SET_VALUE" && name == "transaction_read_only") {
    // With or without LOCAL, it lasts until the transaction ends.
    out.transaction_control = true;
    if (single_value_as_bool(body).value_or(false)) out.sets_transaction_read_only = true;
    return {StatementKind::Read, "SET transaction_read_only"};
  }
  if (kind == "VAR_SET_MULTI" && name == "SESSION CHARACTERISTICS") {
    // The same setting as default_transaction_read_only, under another name.
    bool given = false;
    const std::optional<bool> value = option_value(body, "args", "transaction_read_only", &given);
    if (given) set_default_read_only(out, value);
    return write("SET SESSION CHARACTERISTICS");
  }
  if (kind == "VAR_RESET_ALL") {
    reset_default_read_only(out);
    return write("RESET ALL");
  }
  // SET LOCAL default_transaction_read_only only shapes transactions that start before
  // this one ends: none.
  if (name == "default_transaction_read_only" && !bool_field(body, "is_local")) {
    if (kind == "VAR_SET_VALUE") set_default_read_only(out, single_value_as_bool(body));
    if (kind == "VAR_SET_DEFAULT" || kind == "VAR_RESET") reset_default_read_only(out);
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

Verdict classify_other(std::string_view type, object body, Classification& out) {
  if (type == "DiscardStmt") {
    if (string_field(body, "target") == "DISCARD_ALL") reset_default_read_only(out);  // RESET ALL
    return write("DISCARD");
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
  if (!tree.ok()) return write_classification("parse error: treated as write");

  thread_local JsonReader reader;
  element root;
  array stmts;
  if (reader.parse(tree.json()).get(root) != simdjson::SUCCESS) {
    reader.release_if_large();  // the usual failure: nesting deeper than simdjson's limit
    return write_classification("parse tree too deep: treated as write");
  }
  if (root["stmts"].get(stmts) != simdjson::SUCCESS)
    return write_classification("unreadable parse tree: treated as write");

  Classification out;
  out.kind = StatementKind::Read;
  for (element raw : stmts) {
    element stmt;
    Verdict verdict = raw["stmt"].get(stmt) == simdjson::SUCCESS
                          ? classify_statement(stmt, out)
                          : write("unreadable statement");
    const bool first_write =
        verdict.kind == StatementKind::Write && out.kind == StatementKind::Read;
    if (out.reason.empty() || first_write) out.reason = std::move(verdict.reason);
    if (verdict.kind == StatementKind::Write) out.kind = StatementKind::Write;
  }
  if (out.reason.empty()) out.reason = "empty query";
  reader.release_if_large();
  return out;
}

}  // namespace pgsidecar::proxy
