// The client side of logging into a server: answers the server's authentication request
// (cleartext password, MD5, SCRAM-SHA-256 or SCRAM-SHA-256-PLUS) with the pool's server
// credentials, within what the URL allows (ServerAuthPolicy): never a cleartext password
// without TLS, never a login without authentication unless require_auth says none. The
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
#include "proxy/io/tls_stream.h"
#include "proxy/pooling/server_address.h"
#include "proxy/pooling/server_tls.h"

namespace pgsidecar::proxy {

class ServerLogin {
 public:
  // `tls`: the established TLS session, or null on a plain connection. A server asking for
  // more than `max_scram_iterations` ([limits]) is refused.
  ServerLogin(const ServerTarget& target, const ServerAuthPolicy& policy, io::TlsStream* tls, int max_scram_iterations)
      : target_(target), policy_(policy), tls_(tls), max_scram_iterations_(max_scram_iterations) {}

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
  Step start_scram(std::span<const std::byte> mechanisms, std::vector<std::byte>& reply, ProxyError& error);
  // A refusal of the URL's policy, or "" when `method` may be answered.
  std::string refused(std::string_view method, bool allowed) const;

  const ServerTarget& target_;
  const ServerAuthPolicy& policy_;
  io::TlsStream* tls_;
  int max_scram_iterations_;
  std::unique_ptr<protocol::ScramClient> scram_;
  std::unique_ptr<protocol::ScramKeyDerivation> keys_;  // between DeriveKeys and keys_derived
  bool bound_ = false;          // SCRAM-SHA-256-PLUS chosen
  bool authenticated_ = false;  // a method ran to its end (SCRAM verified, or a password sent)
};

}  // namespace pgsidecar::proxy
