#include "proxy/session/accepted_settings.h"

namespace pgsidecar::proxy {

void AcceptedSettings::learn(std::string_view name, std::string_view value) {
  if (count_ >= kMaxValues || accepts(name, value)) return;
  auto it = values_.find(name);
  if (it == values_.end()) it = values_.emplace(std::string(name), std::set<std::string, std::less<>>{}).first;
  it->second.emplace(value);
  ++count_;
}

bool AcceptedSettings::accepts(std::string_view name, std::string_view value) const {
  const auto it = values_.find(name);
  return it != values_.end() && it->second.find(value) != it->second.end();
}

}  // namespace pgsidecar::proxy
