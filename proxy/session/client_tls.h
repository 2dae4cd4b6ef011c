// TLS toward clients ([tls], docs/tls.md): one OpenSSL server context made from the
// certificate, key and client CA files. The runtime makes one at start and a new one at
// every reload (SIGHUP); a connection's TLS session holds a reference to the context it
// started with, so reloading never touches established connections. Shared by all workers
// (SSL_new on a shared SSL_CTX is thread-safe); never changed after load().
#pragma once

#include "proxy/session/layer.h"

#include <openssl/ssl.h>
#include <uv.h>

#include <memory>
#include <string>

#include "config/schema.h"
#include "proxy/io/tls_stream.h"

namespace pgsidecar::proxy {

class ClientTlsContext {
 public:
  // Reads cert_file, key_file and ca_file; null with `error` when one cannot be used.
  static std::shared_ptr<const ClientTlsContext> load(const config::Tls& tls, std::string& error);
  explicit ClientTlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  ClientTlsContext(const ClientTlsContext&) = delete;
  ClientTlsContext& operator=(const ClientTlsContext&) = delete;
  ~ClientTlsContext();

  // A server-side TLS session over `stream`, waiting for the client's hello; null with `error`.
  std::unique_ptr<io::TlsStream> start(uv_stream_t* stream, std::string& error) const;

 private:
  SSL_CTX* ctx_;
};

}  // namespace pgsidecar::proxy
