// The client side of logging into a server: answers the server's authentication request
// (cleartext password, MD5 or SCRAM-SHA-256) with the pool's server credentials. The
// server connection feeds it each Authentication message; everything else of the login
// (ParameterStatus, BackendKeyData, ReadyForQuery) is the connection's own business.
#pragma once

#include "proxy/pooling/layer.h"

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "protocol/scram.h"
#include "proxy/core/errors.h"
#include "proxy/pooling/server_address.h"

namespace pgsidecar::proxy {

class ServerLogin {
 public:
  explicit ServerLogin(const ServerTarget& target) : target_(target) {}

  // The StartupMessage that opens the login.
  std::vector<std::byte> startup_message() const;

  enum class Step {
    Reply,          // `reply` holds the answer to send
    Authenticated,  // AuthenticationOk, or SCRAM verified: wait for ReadyForQuery
    Failed,         // `error` says why; close the connection
  };
  // One Authentication (R) message's body.
  Step on_authentication(std::span<const std::byte> body, std::vector<std::byte>& reply, ProxyError& error);

 private:
  Step fail(ProxyError& error, ProxyErrc code, std::string what);

  const ServerTarget& target_;
  std::unique_ptr<protocol::ScramClient> scram_;
};

}  // namespace pgsidecar::proxy
