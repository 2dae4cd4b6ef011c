#include "proxy/pooling/server_address.h"

#include <netdb.h>
#include <netinet/in.h>

#include <cstring>

namespace pgsidecar::proxy {

bool resolve_server_address(const ServerTarget& target, ResolvedAddress& out, std::string& error) {
  if (!target.host.empty() && target.host.front() == '/') {
    out.is_unix = true;
    out.unix_path = target.host + "/.s.PGSQL." + std::to_string(target.port);
    return true;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const std::string port = std::to_string(target.port);
  const int rc = ::getaddrinfo(target.host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    error = "could not resolve host \"" + target.host + "\": " + ::gai_strerror(rc);
    return false;
  }
  std::memcpy(&out.addr, result->ai_addr, result->ai_addrlen);
  ::freeaddrinfo(result);
  return true;
}

}  // namespace pgsidecar::proxy
