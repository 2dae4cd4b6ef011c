#include "proxy/pooling/server_login.h"

#include "protocol/backend.h"
#include "protocol/md5.h"
#include "protocol/messages.h"
#include "protocol/wire.h"
#include "proxy/pooling/parameters.h"

namespace pgsidecar::proxy {

namespace {
constexpr std::size_t kMd5SaltLength = 4;  // AuthenticationMD5Password: Byte4 salt
}  // namespace

std::vector<std::byte> ServerLogin::startup_message() const {
  ParamList params;
  params.emplace_back("user", target_.user);
  params.emplace_back("database", target_.database);
  for (const auto& p : target_.startup_options) params.push_back(p);
  std::vector<std::byte> out;
  protocol::append_startup_message(out, params);
  return out;
}

ServerLogin::Step ServerLogin::fail(ProxyError& error, ProxyErrc code, std::string what) {
  error = make_error(code, {what});
  return Step::Failed;
}

ServerLogin::Step ServerLogin::on_authentication(std::span<const std::byte> body, std::vector<std::byte>& reply,
                                                 ProxyError& error) {
  protocol::AuthenticationRequest req;
  if (!protocol::parse_authentication(body, req))
    return fail(error, ProxyErrc::ServerProtocolViolation, "malformed authentication request");
  if (req.code == protocol::kAuthOk) return Step::Authenticated;
  if (target_.password.empty()) {
    error = make_error(ProxyErrc::ServerNeedsPassword, {target_.user});
    return Step::Failed;
  }
  std::string problem;
  switch (req.code) {
    case protocol::kAuthCleartextPassword:
      protocol::append_password_message(reply, target_.password);
      return Step::Reply;
    case protocol::kAuthMd5Password:
      if (req.data.size() < kMd5SaltLength)
        return fail(error, ProxyErrc::ServerProtocolViolation, "malformed MD5 salt");
      protocol::append_password_message(
          reply, protocol::md5_salted_response(target_.password, target_.user, req.data.first<kMd5SaltLength>()));
      return Step::Reply;
    case protocol::kAuthSasl: {
      std::vector<std::string_view> mechanisms;
      bool scram = false;
      if (protocol::parse_sasl_mechanisms(req.data, mechanisms))
        for (auto m : mechanisms) scram = scram || m == "SCRAM-SHA-256";
      if (!scram) return fail(error, ProxyErrc::ServerAuthFailed, "server offers no SASL mechanism pgsidecar supports");
      scram_ = std::make_unique<protocol::ScramClient>(target_.password, protocol::NonceSource{}, std::string{},
                                                       max_scram_iterations_);
      protocol::append_sasl_initial_response(reply, "SCRAM-SHA-256", scram_->client_first());
      return Step::Reply;
    }
    case protocol::kAuthSaslContinue: {
      if (!scram_) return fail(error, ProxyErrc::ServerAuthFailed, "SCRAM exchange with server failed: unexpected message");
      switch (scram_->read_server_first(protocol::as_string_view(req.data), keys_, problem)) {
        case protocol::ScramClient::ServerFirst::Ok:
          break;
        case protocol::ScramClient::ServerFirst::Invalid:
          return fail(error, ProxyErrc::ServerAuthFailed, "SCRAM exchange with server failed: " + problem);
        case protocol::ScramClient::ServerFirst::TooManyIterations:
          error = make_error(ProxyErrc::ServerScramIterations, {std::to_string(scram_->requested_iterations()),
                                                                std::to_string(max_scram_iterations_)});
          return Step::Failed;
      }
      if (!keys_->derived) return Step::DeriveKeys;
      keys_derived(*keys_, reply);
      keys_.reset();
      return Step::Reply;
    }
    case protocol::kAuthSaslFinal:
      if (!scram_ || !scram_->verify_server_final(protocol::as_string_view(req.data), problem))
        return fail(error, ProxyErrc::ServerAuthFailed, "server failed SCRAM verification: " + problem);
      scram_.reset();
      return Step::Authenticated;
    default:
      return fail(error, ProxyErrc::ServerAuthFailed,
                  "server asked for an unsupported authentication method (code " + std::to_string(req.code) + ")");
  }
}

void ServerLogin::keys_derived(const protocol::ScramKeyDerivation& keys, std::vector<std::byte>& reply) {
  protocol::append_sasl_response(reply, scram_->client_final(keys));
}

}  // namespace pgsidecar::proxy
