// ServerConn's TLS negotiation (libpq's order): SSLRequest, the server's one-byte answer,
// the handshake on memory BIOs, then the login over the TLS session. server_conn.cpp
// keeps the rest of the connection.
#include "protocol/messages.h"
#include "proxy/core/log.h"
#include "proxy/pooling/pool_shard.h"
#include "proxy/pooling/server_conn.h"

namespace pgsidecar::proxy {
namespace {

constexpr char kTlsAccepted = 'S';
constexpr char kTlsRefused = 'N';

const char* mode_name(SslMode m) {
  switch (m) {
    case SslMode::Disable: return "disable";
    case SslMode::Allow: return "allow";
    case SslMode::Prefer: return "prefer";
    case SslMode::Require: return "require";
    case SslMode::VerifyCa: return "verify-ca";
    case SslMode::VerifyFull: return "verify-full";
  }
  return "?";
}

std::string endpoint(const ServerTarget& t) { return t.host + ":" + std::to_string(t.port); }

}  // namespace

void ServerConn::ask_for_tls() {
  const ServerTls& tls = pool_.tls();
  if (tls_retry_) {  // what the refused connection sent after its ErrorResponse is not this one's
    input_.consume(input_.unread().size());
    input_.compact();
    input_.release_if_empty();
  } else if (!tls.wanted(pool_.address().is_unix)) {
    start_login();
    return;
  }
  if (!tls.error().empty()) {
    fail_login(make_error(ProxyErrc::ServerTlsFailed, {endpoint(pool_.target()), tls.error()}));
    return;
  }
  tls_step_ = TlsStep::AwaitingAnswer;
  std::vector<std::byte> request;
  protocol::append_ssl_request(request);
  send_own(std::move(request));
  start_reading();
}

void ServerConn::answer_to_tls() {
  const std::span<const std::byte> in = input_.unread();
  if (in.empty()) return;
  const ServerTarget& target = pool_.target();
  // CVE-2021-23222: bytes behind the answer came before the handshake, unprotected, and may
  // be a man in the middle's; never take them as the server's.
  if (in.size() > 1) {
    fail_login(make_error(ProxyErrc::ServerProtocolViolation,
                          {"server sent unencrypted data after its answer to SSLRequest"}));
    return;
  }
  const char answer = static_cast<char>(in[0]);
  input_.consume(1);
  input_.compact();
  input_.release_if_empty();
  tls_step_ = TlsStep::None;
  if (answer == kTlsRefused) {
    if (tls_retry_) {
      fail_login(make_error(ProxyErrc::ServerTlsFailed,
                            {endpoint(target), "the server refused the login without TLS and does not support TLS"}));
      return;
    }
    if (pool_.tls().required()) {
      fail_login(make_error(ProxyErrc::ServerTlsFailed,
                            {endpoint(target), std::string("the server does not support TLS, but sslmode=") +
                                                   mode_name(pool_.tls().mode()) + " requires it"}));
      return;
    }
    start_login();
    return;
  }
  if (answer != kTlsAccepted) {
    fail_login(make_error(ProxyErrc::ServerProtocolViolation, {"unexpected answer to SSLRequest from server"}));
    return;
  }
  std::string error;
  tls_ = pool_.tls().start(stream_->stream, error);
  if (tls_ == nullptr) {
    fail_login(make_error(ProxyErrc::ServerTlsFailed, {endpoint(target), error}));
    return;
  }
  tls_step_ = TlsStep::Handshaking;
  drain_tls();
}

bool ServerConn::retry_with_tls() {
  if (tls_retry_ || tls_ != nullptr || pool_.tls().mode() != SslMode::Allow || pool_.address().is_unix) return false;
  tls_retry_ = true;
  // The refused connection goes (its handle closes on its own); the login starts over on
  // a new socket, within the same connect timeout.
  if (reading_) uv_read_stop(stream_->stream);
  reading_ = false;
  handles_.close(stream_->handle());
  stream_ = &streams_[1];
  login_.reset();
  set_state(ServerState::Connecting, "sslmode=allow: trying again with TLS");
  open_stream();
  return true;
}

void ServerConn::drain_tls() {
  if (tls_step_ == TlsStep::Handshaking) {
    switch (tls_->handshake()) {
      case io::TlsStream::Handshake::More:
        return;
      case io::TlsStream::Handshake::Failed:
        fail_login(make_error(ProxyErrc::ServerTlsFailed, {endpoint(pool_.target()), tls_->error()}));
        return;
      case io::TlsStream::Handshake::Done:
        tls_step_ = TlsStep::None;
        log_debug("server_tls_established")
            .kv("worker", loop_.id())
            .kv("server", static_cast<long long>(id_))
            .kv("tls", tls_->protocol_and_cipher());
        start_login();
        break;
    }
  }
  // Decrypt only as much as the input buffer has room for: the rest waits in the TLS
  // session until a completed forward makes room (on_forward_written).
  while (!closing() && !input_.full()) {
    const uv_buf_t space = input_.free_space();
    const long n = tls_->read({reinterpret_cast<std::byte*>(space.base), space.len});
    if (n == 0) break;
    if (n < 0) {
      if (logging_in()) {
        fail_login(make_error(ProxyErrc::ServerTlsFailed, {endpoint(pool_.target()), tls_->error()}));
      } else {
        pool_.suspect_server();
        close(ServerCloseReason::ServerGone, tls_->error());
      }
      return;
    }
    input_.commit(static_cast<std::size_t>(n));
    process_input();
  }
}

}  // namespace pgsidecar::proxy
