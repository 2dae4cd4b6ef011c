// The HTTP endpoint: GET /metrics (Prometheus), GET /healthz and GET /readyz (Kubernetes
// probes). libmicrohttpd serves it from threads of its own, so a scrape or a probe never
// runs on, or waits for, an event loop; the handlers below are what reaches the proxy.
//
// Handlers run on libmicrohttpd's threads, two of them, so a slow scrape leaves the
// other free for probes: handlers must be safe to call from those threads, and
// concurrently. They are expected to answer within a bounded time (a scrape that gathers
// counters from the workers' mailboxes waits for them with a deadline).
#pragma once

#include "proxy/http/layer.h"

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

struct MHD_Daemon;

namespace pgsidecar::http {

// A probe's answer: 200 with "ok", or 503 with the reason as the body.
struct ProbeResult {
  bool ok = true;
  std::string reason;  // why not, when !ok: "event loop 2 has not turned for 1.4 s"

  static ProbeResult healthy() { return {}; }
  static ProbeResult failing(std::string why) { return {false, std::move(why)}; }
};

struct HttpHandlers {
  std::function<std::string()> metrics;  // the exposition (see MetricsText)
  // Process and event loops alive; never depends on the databases.
  std::function<ProbeResult()> healthz;
  // Listening, config loaded, not draining; `databases` is true for
  // GET /readyz?databases=1, which also asks for a usable server.
  std::function<ProbeResult(bool databases)> readyz;
};

struct HttpServerOptions {
  std::string address = "127.0.0.1";  // an IPv4 or IPv6 literal
  // 0 lets the kernel choose (port() tells which). The config's "port = 0: no HTTP
  // endpoint" is decided by the caller, which then does not start a server at all.
  uint16_t port = 0;
  unsigned threads = 2;
  unsigned connection_limit = 64;      // more concurrent connections are refused
  unsigned connection_timeout_s = 10;  // an idle or slow client is dropped after this
  // libmicrohttpd's own error messages once serving (a failed send, a refused
  // connection), from its threads. Optional.
  std::function<void(std::string_view)> log;
};

// Routes, for every request:
//   GET /metrics  200, text/plain; version=0.0.4; charset=utf-8
//   GET /healthz  200 "ok\n" or 503 "<reason>\n"
//   GET /readyz   likewise; ?databases=1 is passed to the handler
//   another method on one of these paths: 405 with `Allow: GET`
//   any other path: 404
// A handler that throws answers 500.
class HttpServer {
 public:
  explicit HttpServer(HttpHandlers handlers);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving. nullopt on success; otherwise why not, e.g.
  // "127.0.0.1:9930: Address already in use", and nothing is left running.
  std::optional<std::string> start(const HttpServerOptions& options);
  // Stops accepting, lets running handlers return and joins the threads. Idempotent.
  // Stop this before the event loops the handlers wait for.
  void stop();

  bool running() const { return daemon_ != nullptr; }
  uint16_t port() const { return port_; }  // the bound port while running, else 0


 private:
  friend struct MhdCallbacks;  // libmicrohttpd's C callbacks, in http_server.cpp
  void log_message(std::string_view message);

  HttpHandlers handlers_;
  MHD_Daemon* daemon_ = nullptr;
  uint16_t port_ = 0;
  std::function<void(std::string_view)> log_;
  std::mutex log_mu_;
  bool starting_ = false;         // under log_mu_: messages go to start_errors_
  std::string start_errors_;      // under log_mu_
};

}  // namespace pgsidecar::http
