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
  // A server asking for more than `max_scram_iterations` ([limits]) is refused.
  ServerLogin(const ServerTarget& target, int max_scram_iterations)
      : target_(target), max_scram_iterations_(max_scram_iterations) {}

  // The StartupMessage that opens the login.
  std::vector<std::byte> startup_message() const;

  enum class Step {
    Reply,          // `reply` holds the answer to send
    DeriveKeys,     // SCRAM: run take_key_derivation()->derive(), then call keys_derived
    Authenticated,  // AuthenticationOk, or SCRAM verified: wait for ReadyForQuery
    Failed,         // `error` says why; close the connection
  };
  // One Authentication (R) message's body.
  Step on_authentication(std::span<const std::byte> body, std::vector<std::byte>& reply, ProxyError& error);

  // After Step::DeriveKeys: the PBKDF2 to run, off the event loop, and its result back;
  // keys_derived gives the SASLResponse to send.
  std::unique_ptr<protocol::ScramKeyDerivation> take_key_derivation() { return std::move(keys_); }
  void keys_derived(const protocol::ScramKeyDerivation& keys, std::vector<std::byte>& reply);

 private:
  Step fail(ProxyError& error, ProxyErrc code, std::string what);

  const ServerTarget& target_;
  int max_scram_iterations_;
  std::unique_ptr<protocol::ScramClient> scram_;
  std::unique_ptr<protocol::ScramKeyDerivation> keys_;  // between DeriveKeys and keys_derived
};

}  // namespace pgsidecar::proxy
