// TLS toward one server and the authentication it may ask for, as its postgres:// URL says,
// with libpq's parameter names and meanings: sslmode (default prefer), sslrootcert,
// sslcert, sslkey, sslcrl, sslsni, ssl_min_protocol_version, channel_binding, and
// require_auth. Built once per pool; server logins and cancel requests share it.
#pragma once

#include "proxy/pooling/layer.h"

#include <openssl/ssl.h>
#include <uv.h>

#include <memory>
#include <string>

#include "config/schema.h"
#include "proxy/io/tls_stream.h"

namespace pgsidecar::proxy {

enum class SslMode { Disable, Allow, Prefer, Require, VerifyCa, VerifyFull };
enum class ChannelBinding { Disable, Prefer, Require };

// Which authentication requests a server login answers (require_auth, channel_binding).
struct ServerAuthPolicy {
  bool password = true;  // cleartext: only ever over TLS, whatever this says
  bool md5 = true;
  bool scram = true;
  bool none = false;  // a server that asks for nothing
  ChannelBinding binding = ChannelBinding::Prefer;
};

class ServerTls {
 public:
  explicit ServerTls(const config::ServerAddress& address);
  ServerTls(const ServerTls&) = delete;
  ServerTls& operator=(const ServerTls&) = delete;
  ~ServerTls();

  SslMode mode() const { return mode_; }
  // Ask for TLS on this connection (never on a Unix socket, as libpq).
  bool wanted(bool unix_socket) const { return !unix_socket && mode_ >= SslMode::Prefer; }
  // No TLS, no connection.
  bool required() const { return mode_ >= SslMode::Require; }
  // Certificates or keys that could not be loaded: every TLS attempt fails with it.
  const std::string& error() const { return error_; }
  const ServerAuthPolicy& auth() const { return auth_; }

  // A client-side TLS session over `stream`, host check and SNI set; null with `error`.
  std::unique_ptr<io::TlsStream> start(uv_stream_t* stream, std::string& error) const;

 private:
  SslMode mode_ = SslMode::Prefer;
  ServerAuthPolicy auth_;
  SSL_CTX* ctx_ = nullptr;
  bool verify_peer_ = false;
  std::string verify_host_;  // verify-full: the name (or IP address) the certificate must carry
  std::string sni_;          // empty: none (an IP address, or sslsni=0)
  std::string error_;
};

}  // namespace pgsidecar::proxy
