// TLS over a connected libuv stream, on the loop's own thread: OpenSSL works on two memory
// BIOs, and the stream carries only ciphertext. This is the one owner of a connection's SSL
// object and its BIOs. Plain connections have none, and forward as before.
//
// Reading: while TLS is on, the owner reads the socket into the loop's scratch space and
// hands it to received() at once (the read BIO copies it), then decrypts with read() into
// its own input buffer, as much as that buffer has room for: what does not fit waits in the
// BIO until the owner asks again (has_pending()), which is the read side's backpressure.
// Writing: write() encrypts and writes the ciphertext at once if the socket takes it; what
// it does not take is queued with uv_write, and the caller's callback runs when that is
// done, just as for a plain write: the source stops reading meanwhile.
#pragma once

#include "proxy/io/layer.h"

#include <openssl/ssl.h>
#include <uv.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pgsidecar::proxy::io {

class TlsStream {
 public:
  // Takes `ssl`, set up by the caller as a client or a server (SSL_set_connect_state or
  // SSL_set_accept_state), host checks and SNI included.
  TlsStream(SSL* ssl, uv_stream_t* stream);
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;
  ~TlsStream();  // queued ciphertext writes own their buffers and outlive it

  enum class Handshake { Done, More, Failed };
  // Goes on with the handshake on the ciphertext received so far; sends what it made.
  Handshake handshake();
  bool established() const { return established_; }
  const std::string& error() const { return error_; }  // why handshake() or read() failed

  void received(const char* cipher, std::size_t n);
  // Decrypts into `dest`: the byte count; 0 when more ciphertext is needed; -1 when the
  // peer closed the TLS session or broke it (error() says which).
  long read(std::span<std::byte> dest);
  bool has_pending() const;  // read() may give more without another socket read

  enum class Write {
    Sent,    // the socket took all of it; no callback follows
    Queued,  // `cb(notify, status)` runs once the rest is written (or failed)
    Failed,  // the socket is broken or TLS failed
  };
  Write write(const uv_buf_t* bufs, unsigned count, uv_write_t* notify, uv_write_cb cb);
  // The proxy's own message; done(status) runs exactly once.
  void write_owned(std::vector<std::byte> plain, std::function<void(int)> done);

  // Gives the memory BIOs' buffers back when they are empty and hold more than `keep`
  // bytes between them: a BIO keeps the room of its largest write (a handshake, a large
  // result), which an idle connection does not need. SSL_MODE_RELEASE_BUFFERS frees
  // OpenSSL's own record buffers.
  void release_buffers(std::size_t keep);
  // The common name of the peer's certificate once OpenSSL verified it; nullopt without a
  // certificate, when verification failed, or when the name holds a NUL byte.
  std::optional<std::string> verified_peer_common_name() const;

  SSL* ssl() { return ssl_; }
  // RFC 5929 tls-server-end-point: the hash of the server's certificate, with its signature
  // algorithm's digest (SHA-256 for MD5 and SHA-1). `own`: this side is the server. Empty
  // when there is no certificate or its digest is unknown.
  std::vector<unsigned char> server_end_point(bool own) const;
  std::string protocol_and_cipher() const;

 private:
  // Sends what OpenSSL wrote to the write BIO; `notify`/`cb` as in write().
  Write send_cipher(uv_write_t* notify, uv_write_cb cb, std::function<void(int)> done);
  void set_error_from_queue(const char* what);

  SSL* ssl_;
  BIO* rbio_;  // ciphertext from the socket; owned by ssl_
  BIO* wbio_;  // ciphertext for the socket; owned by ssl_
  uv_stream_t* stream_;
  bool established_ = false;
  std::string error_;
};

// OpenSSL's oldest queued error after `what` (and the queue cleared).
std::string openssl_error(std::string what);
// "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" as OpenSSL's constant; anything else TLSv1.2.
int tls_protocol_version(std::string_view name);

// Where a connection's bytes go: its socket, or the TLS session over it.
struct Sink {
  uv_stream_t* stream = nullptr;
  TlsStream* tls = nullptr;
  Sink() = default;
  Sink(uv_stream_t* s, TlsStream* t = nullptr) : stream(s), tls(t) {}  // NOLINT: plain sockets convert
};

}  // namespace pgsidecar::proxy::io
