#include "proxy/pooling/response_expectations.h"

namespace pgsidecar::proxy {

void ResponseExpectations::expect(char reply, bool swallow, std::string statement) {
  entries_.push_back(Entry{reply, swallow, std::move(statement)});
  if (reply == 'Z') ++pending_ready_;
}

ResponseExpectations::Entry ResponseExpectations::pop() {
  Entry e = std::move(entries_.front());
  entries_.pop_front();
  if (e.reply == 'Z') --pending_ready_;
  return e;
}

}  // namespace pgsidecar::proxy
