#include "config/env.h"

#include <algorithm>
#include <cstdlib>

namespace pgsidecar::config {
namespace {

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

bool is_valid_name(std::string_view name) {
  return !name.empty() && is_name_start(name.front()) && std::all_of(name.begin(), name.end(), is_name_char);
}

void add_once(std::vector<std::string>& list, std::string_view item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.emplace_back(item);
}

}  // namespace

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const std::string key(name);  // getenv needs a NUL-terminated name
    const char* value = std::getenv(key.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

EnvLookup fixed_env(std::map<std::string, std::string, std::less<>> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string interpolate_env(std::string_view text, const EnvLookup& env, std::vector<std::string>& missing,
                            std::vector<std::string>* malformed) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    if (c != '$' || (next != '$' && next != '{')) {
      out.push_back(c);
      ++i;
      continue;
    }
    if (next == '$') {
      out.push_back('$');
      i += 2;
      continue;
    }
    const std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      // No closing brace: keep the rest as written rather than guess where it ends. Only
      // "${" is reported, since the rest may be a secret.
      if (malformed != nullptr) add_once(*malformed, "${");
      out.append(text.substr(i));
      break;
    }
    const std::string_view reference = text.substr(i, close + 1 - i);
    const std::string_view name = text.substr(i + 2, close - i - 2);
    i = close + 1;
    if (!is_valid_name(name)) {
      if (malformed != nullptr) add_once(*malformed, reference);
      out.append(reference);
      continue;
    }
    if (std::optional<std::string> value = env(name)) {
      out.append(*value);
    } else {
      add_once(missing, name);
      out.append(reference);
    }
  }
  return out;
}

}  // namespace pgsidecar::config
