// Plain-socket peers for the relay's tests: a server that records (and echoes) what each
// connection sends, and a client with bounded reads. Every wait has a deadline.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace pgsidecar::testing {

using Clock = std::chrono::steady_clock;

// Polls pred every 5 ms until it holds or timeout passes.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// How a connection ended, as its reader saw it.
enum class End { Open, Eof, Reset };

inline int listen_loopback(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot listen on 127.0.0.1");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

// Records every connection's bytes, in accept order; echoes them back when asked to.
class LoopbackServer {
 public:
  enum class Reply { Echo, Silent };

  explicit LoopbackServer(Reply reply = Reply::Echo) : reply_(reply) {
    listen_fd_ = listen_loopback(port_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    acceptor_.join();
    for (std::thread& t : connections_) t.join();
    ::close(listen_fd_);
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  int port() const { return port_; }
  std::size_t accepted() const {
    std::lock_guard lock(mu_);
    return received_.size();
  }
  // What connection `index` (in accept order) has sent so far; "" when there is none.
  std::string received(std::size_t index) const {
    std::lock_guard lock(mu_);
    return index < received_.size() ? received_[index] : std::string();
  }
  std::size_t total_received() const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const std::string& r : received_) n += r.size();
    return n;
  }
  int eofs() const { return eofs_; }
  int resets() const { return resets_; }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::size_t index = 0;
      {
        std::lock_guard lock(mu_);
        index = received_.size();
        received_.emplace_back();
      }
      connections_.emplace_back([this, fd, index] { serve(fd, index); });
    }
  }

  void serve(int fd, std::size_t index) {
    char buf[65536];
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0) {
        ++eofs_;
        break;
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        ++resets_;
        break;
      }
      {
        std::lock_guard lock(mu_);
        received_[index].append(buf, static_cast<std::size_t>(n));
      }
      if (reply_ == Reply::Echo && !send_bounded(fd, std::string_view(buf, static_cast<std::size_t>(n)))) {
        break;
      }
    }
    ::close(fd);
  }

  bool send_bounded(int fd, std::string_view bytes) {
    while (!bytes.empty() && !stop_) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n < 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return bytes.empty();
  }

  Reply reply_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // only the acceptor adds, before the join
  mutable std::mutex mu_;
  std::vector<std::string> received_;
  std::atomic<int> eofs_{0};
  std::atomic<int> resets_{0};
};

// A blocking client socket whose sends give up after 10 s and whose reads take a deadline.
class LoopbackClient {
 public:
  explicit LoopbackClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const timeval send_timeout{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~LoopbackClient() { ::close(fd_); }
  LoopbackClient(const LoopbackClient&) = delete;
  LoopbackClient& operator=(const LoopbackClient&) = delete;

  bool connected() const { return connected_; }

  // True when every byte was handed to the kernel.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  // Up to `want` bytes: fewer when the deadline passes or the connection ends first.
  std::string read(std::size_t want, std::chrono::milliseconds timeout) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    char buf[65536];
    while (out.size() < want) {
      if (!wait_readable(deadline)) break;
      const ssize_t n = ::recv(fd_, buf, std::min(sizeof buf, want - out.size()), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

  // Reads and drops bytes until the connection ends or the deadline passes.
  End wait_end(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    char buf[4096];
    for (;;) {
      if (!wait_readable(deadline)) return End::Open;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return End::Eof;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno == ECONNRESET ? End::Reset : End::Eof;
    }
  }

 private:
  bool wait_readable(Clock::time_point deadline) const {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) return false;
    }
  }

  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace pgsidecar::testing
