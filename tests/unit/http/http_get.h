// A minimal HTTP/1.1 client over a plain socket for the endpoint tests: one request per
// connection (Connection: close), read to EOF, every wait bounded by a socket timeout.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace pgsidecar::test {

struct HttpReply {
  int status = 0;  // 0: no reply (refused, timed out, or not HTTP)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  std::string header(const std::string& lower_case_name) const {
    const auto it = headers.find(lower_case_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

inline HttpReply parse_http_reply(const std::string& raw) {
  HttpReply r;
  const std::size_t head_end = raw.find("\r\n\r\n");
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  std::size_t line = raw.find("\r\n") + 2;
  while (line < head_end) {
    const std::size_t eol = raw.find("\r\n", line);
    const std::string header = raw.substr(line, eol - line);
    const std::size_t colon = header.find(':');
    if (colon != std::string::npos) {
      std::string name = header.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      std::size_t v = colon + 1;
      while (v < header.size() && header[v] == ' ') ++v;
      r.headers[name] = header.substr(v);
    }
    line = eol + 2;
  }
  r.body = raw.substr(head_end + 4);
  return r;
}

// Sends `method target` with an optional body to host:port and returns the reply.
inline HttpReply http_request(uint16_t port, std::string_view method, std::string_view target,
                              std::string_view body = {}, std::string_view host = "127.0.0.1") {
  const bool v6 = host.find(':') != std::string_view::npos;
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);

  sockaddr_storage addr{};
  socklen_t len = 0;
  const std::string host_z(host);
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, host_z.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, host_z.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  std::string raw;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0) {
    std::string request = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n";
    if (!body.empty()) request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    request += "Connection: close\r\n\r\n";
    request += body;
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n = 0;
      while ((n = recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<std::size_t>(n));
    }
  }
  close(fd);
  return parse_http_reply(raw);
}

inline HttpReply http_get(uint16_t port, std::string_view target) { return http_request(port, "GET", target); }

}  // namespace pgsidecar::test
