#include "proxy/http/http_server.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "unit/http/http_get.h"

using namespace std::chrono_literals;
using pgsidecar::http::HttpHandlers;
using pgsidecar::http::HttpServer;
using pgsidecar::http::HttpServerOptions;
using pgsidecar::http::ProbeResult;
using pgsidecar::test::http_get;
using pgsidecar::test::http_request;

namespace {

constexpr const char* kExposition = "# HELP up Up.\n# TYPE up gauge\nup 1\n";

// Handlers whose answers a test sets, recording what /readyz was asked.
struct Probes {
  std::mutex mu;
  ProbeResult health = ProbeResult::healthy();
  ProbeResult ready = ProbeResult::healthy();
  std::vector<bool> readyz_databases;

  HttpHandlers handlers() {
    return {
        [] { return std::string(kExposition); },
        [this] {
          std::lock_guard lock(mu);
          return health;
        },
        [this](bool databases) {
          std::lock_guard lock(mu);
          readyz_databases.push_back(databases);
          return ready;
        },
    };
  }
};

HttpServerOptions ephemeral() {
  HttpServerOptions o;
  o.address = "127.0.0.1";
  o.port = 0;
  return o;
}

}  // namespace

TEST_CASE("port 0 binds a port the kernel picks, and port() tells which") {
  Probes probes;
  HttpServer server(probes.handlers());
  CHECK_FALSE(server.running());
  CHECK(server.port() == 0);
  const auto error = server.start(ephemeral());
  REQUIRE_MESSAGE(!error, error.value_or(""));
  CHECK(server.running());
  CHECK(server.port() != 0);
}

