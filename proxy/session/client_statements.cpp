#include "proxy/session/client_statements.h"

#include <cctype>
#include <utility>

namespace pgsidecar::proxy {

ClientStatements::AddResult ClientStatements::add(std::string_view name, std::string_view query,
                                                  std::span<const std::byte> param_types_raw, int16_t param_count,
                                                  bool sets_session_config, TextRoute route) {
  if (by_name_ == nullptr) by_name_ = std::make_unique<std::unordered_map<std::string, PreparedStatement>>();
  auto it = by_name_->find(std::string(name));
  if (it == by_name_->end() && by_name_->size() >= limit_) return AddResult::LimitReached;
  const std::size_t total = bytes_with(name, query);
  if (total > byte_limit_) return AddResult::BytesLimitReached;
  bytes_ = total;
  PreparedStatement stmt{make_statement(query, param_types_raw, param_count), sets_session_config, route};
  if (it != by_name_->end()) {
    it->second = std::move(stmt);
    return AddResult::Replaced;
  }
  by_name_->emplace(std::string(name), std::move(stmt));
  return AddResult::Added;
}

std::size_t ClientStatements::bytes_with(std::string_view name, std::string_view query) const {
  std::size_t total = bytes_ + cost(name, query);
  if (const PreparedStatement* old = find(name)) total -= cost(name, old->statement->query);
  return total;
}

const PreparedStatement* ClientStatements::find(std::string_view name) const {
  if (by_name_ == nullptr) return nullptr;
  auto it = by_name_->find(std::string(name));
  return it == by_name_->end() ? nullptr : &it->second;
}

PreparedStatement* ClientStatements::find(std::string_view name) {
  return const_cast<PreparedStatement*>(std::as_const(*this).find(name));
}

void ClientStatements::erase(std::string_view name) {
  if (by_name_ == nullptr) return;
  auto it = by_name_->find(std::string(name));
  if (it == by_name_->end()) return;
  bytes_ -= cost(name, it->second.statement->query);
  by_name_->erase(it);
}

namespace {

std::string_view skip_space(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  return s;
}

bool eat_keyword(std::string_view& s, std::string_view kw) {
  if (s.size() < kw.size()) return false;
  for (std::size_t i = 0; i < kw.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != kw[i]) return false;
  if (s.size() > kw.size()) {
    const unsigned char next = static_cast<unsigned char>(s[kw.size()]);
    if (std::isalnum(next) || next == '_') return false;
  }
  s.remove_prefix(kw.size());
  s = skip_space(s);
  return true;
}

}  // namespace

std::string deallocate_target(std::string_view sql) {
  std::string_view s = skip_space(sql);
  if (!eat_keyword(s, "deallocate")) return {};
  eat_keyword(s, "prepare");
  if (s.empty()) return {};
  std::string name;
  if (s.front() == '"') {  // quoted identifier, "" is a quote
    for (std::size_t i = 1; i < s.size(); ++i) {
      if (s[i] == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          name.push_back('"');
          ++i;
          continue;
        }
        return name;
      }
      name.push_back(s[i]);
    }
    return {};
  }
  for (char c : s) {  // unquoted identifiers fold to lower case
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$')) break;
    name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (name == "all") return {};
  return name;
}

}  // namespace pgsidecar::proxy
