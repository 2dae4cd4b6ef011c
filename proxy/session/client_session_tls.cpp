// ClientSession's side of TLS toward clients ([tls], docs/tls.md): the answer to
// SSLRequest, the handshake and decryption on the worker's loop (memory BIOs, no thread),
// client_tls = "require", certificate logins, and SCRAM-SHA-256-PLUS. Writes go through
// client_stream(), which carries the TLS session once there is one.
#include "protocol/messages.h"
#include "proxy/core/log.h"
#include "proxy/session/client_session.h"

namespace pgsidecar::proxy {
namespace {

constexpr std::string_view kScram = "SCRAM-SHA-256";
constexpr std::string_view kScramPlus = "SCRAM-SHA-256-PLUS";

}  // namespace

bool ClientSession::answer_ssl_request() {
  std::shared_ptr<const ClientTlsContext> context = host_.client_tls();
  // The Unix socket never speaks TLS, as in PostgreSQL.
  if (!tcp_ || !config_->tls.enabled() || context == nullptr) {
    send_own({std::byte{'N'}});
    return true;
  }
  // Bytes behind the SSLRequest came before the handshake, unprotected: a man in the
  // middle may have put them there to be taken as the client's (CVE-2021-23214).
  if (!input_.unread().empty()) {
    fail_login(make_error(ProxyErrc::ProtocolViolation, {"received unencrypted data after SSL request"}));
    return false;
  }
  send_own({std::byte{'S'}});  // plain: tls_ is not set yet
  std::string error;
  tls_ = context->start(stream_.stream, error);
  if (tls_ == nullptr) {
    log_warn("client_tls_failed").kv("worker", host_.loop().id()).kv("session", static_cast<long long>(id_)).kv("error", error);
    close("TLS unavailable");
    return false;
  }
  return true;
}

bool ClientSession::pull_tls() {
  if (!tls_->established()) {
    switch (tls_->handshake()) {
      case io::TlsStream::Handshake::More:
        return true;
      case io::TlsStream::Handshake::Failed:
        log_info("client_tls_failed")
            .kv("worker", host_.loop().id())
            .kv("session", static_cast<long long>(id_))
            .kv("error", tls_->error());
        close("TLS handshake failed");
        return false;
      case io::TlsStream::Handshake::Done:
        log_debug("client_tls_established")
            .kv("worker", host_.loop().id())
            .kv("session", static_cast<long long>(id_))
            .kv("tls", tls_->protocol_and_cipher());
        break;
    }
  }
  while (!input_.full()) {
    const uv_buf_t space = input_.free_space();
    const long n = tls_->read({reinterpret_cast<std::byte*>(space.base), space.len});
    if (n == 0) break;
    if (n < 0) {
      close(tls_->error());
      return false;
    }
    input_.commit(static_cast<std::size_t>(n));
  }
  return true;
}

bool ClientSession::tls_refused_plain() {
  if (config_->tls.client_tls != config::ClientTlsMode::Require || !tcp_ || tls_ != nullptr) return false;
  fail_login(make_error(ProxyErrc::TlsRequired));
  return true;
}

// PostgreSQL's cert method: a certificate verified against [tls] ca_file, whose common
// name is the user name. An unknown user fails as a wrong name does.
bool ClientSession::check_client_certificate() {
  const std::optional<std::string> name = tls_ != nullptr ? tls_->verified_peer_common_name() : std::nullopt;
  if (!name) {
    fail_login(make_error(ProxyErrc::ClientCertificateMissing));
    return false;
  }
  if (!login_->user_known || *name != user_name_) {
    log_info("client_certificate_mismatch")
        .kv("worker", host_.loop().id())
        .kv("session", static_cast<long long>(id_))
        .kv("user", user_name_)
        .kv("common_name", *name);
    fail_login(make_error(ProxyErrc::CertificateAuthFailed, {user_name_}));
    return false;
  }
  return true;
}

void ClientSession::offer_sasl(std::vector<std::byte>& out) {
  if (tls_ != nullptr) {
    const std::string_view both[] = {kScramPlus, kScram};
    protocol::append_authentication_sasl(out, both);
  } else {
    const std::string_view plain[] = {kScram};
    protocol::append_authentication_sasl(out, plain);
  }
}

bool ClientSession::select_sasl(std::string_view mechanism) {
  const bool plus = mechanism == kScramPlus && tls_ != nullptr;
  if (mechanism != kScram && !plus) {
    fail_login(make_error(ProxyErrc::ProtocolViolation,
                          {"client selected an invalid SASL authentication mechanism \"" + std::string(mechanism) + "\""}));
    return false;
  }
  // Over TLS PLUS was offered, so a client that says it could bind but thinks we cannot
  // ('y') is refused by the SCRAM exchange.
  if (tls_ != nullptr) login_->scram->set_channel_binding(tls_->server_end_point(true), plus);
  return true;
}

}  // namespace pgsidecar::proxy
