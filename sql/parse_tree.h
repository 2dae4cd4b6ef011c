// Reading libpg_query's JSON parse tree (simdjson DOM), shared by the classifier and the
// session-effect reader. Internal to sql/.
#pragma once

#include "sql/layer.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "sql/session_effects.h"

namespace pgsidecar::sql::tree {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// --- reading libpg_query's JSON parse tree ----------------------------------------------
// A node is {"TypeName": {fields}}; lists are arrays of nodes; fields that hold zero,
// false or nothing are left out.

inline std::string_view string_field(object o, std::string_view key) {
  std::string_view out;
  if (o[key].get(out) != simdjson::SUCCESS) return {};
  return out;
}

inline bool bool_field(object o, std::string_view key) {
  bool out = false;
  if (o[key].get(out) != simdjson::SUCCESS) return false;
  return out;
}

// False when the list is absent (empty lists are left out too). A default-constructed
// simdjson array must not be iterated, hence no "empty array" fallback.
inline bool array_field(object o, std::string_view key, array& out) {
  return o[key].get(out) == simdjson::SUCCESS;
}

// Splits a node into its type name and body; false when `e` is not a node.
inline bool unwrap(element e, std::string_view& type, object& body) {
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
inline std::optional<bool> parse_bool(std::string_view s) {
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

inline std::optional<bool> int_as_bool(object holder, std::string_view key) {
  int64_t value = 0;
  if (const auto err = holder[key].get(value); err != simdjson::SUCCESS && err != simdjson::NO_SUCH_FIELD)
    return std::nullopt;
  if (value == 0 || value == 1) return value == 1;
  return std::nullopt;
}

// The boolean a SET value or option argument spells: an A_Const, String, Integer or
// Boolean node (READ ONLY arrives as the integer 1, `= on` as the string "on").
inline std::optional<bool> node_as_bool(element node) {
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

// The text of an A_Const or String node ("serializable"); empty for anything else.
inline std::string_view node_as_string(element node) {
  std::string_view type;
  object body;
  if (!unwrap(node, type, body)) return {};
  if (type == "String") return string_field(body, "sval");
  object inner;
  if (type == "A_Const" && body["sval"].get(inner) == simdjson::SUCCESS)
    return string_field(inner, "sval");
  return {};
}

// A DO statement's code (its "as" argument); "set_config" when unreadable, so that it
// counts as setting.
inline std::string_view do_body(object body) {
  array args;
  if (array_field(body, "args", args)) {
    for (element a : args) {
      std::string_view type;
      object def;
      element arg;
      if (unwrap(a, type, def) && type == "DefElem" && string_field(def, "defname") == "as" &&
          def["arg"].get(arg) == simdjson::SUCCESS)
        return node_as_string(arg);
    }
  }
  return "set_config";
}

// A name list: ["f"], ["schema", "f"] or ["catalog", "schema", "f"].
inline std::size_t name_parts(object o, std::string_view key, std::array<std::string_view, 3>& parts) {
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

// Appends what one statement (a node of the "stmts" list's "stmt") leaves on its session.
// `do_may_set`: the text names set_config, so a DO block may change settings unseen.
// `sql`: the text the tree was parsed from (locations point into it).
void collect_session_effects(element stmt, std::string_view sql, bool do_may_set, StatementEffects& out);

}  // namespace pgsidecar::sql::tree
