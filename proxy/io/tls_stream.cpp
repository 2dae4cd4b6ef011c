#include "proxy/io/tls_stream.h"

#include <openssl/err.h>
#include <openssl/buffer.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>

namespace pgsidecar::proxy::io {
namespace {

// One queued write of ciphertext: the buffer travels with the request.
struct CipherWrite {
  uv_write_t req{};
  std::vector<char> bytes;
  uv_write_t* notify = nullptr;  // the caller's request, handed to cb
  uv_write_cb cb = nullptr;
  std::function<void(int)> done;
};

void on_cipher_written(uv_write_t* req, int status) {
  std::unique_ptr<CipherWrite> w(static_cast<CipherWrite*>(req->data));
  if (w->cb != nullptr) w->cb(w->notify, status);
  if (w->done) w->done(status);
}

}  // namespace

std::string openssl_error(std::string what) {
  char text[256];
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return what;
  ERR_error_string_n(e, text, sizeof text);
  return what + ": " + text;
}

int tls_protocol_version(std::string_view name) {
  if (name == "TLSv1") return TLS1_VERSION;
  if (name == "TLSv1.1") return TLS1_1_VERSION;
  if (name == "TLSv1.3") return TLS1_3_VERSION;
  return TLS1_2_VERSION;  // libpq's and PostgreSQL's default minimum
}

namespace {

BIO* new_memory_bio() {
  BIO* bio = BIO_new(BIO_s_mem());
  // An empty read BIO means "want more", not end of file.
  BIO_set_mem_eof_return(bio, -1);
  return bio;
}

std::size_t bio_capacity(BIO* bio) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  return mem != nullptr ? mem->max : 0;
}

}  // namespace

TlsStream::TlsStream(SSL* ssl, uv_stream_t* stream) : ssl_(ssl), stream_(stream) {
  rbio_ = new_memory_bio();
  wbio_ = new_memory_bio();
  SSL_set_bio(ssl_, rbio_, wbio_);
}

void TlsStream::release_buffers(std::size_t keep) {
  if (BIO_ctrl_pending(rbio_) > 0 || BIO_ctrl_pending(wbio_) > 0) return;
  if (bio_capacity(rbio_) + bio_capacity(wbio_) <= keep) return;
  rbio_ = new_memory_bio();
  wbio_ = new_memory_bio();
  SSL_set_bio(ssl_, rbio_, wbio_);  // frees the old ones
}

std::optional<std::string> TlsStream::verified_peer_common_name() const {
  if (SSL_get_verify_result(ssl_) != X509_V_OK) return std::nullopt;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return std::nullopt;
  X509_NAME* subject = X509_get_subject_name(cert);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at < 0) return std::nullopt;
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) return std::nullopt;
  std::string name(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  // A NUL inside the name could make "admin\0.evil" pass as "admin" elsewhere.
  if (name.find('\0') != std::string::npos) return std::nullopt;
  return name;
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

void TlsStream::set_error_from_queue(const char* what) {
  char text[256];
  const unsigned long e = ERR_get_error();
  error_ = what;
  if (e != 0) {
    ERR_error_string_n(e, text, sizeof text);
    error_ += ": ";
    error_ += text;
  }
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    error_ += " (certificate verify failed: ";
    error_ += X509_verify_cert_error_string(verify);
    error_ += ")";
  }
  ERR_clear_error();
}

TlsStream::Handshake TlsStream::handshake() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  Handshake out = Handshake::Done;
  if (rc != 1) {
    const int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_WANT_READ) {
      out = Handshake::More;
    } else {
      set_error_from_queue("TLS handshake failed");
      out = Handshake::Failed;
    }
  }
  // Also on failure: the alert tells the peer why.
  if (BIO_pending(wbio_) > 0 && send_cipher(nullptr, nullptr, {}) == Write::Failed && out != Handshake::Failed) {
    error_ = "TLS handshake failed: the connection broke";
    out = Handshake::Failed;
  }
  established_ = out == Handshake::Done;
  return out;
}

void TlsStream::received(const char* cipher, std::size_t n) { BIO_write(rbio_, cipher, static_cast<int>(n)); }

