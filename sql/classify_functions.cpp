#include "sql/classify_functions.h"

#include <algorithm>
#include <array>
#include <span>

namespace pgsidecar::sql {
namespace {

// Built-in functions (pg_catalog, PostgreSQL 15) that neither write, lock, change session
// state, nor fail on a hot standby. A call to any other function makes a statement a
// write: PostgreSQL cannot tell what a user-defined function does. Sorted for binary
// search; docs/classifier.md lists them by family.
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
    "current_setting", "date", "date_bin", "date_part", "date_trunc", "daterange",
    "decode", "degrees", "dense_rank", "div", "encode", "enum_first", "enum_last",
    "enum_range", "every", "exp", "extract", "factorial", "family", "first_value",
    "float4", "float8", "floor", "format", "format_type", "gcd", "gen_random_uuid",
    "generate_series", "generate_subscripts", "get_bit", "get_byte",
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
    "justify_days", "justify_hours", "justify_interval", "lag", "last_value", "lcm",
    "lead", "left", "length", "ln", "log", "log10", "lower", "lower_inc", "lower_inf",
    "lpad", "ltrim", "make_date", "make_interval", "make_time", "make_timestamp",
    "make_timestamptz", "masklen", "max", "md5", "min", "min_scale", "mod", "mode",
    "netmask", "network", "normalize", "now", "nth_value", "ntile", "num_nonnulls",
    "num_nulls", "numeric", "numnode", "numrange", "obj_description", "octet_length",
    "overlaps", "overlay", "parse_ident", "percent_rank", "percentile_cont",
    "percentile_disc", "pg_backend_pid", "pg_blocking_pids", "pg_client_encoding",
    "pg_column_compression", "pg_column_size", "pg_conf_load_time", "pg_current_snapshot",
    "pg_current_xact_id_if_assigned", "pg_database_size", "pg_encoding_to_char",
    "pg_function_is_visible", "pg_get_constraintdef", "pg_get_expr",
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

// Functions that write nothing but work only on the primary: currval and lastval report
// this session's last nextval, which cannot have run on a standby; the WAL positions
// fail during recovery.
constexpr std::array kPrimaryOnlyFunctions = std::to_array<std::string_view>({
    "currval", "lastval", "pg_current_wal_flush_lsn", "pg_current_wal_insert_lsn",
    "pg_current_wal_lsn",
});
static_assert(std::ranges::is_sorted(kPrimaryOnlyFunctions));

// Functions known to write, lock or change session state. Listed only for a clearer
// reason: not being read-only is enough to make a call a write.
constexpr std::array kWritingFunctions = std::to_array<std::string_view>({
    "loread", "lowrite", "nextval", "pg_backup_start", "pg_backup_stop",
    "pg_cancel_backend", "pg_create_restore_point", "pg_current_xact_id",
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

}  // namespace

FunctionKind builtin_function_kind(std::string_view name) {
  if (is_listed(kReadOnlyFunctions, name)) return FunctionKind::ReadOnly;
  if (is_listed(kPrimaryOnlyFunctions, name)) return FunctionKind::PrimaryOnly;
  if (is_listed(kWritingFunctions, name)) return FunctionKind::Writes;
  const bool in_family = std::ranges::any_of(
      kWritingPrefixes, [name](std::string_view prefix) { return name.starts_with(prefix); });
  return in_family ? FunctionKind::Writes : FunctionKind::Unknown;
}

}  // namespace pgsidecar::sql
