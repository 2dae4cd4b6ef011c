// Session settings a pool's servers accepted: a SET of one of these values is answered
// without a server the next time (docs/pooling.md, "Round trips saved"), since PostgreSQL
// would only answer its tag, and the setting travels with the client's next statement.
// A value never seen goes to a server first, so a bad one still fails on its SET.
#pragma once

#include "proxy/session/layer.h"

#include <cstddef>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>

namespace pgsidecar::proxy {

class AcceptedSettings {
 public:
  // `name` in lower case, `value` as set_config() takes it.
  void learn(std::string_view name, std::string_view value);
  bool accepts(std::string_view name, std::string_view value) const;
  bool knows(std::string_view name) const { return values_.find(name) != values_.end(); }

  // Values remembered per pool and worker; past this, nothing new is learnt (a client
  // setting ever-new values still has each answered by a server).
  static constexpr std::size_t kMaxValues = 1024;

 private:
  std::map<std::string, std::set<std::string, std::less<>>, std::less<>> values_;
  std::size_t count_ = 0;
};

}  // namespace pgsidecar::proxy
