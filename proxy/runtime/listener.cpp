#include "proxy/runtime/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/core/log.h"
#include "proxy/runtime/worker.h"

namespace pgsidecar::proxy {

namespace {
// Connections the kernel queues before accept(); PostgreSQL asks for the same.
constexpr int kListenBacklog = 1024;
}  // namespace

Listener::Listener(Worker& worker) : worker_(worker), handles_(this, &Listener::on_closed) {}

Listener::~Listener() = default;

bool Listener::listen_tcp(const std::string& address, uint16_t port, std::string& error) {
  sockaddr_storage addr{};
  int family = AF_INET;
  if (uv_ip4_addr(address.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0) {
    if (uv_ip6_addr(address.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
      error = "listen.address \"" + address + "\" is not an IPv4 or IPv6 address";
      return false;
    }
    family = AF_INET6;
  }
  // libuv 1.44 cannot set SO_REUSEPORT itself: make the socket here and hand it over.
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  const socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    error = "cannot listen on " + address + ":" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  stream_.init(worker_.loop().uv(), true, handles_);
  open_ = true;
  uv_tcp_open(&stream_.tcp, fd);
  const int rc = uv_listen(stream_.stream, kListenBacklog, &Listener::on_connection);
  if (rc != 0) {
    error = "cannot listen on " + address + ":" + std::to_string(port) + ": " + uv_strerror(rc);
    close();
    return false;
  }
  return true;
}

bool Listener::listen_unix(const std::string& path, std::string& error) {
  ::unlink(path.c_str());  // a stale socket from a previous run
  stream_.init(worker_.loop().uv(), false, handles_);
  open_ = true;
  unix_path_ = path;
  int rc = uv_pipe_bind(&stream_.pipe, path.c_str());
  if (rc == 0) rc = uv_listen(stream_.stream, kListenBacklog, &Listener::on_connection);
  if (rc != 0) {
    error = "cannot listen on Unix socket " + path + ": " + uv_strerror(rc);
    close();
    return false;
  }
  ::chmod(path.c_str(), 0777);  // like PostgreSQL's default unix_socket_permissions
  return true;
}

void Listener::close() {
  if (!open_) return;
  open_ = false;
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  handles_.close(stream_.handle());
}

void Listener::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<Listener*>(server->data);
  if (status < 0) {
    log_warn("accept_failed").kv("worker", self->worker_.id()).kv("error", uv_strerror(status));
    return;
  }
  self->worker_.accept_client(server, self->stream_.is_tcp);
}

}  // namespace pgsidecar::proxy
