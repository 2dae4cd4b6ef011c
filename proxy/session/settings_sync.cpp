#include "proxy/session/settings_sync.h"

namespace pgsidecar::proxy {

uint64_t defaults_fingerprint(const ParamList& defaults) {
  if (defaults.empty()) return 0;
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::string_view s) {
    for (char c : s) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
    h ^= 0xff;
    h *= 1099511628211ull;
  };
  for (const auto& [k, v] : defaults) {
    mix(k);
    mix(v);
  }
  return h == 0 || h == ~uint64_t{0} ? 1 : h;  // ~0 is ServerConn::kSettingsUnknown
}

void append_string_literal(std::string& sql, std::string_view text) {
  // E'' reads backslashes the same way whatever standard_conforming_strings says.
  sql.append("E'");
  for (char c : text) {
    if (c == '\\' || c == '\'') sql.push_back(c);
    sql.push_back(c);
  }
  sql.push_back('\'');
}

void append_set_statement(std::string& sql, std::string_view name, std::string_view value) {
  // set_config() takes the value as the server stores it (a list such as search_path's
  // included), where SET would quote a list given as one string into one element.
  sql.append("SELECT pg_catalog.set_config(");
  append_string_literal(sql, name);
  sql.append(", ");
  append_string_literal(sql, value);
  sql.append(", false);");
}

std::optional<std::string> settings_sync_sql(const ParamMap& client_values, const ParamList& client_defaults,
                                             uint64_t /*client_fp*/, const ParamMap& server_values,
                                             bool after_reset) {
  std::string sql;
  if (after_reset)
    for (const auto& [k, v] : client_defaults) append_set_statement(sql, k, v);
  for (const auto& [k, v] : client_values.entries()) {
    if (!is_tracked_parameter(k)) continue;
    const std::string* current = server_values.find(k);
    if (!after_reset && current != nullptr && *current == v) continue;
    append_set_statement(sql, k, v);
  }
  if (sql.empty()) return std::nullopt;
  return sql;
}

}  // namespace pgsidecar::proxy
