// Limits on what a client can make pgsidecar hold (docs/security.md): before login, one
// SSLRequest and one GSSENCRequest per connection, as PostgreSQL allows; a FATAL error
// closes the connection even when the client does not read it (nor a large result, which
// pgsidecar does not buffer meanwhile); a client idle inside a transaction loses it after
// idle_in_transaction_timeout.

#include <doctest/doctest.h>

#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/proxy_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// SSLRequest (F): Int32(8) Int32(80877103); GSSENCRequest: Int32(8) Int32(80877104).
std::vector<std::byte> encryption_request(std::uint32_t code) { return Bytes{}.int32(8).int32(code).get(); }
constexpr std::uint32_t kSslRequest = 80877103;
constexpr std::uint32_t kGssEncRequest = 80877104;

// The one-byte answer to an encryption request ('S', 'G' or 'N'); 0 when none came.
char read_answer(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return 0;
  char c = 0;
  return ::recv(fd, &c, 1, 0) == 1 ? c : 0;
}

struct TrustProxy {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  TrustProxy() {
    ProxyConfig config = pool_config("transaction", 2);
    config.auth_method = "trust";  // the raw logins below skip the password exchange
    start_proxy(proxy, cluster, config);
  }
};

}  // namespace

TEST_CASE("each encryption request is answered once per connection") {
  TrustProxy p;

  SUBCASE("an SSLRequest and a GSSENCRequest, then a login") {
    Socket s = connect_tcp(p.proxy.port());
    REQUIRE(s.ok());
    REQUIRE(send_all(s.fd(), encryption_request(kGssEncRequest)));
    CHECK(read_answer(s.fd()) == 'N');
    REQUIRE(send_all(s.fd(), encryption_request(kSslRequest)));
    CHECK(read_answer(s.fd()) == 'N');
    REQUIRE(send_all(s.fd(), startup_message(p.cluster.app_user(), "app")));
    const Received login =
        receive(s.fd(), 10s, [](const Received& r) { return !r.messages.empty() && r.messages.back().tag == 'Z'; });
    CHECK_MESSAGE(!login.error(), login.describe());
    CHECK(login.tags().back() == 'Z');
  }

  for (const std::uint32_t code : {kSslRequest, kGssEncRequest}) {
    CAPTURE(code);
    Socket s = connect_tcp(p.proxy.port());
    REQUIRE(s.ok());
    REQUIRE(send_all(s.fd(), encryption_request(code)));
    CHECK(read_answer(s.fd()) == 'N');
    REQUIRE(send_all(s.fd(), encryption_request(code)));
    const Received refused = receive_until_closed(s.fd(), 10s);
    CHECK_MESSAGE(refused.closed, refused.describe());
    CHECK(refused.severity() == "FATAL");
    CHECK(refused.sqlstate() == "08P01");
    CHECK(refused.message().find("sent twice") != std::string::npos);
  }
}

TEST_CASE("a client idle inside a transaction is closed after idle_in_transaction_timeout") {
  Cluster& cluster = Cluster::shared();
  ProxyConfig config = pool_config("transaction", 2);
  config.pool_extra = "idle_in_transaction_timeout = \"1s\"";
  ProxyProcess proxy;
  start_proxy(proxy, cluster, config);
  const std::string table = "itest_idle_tx_" + random_suffix();
  Connection setup = connect_ok(app_conninfo(proxy, cluster));
  REQUIRE(setup.exec("CREATE TABLE " + table + " (x int)").ok);

  Connection idle = connect_ok(app_conninfo(proxy, cluster));
  Connection busy = connect_ok(app_conninfo(proxy, cluster));
  Connection outside = connect_ok(app_conninfo(proxy, cluster));
  REQUIRE(idle.exec("BEGIN").ok);
  REQUIRE(idle.exec("INSERT INTO " + table + " VALUES (1)").ok);
  // A long statement inside a transaction is not idleness.
  REQUIRE(busy.exec("BEGIN").ok);
  const QueryResult slept = busy.exec("SELECT pg_sleep(3)");
  CHECK_MESSAGE(slept.ok, slept.describe());
  std::this_thread::sleep_for(500ms);
  const QueryResult closed = idle.exec("SELECT 1");
  CHECK(!closed.ok);
  CHECK_MESSAGE(closed.sqlstate == "25P03", closed.describe());
  CHECK(closed.message.find("idle_in_transaction_timeout") != std::string::npos);
  // busy went on right after its long statement; outside was idle between transactions.
  const QueryResult committed = busy.exec("COMMIT");
  CHECK_MESSAGE(committed.ok, committed.describe());
  const QueryResult count = outside.exec("SELECT count(*) FROM " + table);
  REQUIRE_MESSAGE(count.ok, count.describe());
  CHECK(count.value() == "0");  // the idle transaction was rolled back
  REQUIRE(setup.exec("DROP TABLE " + table).ok);
}

TEST_CASE("a FATAL error closes the connection even when the client does not read it") {
  Cluster& cluster = Cluster::shared();
  ProxyConfig config = pool_config("transaction", 2);
  config.extra = "[admin]\nusers = [" + toml_string(cluster.app_user()) + "]\n";
  ProxyProcess proxy;
  start_proxy(proxy, cluster, config);
  Connection admin = connect_ok(app_conninfo(proxy, cluster, "pgsidecar"));
  auto app_clients = [&admin] {
    const QueryResult r = admin.exec("SHOW CLIENTS");
    REQUIRE_MESSAGE(r.ok, r.describe());
    const auto column = std::find(r.columns.begin(), r.columns.end(), "database") - r.columns.begin();
    REQUIRE(column < static_cast<std::ptrdiff_t>(r.columns.size()));
    return std::count_if(r.rows.begin(), r.rows.end(), [column](const auto& row) { return row[column] == "app"; });
  };

  // A client asks for 200 MB and reads none of it: pgsidecar's write to it stays pending,
  // and pgsidecar stops reading from the server meanwhile instead of buffering the result.
  Connection reader = connect_ok(app_conninfo(proxy, cluster));
  const std::size_t rss_before = resident_bytes(proxy.pid());
  REQUIRE(PQsendQuery(reader.raw(), "SELECT repeat('x', 100000) FROM generate_series(1, 2000)") == 1);
  std::this_thread::sleep_for(1s);
  REQUIRE(app_clients() == 1);
  const std::size_t rss_unread = resident_bytes(proxy.pid());
  INFO("proxy RSS ", rss_before, " -> ", rss_unread, " bytes");
  CHECK(rss_unread < rss_before + (16u << 20));
  const QueryResult killed = admin.exec("KILL app");
  REQUIRE_MESSAGE(killed.ok, killed.describe());
  // The FATAL waits behind the unread bytes; kFatalLinger (2 s) later the connection goes.
  const auto deadline = Clock::now() + 10s;
  while (app_clients() != 0 && Clock::now() < deadline) std::this_thread::sleep_for(100ms);
  CHECK(app_clients() == 0);
}
