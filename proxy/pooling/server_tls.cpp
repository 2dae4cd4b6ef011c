#include "proxy/pooling/server_tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <utility>

namespace pgsidecar::proxy {
namespace {

constexpr std::array<std::pair<std::string_view, SslMode>, 6> kModes{{
    {"disable", SslMode::Disable},
    {"allow", SslMode::Allow},
    {"prefer", SslMode::Prefer},
    {"require", SslMode::Require},
    {"verify-ca", SslMode::VerifyCa},
    {"verify-full", SslMode::VerifyFull},
}};

std::string option(const config::ServerAddress& a, const std::string& key) {
  const auto it = a.options.find(key);
  return it != a.options.end() ? it->second : std::string();
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// libpq's default files live in ~/.postgresql.
std::string default_file(const char* name) {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return {};
  std::string path = std::string(home) + "/.postgresql/" + name;
  std::error_code ec;
  return std::filesystem::exists(path, ec) ? path : std::string();
}

ServerAuthPolicy auth_policy(const config::ServerAddress& a) {
  ServerAuthPolicy p;
  const std::string binding = option(a, "channel_binding");
  if (binding == "disable") p.binding = ChannelBinding::Disable;
  if (binding == "require") p.binding = ChannelBinding::Require;
  if (a.require_auth.empty()) return p;
  p.password = p.md5 = p.scram = p.none = false;
  std::size_t start = 0;
  while (start <= a.require_auth.size()) {
    const std::size_t comma = std::min(a.require_auth.find(',', start), a.require_auth.size());
    const std::string_view m = std::string_view(a.require_auth).substr(start, comma - start);
    p.password = p.password || m == "password";
    p.md5 = p.md5 || m == "md5";
    p.scram = p.scram || m == "scram-sha-256";
    p.none = p.none || m == "none";
    start = comma + 1;
  }
  return p;
}

}  // namespace

ServerTls::ServerTls(const config::ServerAddress& a) : auth_(auth_policy(a)) {
  for (const auto& [name, mode] : kModes)
    if (a.sslmode == name) mode_ = mode;
  if (mode_ == SslMode::Disable) return;  // allow: TLS on its second attempt

  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) {
    error_ = io::openssl_error("could not create a TLS context");
    return;
  }
  // Idle server connections keep no read and write buffers.
  SSL_CTX_set_mode(ctx_, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_min_proto_version(ctx_, io::tls_protocol_version(option(a, "ssl_min_protocol_version")));
  if (const std::string max = option(a, "ssl_max_protocol_version"); !max.empty())
    SSL_CTX_set_max_proto_version(ctx_, io::tls_protocol_version(max));

  std::string root = option(a, "sslrootcert");
  if (root.empty()) root = default_file("root.crt");
  if (root == "system") {
    SSL_CTX_set_default_verify_paths(ctx_);
    verify_peer_ = true;
  } else if (!root.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_, root.c_str(), nullptr) != 1) {
      error_ = io::openssl_error("could not read root certificate file \"" + root + "\"");
      return;
    }
    // libpq: with a root certificate, require verifies the chain as verify-ca does.
    verify_peer_ = true;
  } else if (mode_ >= SslMode::VerifyCa) {
    error_ = "sslmode=" + a.sslmode +
             " needs a root certificate: set sslrootcert (a file, or \"system\") or provide ~/.postgresql/root.crt";
    return;
  }
  if (const std::string crl = option(a, "sslcrl"); !crl.empty() && verify_peer_) {
    X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
    if (X509_STORE_load_file(store, crl.c_str()) != 1) {
      error_ = io::openssl_error("could not read certificate revocation list \"" + crl + "\"");
      return;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  }
  SSL_CTX_set_verify(ctx_, verify_peer_ ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);

  std::string cert = option(a, "sslcert");
  std::string key = option(a, "sslkey");
  if (cert.empty()) cert = default_file("postgresql.crt");
  if (key.empty()) key = default_file("postgresql.key");
  if (!cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) != 1) {
      error_ = io::openssl_error("could not read client certificate \"" + cert + "\"");
      return;
    }
    if (key.empty() || SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx_) != 1) {
      error_ = io::openssl_error("could not read the private key \"" + key + "\" of client certificate \"" + cert + "\"");
      return;
    }
  }

  // With hostaddr the name for the certificate check is the URL's host= (options["host"]).
  std::string name = option(a, "host");
  if (name.empty()) name = a.host;
  if (mode_ == SslMode::VerifyFull) verify_host_ = name;
  if (option(a, "sslsni") != "0" && !is_ip_literal(name)) sni_ = name;
}

ServerTls::~ServerTls() {
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

std::unique_ptr<io::TlsStream> ServerTls::start(uv_stream_t* stream, std::string& error) const {
  if (!error_.empty() || ctx_ == nullptr) {
    error = error_.empty() ? "TLS is not configured" : error_;
    return nullptr;
  }
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) {
    error = io::openssl_error("could not create a TLS session");
    return nullptr;
  }
  SSL_set_connect_state(ssl);
  // SSL_set_tlsext_host_name, without the macro's C cast.
  if (!sni_.empty())
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(sni_.c_str()));
  if (!verify_host_.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    const int ok = is_ip_literal(verify_host_) ? X509_VERIFY_PARAM_set1_ip_asc(param, verify_host_.c_str())
                                               : SSL_set1_host(ssl, verify_host_.c_str());
    if (ok != 1) {
      SSL_free(ssl);
      error = io::openssl_error("could not set the host name to verify");
      return nullptr;
    }
  }
  return std::make_unique<io::TlsStream>(ssl, stream);
}

}  // namespace pgsidecar::proxy
