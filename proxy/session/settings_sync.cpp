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
  return h == 0 ? 1 : h;
}

void append_set_statement(std::string& sql, std::string_view name, std::string_view value) {
  sql.append("SET \"");
  for (char c : name) {
    if (c == '"') sql.push_back('"');
    sql.push_back(c);
  }
  sql.append("\" TO '");
  for (char c : value) {
    if (c == '\'') sql.push_back('\'');
    sql.push_back(c);
  }
  sql.append("';");
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
