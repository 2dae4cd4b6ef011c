// Turns a ServerTarget's host into something to connect to: a sockaddr for TCP, or the
// path of the server's Unix socket when the host is a directory.
#pragma once

#include "proxy/pooling/layer.h"

#include <sys/socket.h>

#include <string>

#include "proxy/pooling/parameters.h"

namespace pgsidecar::proxy {

// How the server to dial and log into is derived from the config for one pool.
struct ServerTarget {
  std::string host;  // IP, host name, or Unix socket directory
  uint16_t port = 5432;
  std::string user;
  std::string password;  // plain text, or empty
  std::string database;
  ParamList startup_options;  // from the URL's options=
};


struct ResolvedAddress {
  bool is_unix = false;
  std::string unix_path;      // <dir>/.s.PGSQL.<port>
  sockaddr_storage addr{};    // for TCP
};

// Numeric addresses resolve at once; names go through getaddrinfo (blocking: called when a
// pool is created, not per connection).
bool resolve_server_address(const ServerTarget& target, ResolvedAddress& out, std::string& error);

}  // namespace pgsidecar::proxy
