#include "proxy/session/client_tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>

namespace pgsidecar::proxy {
namespace {

// Only for the session cache OpenSSL insists on when it verifies peers; sessions are not
// resumed (no cache, no tickets): each would cost memory for every client.
constexpr unsigned char kSessionContext[] = "pgsidecar";

bool configure(SSL_CTX* ctx, const config::Tls& tls, std::string& error) {
  // Idle clients keep no record buffers; the memory BIOs are trimmed by the session.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_min_proto_version(ctx, io::tls_protocol_version(tls.min_protocol));
  if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert_file.c_str()) != 1) {
    error = io::openssl_error("could not read [tls] cert_file \"" + tls.cert_file + "\"");
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = io::openssl_error("could not read [tls] key_file \"" + tls.key_file + "\"");
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = io::openssl_error("[tls] key_file \"" + tls.key_file + "\" does not match cert_file \"" + tls.cert_file +
                              "\"");
    return false;
  }
  if (tls.ca_file.empty()) return true;
  // As PostgreSQL with ssl_ca_file: ask every client for a certificate, verify one that is
  // sent (a bad one fails the handshake), and let clients without one in (they log in by
  // password; auth_method "cert" refuses them).
  if (SSL_CTX_load_verify_locations(ctx, tls.ca_file.c_str(), nullptr) != 1) {
    error = io::openssl_error("could not read [tls] ca_file \"" + tls.ca_file + "\"");
    return false;
  }
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.ca_file.c_str());
  if (names == nullptr) {
    error = io::openssl_error("no CA names in [tls] ca_file \"" + tls.ca_file + "\"");
    return false;
  }
  SSL_CTX_set_client_CA_list(ctx, names);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, nullptr);
  return true;
}

}  // namespace

std::shared_ptr<const ClientTlsContext> ClientTlsContext::load(const config::Tls& tls, std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    error = io::openssl_error("could not create a TLS context");
    return nullptr;
  }
  auto out = std::make_shared<const ClientTlsContext>(ctx);
  if (!configure(ctx, tls, error)) return nullptr;
  return out;
}

ClientTlsContext::~ClientTlsContext() { SSL_CTX_free(ctx_); }

std::unique_ptr<io::TlsStream> ClientTlsContext::start(uv_stream_t* stream, std::string& error) const {
  SSL* ssl = SSL_new(ctx_);  // holds a reference to ctx_: a reload does not free it under us
  if (ssl == nullptr) {
    error = io::openssl_error("could not create a TLS session");
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return std::make_unique<io::TlsStream>(ssl, stream);
}

}  // namespace pgsidecar::proxy
