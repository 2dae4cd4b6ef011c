#include "proxy/http/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <utility>

namespace pgsidecar::http {
namespace {

constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kTextContentType = "text/plain; charset=utf-8";

enum class Route { Metrics, Healthz, Readyz, Unknown };

Route route_of(std::string_view path) {
  if (path == "/metrics") return Route::Metrics;
  if (path == "/healthz") return Route::Healthz;
  if (path == "/readyz") return Route::Readyz;
  return Route::Unknown;
}

struct Reply {
  unsigned status;
  std::string body;
  const char* content_type = kTextContentType;
  bool allow_get = false;  // 405 names the method that is allowed
};

Reply probe_reply(const ProbeResult& r) {
  if (r.ok) return {MHD_HTTP_OK, "ok\n"};
  return {MHD_HTTP_SERVICE_UNAVAILABLE, r.reason + "\n"};
}

// What a request gets; may throw whatever a handler throws.
Reply respond(const HttpHandlers& h, std::string_view method, std::string_view path, bool databases) {
  const Route route = route_of(path);
  const bool served = (route == Route::Metrics && h.metrics) || (route == Route::Healthz && h.healthz) ||
                      (route == Route::Readyz && h.readyz);
  if (!served) return {MHD_HTTP_NOT_FOUND, "not found\n"};
  if (method != MHD_HTTP_METHOD_GET) return {MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", kTextContentType, true};
  switch (route) {
    case Route::Metrics: return {MHD_HTTP_OK, h.metrics(), kMetricsContentType};
    case Route::Healthz: return probe_reply(h.healthz());
    case Route::Readyz: return probe_reply(h.readyz(databases));
    case Route::Unknown: break;
  }
  return {MHD_HTTP_NOT_FOUND, "not found\n"};
}

MHD_Result queue_reply(MHD_Connection* connection, const Reply& reply) {
  // MUST_COPY: the body is gone when this returns; libmicrohttpd never writes through
  // the pointer.
  MHD_Response* response = MHD_create_response_from_buffer(
      reply.body.size(), const_cast<char*>(reply.body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type);
  MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (reply.allow_get) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_GET);
  const MHD_Result queued = MHD_queue_response(connection, reply.status, response);
  MHD_destroy_response(response);
  return queued;
}

std::string endpoint_text(const std::string& address, uint16_t port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

}  // namespace

struct MhdCallbacks {
  // The request's headers are in; any body is not read: no route takes one, and a
  // reply queued now makes libmicrohttpd discard it and close the connection after.
  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                               const char* /*version*/, const char* /*upload_data*/,
                               size_t* /*upload_data_size*/, void** /*req_cls*/) noexcept {
    const auto* self = static_cast<const HttpServer*>(cls);
    try {
      const char* flag = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "databases");
      const bool databases = flag != nullptr && std::strcmp(flag, "1") == 0;
      return queue_reply(connection, respond(self->handlers_, method, url, databases));
    } catch (...) {
      try {
        return queue_reply(connection, {MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n"});
      } catch (...) {
        return MHD_NO;  // no memory even for that: drop the connection
      }
    }
  }

  static void on_log(void* cls, const char* format, va_list args) noexcept {
    char buf[512];
    const int n = std::vsnprintf(buf, sizeof buf, format, args);
    if (n <= 0) return;
    std::string_view message(buf, std::min(static_cast<std::size_t>(n), sizeof buf - 1));
    while (!message.empty() && (message.back() == '\n' || message.back() == '.')) message.remove_suffix(1);
    try {
      static_cast<HttpServer*>(cls)->log_message(message);
    } catch (...) {  // logging must not unwind into C
    }
  }
};

HttpServer::HttpServer(HttpHandlers handlers) : handlers_(std::move(handlers)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::log_message(std::string_view message) {
  std::lock_guard lock(log_mu_);
  if (starting_) {
    if (!start_errors_.empty()) start_errors_ += "; ";
    start_errors_ += message;
  } else if (log_) {
    log_(message);
  }
}

std::optional<std::string> HttpServer::start(const HttpServerOptions& options) {
  if (running()) return "already serving on port " + std::to_string(port_);
  const std::string where = endpoint_text(options.address, options.port);

  sockaddr_in v4{};
  sockaddr_in6 v6{};
  sockaddr* addr = nullptr;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
  if (inet_pton(AF_INET, options.address.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(options.port);
    addr = reinterpret_cast<sockaddr*>(&v4);
  } else if (inet_pton(AF_INET6, options.address.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(options.port);
    addr = reinterpret_cast<sockaddr*>(&v6);
    flags |= MHD_USE_IPv6;
  } else {
    return where + ": not an IPv4 or IPv6 address";
  }

  {
    std::lock_guard lock(log_mu_);
    log_ = options.log;
    starting_ = true;
    start_errors_.clear();
  }
  MHD_AccessHandlerCallback on_request = &MhdCallbacks::on_request;
  MHD_LogCallback on_log = &MhdCallbacks::on_log;
  // The logger first: libmicrohttpd reports problems with the options after it there.
  daemon_ = MHD_start_daemon(flags, options.port, nullptr, nullptr, on_request, this,
                             MHD_OPTION_EXTERNAL_LOGGER, on_log, static_cast<void*>(this),
                             MHD_OPTION_SOCK_ADDR, addr,
                             MHD_OPTION_THREAD_POOL_SIZE, options.threads,
                             MHD_OPTION_CONNECTION_LIMIT, options.connection_limit,
                             MHD_OPTION_CONNECTION_TIMEOUT, options.connection_timeout_s,
                             MHD_OPTION_END);
  std::string errors;
  {
    std::lock_guard lock(log_mu_);
    starting_ = false;
    errors = std::exchange(start_errors_, {});
  }
  if (daemon_ == nullptr) {
    std::lock_guard lock(log_mu_);
    log_ = nullptr;
    return where + ": " + (errors.empty() ? std::string("cannot serve HTTP") : errors);
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
  port_ = info != nullptr && info->port != 0 ? info->port : options.port;
  return std::nullopt;
}

void HttpServer::stop() {
  if (daemon_ == nullptr) return;
  MHD_stop_daemon(daemon_);  // joins libmicrohttpd's threads
  daemon_ = nullptr;
  port_ = 0;
  std::lock_guard lock(log_mu_);
  log_ = nullptr;
}

}  // namespace pgsidecar::http
