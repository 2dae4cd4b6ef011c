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
  if (req.code == protocol::kAuthOk) {
    // A server that asks for nothing may not be the one we meant (or a downgrade).
    if (!authenticated_ && !policy_.none)
      return fail(error, ProxyErrc::ServerAuthRefused,
                  "server did not ask for authentication, and the URL's require_auth does not list none");
    if (policy_.binding == ChannelBinding::Require && !bound_)
      return fail(error, ProxyErrc::ServerAuthRefused,
                  "channel_binding=require, but the server did not authenticate with SCRAM-SHA-256-PLUS");
    return Step::Authenticated;
  }
  if (req.code == protocol::kAuthCleartextPassword && tls_ == nullptr)
    return fail(error, ProxyErrc::ServerAuthRefused,
                "server asked for a cleartext password over an unencrypted connection; pgsidecar sends one only "
                "over TLS (sslmode=require or above)");
  if (target_.password.empty()) {
    error = make_error(ProxyErrc::ServerNeedsPassword, {target_.user});
    return Step::Failed;
  }
  std::string problem;
  switch (req.code) {
    case protocol::kAuthCleartextPassword:
      if (auto why = refused("password", policy_.password); !why.empty())
        return fail(error, ProxyErrc::ServerAuthRefused, why);
      protocol::append_password_message(reply, target_.password);
      authenticated_ = true;
      return Step::Reply;
    case protocol::kAuthMd5Password:
      if (auto why = refused("md5", policy_.md5); !why.empty()) return fail(error, ProxyErrc::ServerAuthRefused, why);
      if (req.data.size() < kMd5SaltLength)
        return fail(error, ProxyErrc::ServerProtocolViolation, "malformed MD5 salt");
      protocol::append_password_message(
          reply, protocol::md5_salted_response(target_.password, target_.user, req.data.first<kMd5SaltLength>()));
      authenticated_ = true;
      return Step::Reply;
    case protocol::kAuthSasl:
      if (auto why = refused("scram-sha-256", policy_.scram); !why.empty())
        return fail(error, ProxyErrc::ServerAuthRefused, why);
      return start_scram(req.data, reply, error);
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
      authenticated_ = true;
      return Step::Authenticated;
    default:
      return fail(error, ProxyErrc::ServerAuthFailed,
                  "server asked for an unsupported authentication method (code " + std::to_string(req.code) + ")");
  }
}

std::string ServerLogin::refused(std::string_view method, bool allowed) const {
  if (policy_.binding == ChannelBinding::Require && method != "scram-sha-256")
    return "channel_binding=require, but the server asked for " + std::string(method) + " authentication";
  if (!allowed) return "server asked for " + std::string(method) + " authentication, which the URL's require_auth does not list";
  return {};
}

// SCRAM-SHA-256-PLUS (tls-server-end-point) when the connection is TLS, the server offers
// it and channel_binding is not disable; "y" when the client could bind but the server
// offered no PLUS (RFC 5802 section 6: a server that offers it would know a downgrade).
ServerLogin::Step ServerLogin::start_scram(std::span<const std::byte> data, std::vector<std::byte>& reply,
                                           ProxyError& error) {
  std::vector<std::string_view> mechanisms;
  bool scram = false, plus = false;
  if (protocol::parse_sasl_mechanisms(data, mechanisms)) {
    for (auto m : mechanisms) {
      scram = scram || m == "SCRAM-SHA-256";
      plus = plus || m == "SCRAM-SHA-256-PLUS";
    }
  }
  const bool can_bind = tls_ != nullptr && policy_.binding != ChannelBinding::Disable;
  std::string end_point;
  if (can_bind && plus) {
    const std::vector<unsigned char> hash = tls_->server_end_point(false);
    end_point.assign(hash.begin(), hash.end());
  }
  if (policy_.binding == ChannelBinding::Require && end_point.empty())
    return fail(error, ProxyErrc::ServerAuthRefused,
                tls_ == nullptr ? "channel_binding=require, but the connection to the server is not TLS"
                                : "channel_binding=require, but the server does not offer SCRAM-SHA-256-PLUS");
  if (!scram && end_point.empty())
    return fail(error, ProxyErrc::ServerAuthFailed, "server offers no SASL mechanism pgsidecar supports");
  scram_ = std::make_unique<protocol::ScramClient>(target_.password, protocol::NonceSource{}, std::string{},
                                                   max_scram_iterations_);
  bound_ = !end_point.empty();
  if (bound_) scram_->set_channel_binding('p', std::move(end_point));
  else if (can_bind) scram_->set_channel_binding('y');
  protocol::append_sasl_initial_response(reply, bound_ ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256", scram_->client_first());
  return Step::Reply;
}

void ServerLogin::keys_derived(const protocol::ScramKeyDerivation& keys, std::vector<std::byte>& reply) {
  protocol::append_sasl_response(reply, scram_->client_final(keys));
}

}  // namespace pgsidecar::proxy