long TlsStream::read(std::span<std::byte> dest) {
  if (dest.empty()) return 0;
  ERR_clear_error();
  std::size_t n = 0;
  const int rc = SSL_read_ex(ssl_, dest.data(), dest.size(), &n);
  // A post-handshake message (a key update) may need an answer.
  if (BIO_pending(wbio_) > 0) send_cipher(nullptr, nullptr, {});
  if (rc == 1) return static_cast<long>(n);
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
      return 0;
    case SSL_ERROR_ZERO_RETURN:
      error_ = "the peer closed the TLS session";
      return -1;
    default:
      set_error_from_queue("TLS read failed");
      return -1;
  }
}

bool TlsStream::has_pending() const { return SSL_pending(ssl_) > 0 || BIO_ctrl_pending(rbio_) > 0; }

TlsStream::Write TlsStream::write(const uv_buf_t* bufs, unsigned count, uv_write_t* notify, uv_write_cb cb) {
  ERR_clear_error();
  for (unsigned i = 0; i < count; ++i) {
    if (bufs[i].len == 0) continue;
    std::size_t written = 0;
    // The write BIO grows as needed: with SSL_MODE_ENABLE_PARTIAL_WRITE off, this takes all.
    if (SSL_write_ex(ssl_, bufs[i].base, bufs[i].len, &written) != 1) {
      set_error_from_queue("TLS write failed");
      return Write::Failed;
    }
  }
  return send_cipher(notify, cb, {});
}

void TlsStream::write_owned(std::vector<std::byte> plain, std::function<void(int)> done) {
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(plain.data()), static_cast<unsigned>(plain.size()));
  ERR_clear_error();
  std::size_t written = 0;
  if (!plain.empty() && SSL_write_ex(ssl_, buf.base, buf.len, &written) != 1) {
    set_error_from_queue("TLS write failed");
    if (done) done(UV_EPROTO);
    return;
  }
  const Write result = send_cipher(nullptr, nullptr, done);
  if (result != Write::Queued && done) done(result == Write::Sent ? 0 : UV_EPIPE);
}

// Sent and Failed: `done` is not called (the caller does it). Queued: it runs when written.
TlsStream::Write TlsStream::send_cipher(uv_write_t* notify, uv_write_cb cb, std::function<void(int)> done) {
  char* data = nullptr;
  const long pending = BIO_get_mem_data(wbio_, &data);
  if (pending <= 0) return Write::Sent;
  uv_buf_t buf = uv_buf_init(data, static_cast<unsigned>(pending));
  // uv_try_write refuses (UV_EAGAIN) while earlier writes are queued, so order holds.
  const int written = uv_try_write(stream_, &buf, 1);
  if (written < 0 && written != UV_EAGAIN) {
    (void)BIO_reset(wbio_);
    error_ = uv_strerror(written);
    return Write::Failed;
  }
  const std::size_t taken = written > 0 ? static_cast<std::size_t>(written) : 0;
  if (taken == static_cast<std::size_t>(pending)) {
    (void)BIO_reset(wbio_);
    return Write::Sent;
  }
  auto w = std::make_unique<CipherWrite>();
  w->bytes.assign(data + taken, data + pending);
  (void)BIO_reset(wbio_);
  w->notify = notify;
  w->cb = cb;
  w->done = std::move(done);
  w->req.data = w.get();
  uv_buf_t rest = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
  if (uv_write(&w->req, stream_, &rest, 1, &on_cipher_written) != 0) return Write::Failed;
  w.release();  // freed in on_cipher_written
  return Write::Queued;
}

std::vector<unsigned char> TlsStream::server_end_point(bool own) const {
  std::vector<unsigned char> out;
  X509* cert = own ? SSL_get_certificate(ssl_) : SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr) return out;
  int md_nid = 0;
  const EVP_MD* md = nullptr;
  if (X509_get_signature_info(cert, &md_nid, nullptr, nullptr, nullptr) == 1) {
    // RFC 5929 section 4.1: MD5 and SHA-1 become SHA-256.
    if (md_nid == NID_md5 || md_nid == NID_sha1) md_nid = NID_sha256;
    md = EVP_get_digestbynid(md_nid);
  }
  if (md != nullptr) {
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (X509_digest(cert, md, hash, &len) == 1) out.assign(hash, hash + len);
  }
  if (!own) X509_free(cert);
  return out;
}

std::string TlsStream::protocol_and_cipher() const {
  return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
}

}  // namespace pgsidecar::proxy::io