TEST_CASE("GET /metrics answers the provider's exposition as Prometheus text 0.0.4") {
  Probes probes;
  HttpServer server(probes.handlers());
  REQUIRE_FALSE(server.start(ephemeral()));
  const auto r = http_get(server.port(), "/metrics");
  CHECK(r.status == 200);
  CHECK(r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(r.body == kExposition);
}

TEST_CASE("a large exposition arrives whole") {
  std::string big;
  for (int i = 0; i < 20'000; ++i) big += "g{i=\"" + std::to_string(i) + "\"} " + std::to_string(i) + "\n";
  HttpServer server({[&big] { return big; }, {}, {}});
  REQUIRE_FALSE(server.start(ephemeral()));
  const auto r = http_get(server.port(), "/metrics");
  CHECK(r.status == 200);
  CHECK(r.body.size() == big.size());
  CHECK(r.body == big);
}

TEST_CASE("GET /healthz is 200 ok while healthy and 503 with the reason when not") {
  Probes probes;
  HttpServer server(probes.handlers());
  REQUIRE_FALSE(server.start(ephemeral()));

  auto r = http_get(server.port(), "/healthz");
  CHECK(r.status == 200);
  CHECK(r.body == "ok\n");
  CHECK(r.header("content-type") == "text/plain; charset=utf-8");

  {
    std::lock_guard lock(probes.mu);
    probes.health = ProbeResult::failing("event loop 1 has not turned for 1.5 s");
  }
  r = http_get(server.port(), "/healthz");
  CHECK(r.status == 503);
  CHECK(r.body == "event loop 1 has not turned for 1.5 s\n");
}

TEST_CASE("GET /readyz passes whether the query asks for databases=1") {
  Probes probes;
  HttpServer server(probes.handlers());
  REQUIRE_FALSE(server.start(ephemeral()));

  CHECK(http_get(server.port(), "/readyz").status == 200);
  CHECK(http_get(server.port(), "/readyz?databases=1").status == 200);
  CHECK(http_get(server.port(), "/readyz?databases=0").status == 200);
  CHECK(http_get(server.port(), "/readyz?other=1&databases=1").status == 200);
  {
    std::lock_guard lock(probes.mu);
    CHECK(probes.readyz_databases == std::vector<bool>{false, true, false, true});
    probes.ready = ProbeResult::failing("draining");
  }
  const auto r = http_get(server.port(), "/readyz?databases=1");
  CHECK(r.status == 503);
  CHECK(r.body == "draining\n");
}

TEST_CASE("an unknown path is 404, whatever the method") {
  Probes probes;
  HttpServer server(probes.handlers());
  REQUIRE_FALSE(server.start(ephemeral()));
  for (const char* target : {"/", "/metrics/", "/Metrics", "/healthz/x", "/nope", "/readyzz"}) {
    CAPTURE(target);
    CHECK(http_get(server.port(), target).status == 404);
  }
  CHECK(http_request(server.port(), "POST", "/nope", "x").status == 404);
}

TEST_CASE("another method than GET on a route is 405 naming GET, and the handler is not called") {
  Probes probes;
  HttpServer server(probes.handlers());
  REQUIRE_FALSE(server.start(ephemeral()));
  for (const char* method : {"POST", "PUT", "DELETE", "HEAD", "OPTIONS"}) {
    for (const char* target : {"/metrics", "/healthz", "/readyz"}) {
      CAPTURE(method);
      CAPTURE(target);
      const auto r = http_request(server.port(), method, target);
      CHECK(r.status == 405);
      CHECK(r.header("allow") == "GET");
    }
  }
  CHECK(http_request(server.port(), "POST", "/metrics", "a body that is never read").status == 405);
  std::lock_guard lock(probes.mu);
  CHECK(probes.readyz_databases.empty());
}

TEST_CASE("a route without a handler is 404") {
  HttpServer server({{}, [] { return ProbeResult::healthy(); }, {}});
  REQUIRE_FALSE(server.start(ephemeral()));
  CHECK(http_get(server.port(), "/metrics").status == 404);
  CHECK(http_get(server.port(), "/readyz").status == 404);
  CHECK(http_get(server.port(), "/healthz").status == 200);
}

TEST_CASE("a handler that throws answers 500 and the server goes on") {
  HttpServer server({[]() -> std::string { throw std::runtime_error("scrape failed"); },
                     [] { return ProbeResult::healthy(); }, {}});
  REQUIRE_FALSE(server.start(ephemeral()));
  CHECK(http_get(server.port(), "/metrics").status == 500);
  CHECK(http_get(server.port(), "/healthz").status == 200);
}

TEST_CASE("start reports an address in use and leaves nothing running") {
  Probes probes;
  HttpServer first(probes.handlers());
  REQUIRE_FALSE(first.start(ephemeral()));

  HttpServer second(probes.handlers());
  HttpServerOptions same = ephemeral();
  same.port = first.port();
  const auto error = second.start(same);
  REQUIRE(error.has_value());
  INFO(*error);
  CHECK(error->find("127.0.0.1:" + std::to_string(first.port())) == 0);
  CHECK(error->find("in use") != std::string::npos);
  CHECK_FALSE(second.running());
  CHECK(second.port() == 0);
  CHECK(http_get(first.port(), "/healthz").status == 200);  // the first is untouched
}

TEST_CASE("start refuses an address that is not an IP literal") {
  Probes probes;
  HttpServer server(probes.handlers());
  HttpServerOptions o = ephemeral();
  o.address = "localhost";
  const auto error = server.start(o);
  REQUIRE(error.has_value());
  CHECK(*error == "localhost:0: not an IPv4 or IPv6 address");
  CHECK_FALSE(server.running());
}

TEST_CASE("stop closes the port, is idempotent, and the server can start again") {
  Probes probes;
  HttpServer server(probes.handlers());
  REQUIRE_FALSE(server.start(ephemeral()));
  const uint16_t port = server.port();
  CHECK(server.start(ephemeral()).has_value());  // already serving
  server.stop();
  CHECK_FALSE(server.running());
  CHECK(server.port() == 0);
  CHECK(http_get(port, "/healthz").status == 0);  // refused
  server.stop();

  REQUIRE_FALSE(server.start(ephemeral()));
  CHECK(http_get(server.port(), "/healthz").status == 200);
}

TEST_CASE("a probe is answered while a slow scrape is still running") {
  std::mutex mu;
  std::condition_variable cv;
  bool scrape_started = false;
  bool release_scrape = false;
  HttpServer server({[&] {
                       std::unique_lock lock(mu);
                       scrape_started = true;
                       cv.notify_all();
                       cv.wait_for(lock, 10s, [&] { return release_scrape; });
                       return std::string(kExposition);
                     },
                     [] { return ProbeResult::healthy(); }, {}});
  REQUIRE_FALSE(server.start(ephemeral()));

  pgsidecar::test::HttpReply scrape;
  std::thread scraper([&] { scrape = http_get(server.port(), "/metrics"); });
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, 5s, [&] { return scrape_started; }));
  }
  const auto start = std::chrono::steady_clock::now();
  const auto probe = http_get(server.port(), "/healthz");
  const auto took = std::chrono::steady_clock::now() - start;
  {
    std::lock_guard lock(mu);
    release_scrape = true;
  }
  cv.notify_all();
  scraper.join();
  CHECK(probe.status == 200);
  CHECK(took < 2s);
  CHECK(scrape.status == 200);
}

TEST_CASE("an IPv6 address serves on IPv6") {
  const int probe = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 loopback{};
  loopback.sin6_family = AF_INET6;
  loopback.sin6_addr = in6addr_loopback;
  const bool have_v6 = probe >= 0 && bind(probe, reinterpret_cast<sockaddr*>(&loopback), sizeof loopback) == 0;
  if (probe >= 0) close(probe);
  if (!have_v6) {
    MESSAGE("no IPv6 loopback here; skipped");
    return;
  }
  Probes probes;
  HttpServer server(probes.handlers());
  HttpServerOptions o;
  o.address = "::1";
  const auto error = server.start(o);
  REQUIRE_MESSAGE(!error, error.value_or(""));
  CHECK(http_request(server.port(), "GET", "/healthz", {}, "::1").status == 200);
}

TEST_CASE("the destructor stops a running server") {
  uint16_t port = 0;
  {
    Probes probes;
    HttpServer server(probes.handlers());
    REQUIRE_FALSE(server.start(ephemeral()));
    port = server.port();
    CHECK(http_get(port, "/healthz").status == 200);
  }
  CHECK(http_get(port, "/healthz").status == 0);
}
