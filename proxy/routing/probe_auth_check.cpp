#include "proxy/routing/probe_auth_check.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <string_view>
#include <vector>

namespace pgsidecar::proxy {

namespace {

constexpr uint32_t kSslRequestCode = 80877103;
constexpr uint32_t kProtocol30 = 196608;
constexpr uint32_t kAuthCleartextPassword = 3;

void put32(std::vector<char>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

// A blocking TCP socket with a deadline on every step; closed on scope exit.
class DeadlineSocket {
 public:
  explicit DeadlineSocket(std::chrono::steady_clock::time_point deadline) : deadline_(deadline) {}
  ~DeadlineSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  DeadlineSocket(const DeadlineSocket&) = delete;
  DeadlineSocket& operator=(const DeadlineSocket&) = delete;

  bool connect(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || found == nullptr) return false;
    fd_ = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const bool started = fd_ >= 0 && (::connect(fd_, found->ai_addr, found->ai_addrlen) == 0 || errno == EINPROGRESS);
    ::freeaddrinfo(found);
    if (!started || !wait(POLLOUT)) return false;
    int err = 0;
    socklen_t len = sizeof err;
    return ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
  }

  bool send_all(const std::vector<char>& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      if (!wait(POLLOUT)) return false;
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  bool read_exact(char* out, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
      if (!wait(POLLIN)) return false;
      const ssize_t r = ::recv(fd_, out + got, n - got, 0);
      if (r <= 0) return false;
      got += static_cast<std::size_t>(r);
    }
    return true;
  }

 private:
  bool wait(short events) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, events, 0};
    return ::poll(&p, 1, static_cast<int>(left)) > 0;
  }

  std::chrono::steady_clock::time_point deadline_;
  int fd_ = -1;
};

bool url_requires_tls(const std::string& sslmode) {
  return sslmode == "require" || sslmode == "verify-ca" || sslmode == "verify-full";
}

}  // namespace

bool probe_may_send_password(const config::ServerAddress& address, const std::string& user,
                             const std::string& dbname, std::chrono::steady_clock::time_point deadline,
                             std::string& error) {
  // A Unix socket never carries TLS, and the server is this machine's: nothing to ask.
  if (url_requires_tls(address.sslmode) || address.host.empty() || address.host.front() == '/') return true;
  DeadlineSocket s(deadline);
  if (!s.connect(address.host, address.port)) return true;
  // libpq's default, prefer, asks for TLS first; allow and disable start in plain text.
  if (address.sslmode.empty() || address.sslmode == "prefer") {
    std::vector<char> request;
    put32(request, 8);
    put32(request, kSslRequestCode);
    char answer = 0;
    if (!s.send_all(request) || !s.read_exact(&answer, 1)) return true;
    if (answer == 'S') return true;  // libpq will encrypt: a cleartext request is fine then
    if (answer != 'N') return true;
  }
  std::vector<char> body;
  put32(body, kProtocol30);
  const auto add_cstring = [&body](std::string_view text) {
    body.insert(body.end(), text.begin(), text.end());
    body.push_back('\0');
  };
  add_cstring("user");
  add_cstring(user);
  add_cstring("database");
  add_cstring(dbname);
  body.push_back('\0');
  std::vector<char> startup;
  put32(startup, static_cast<uint32_t>(body.size() + 4));
  startup.insert(startup.end(), body.begin(), body.end());
  std::array<char, 9> reply{};  // 'R', Int32 length, Int32 code
  if (!s.send_all(startup) || !s.read_exact(reply.data(), reply.size()) || reply[0] != 'R') return true;
  uint32_t code = 0;
  for (std::size_t i = 5; i < 9; ++i) code = (code << 8) | static_cast<unsigned char>(reply[i]);
  if (code != kAuthCleartextPassword) return true;
  error = "server asked for a cleartext password over an unencrypted connection; the health probe sends none "
          "(use sslmode=require or above, or scram-sha-256 on the server)";
  return false;
}

}  // namespace pgsidecar::proxy
