// Memory and CPU bounds per client (docs/security.md, "Limits"): what one client can make
// pgsidecar hold (replies it does not read, a message read whole, its prepared statements,
// statements kept on a server connection) is capped, with a clear 54000 or back-pressure,
// and a large prepared statement is classified once, not at every Bind. Each test checks
// that the proxy keeps serving the client or others afterwards.

#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/proxy_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// A frontend message: tag, Int32 length, body.
void append_message(std::string& out, char tag, std::string_view body) {
  out += tag;
  const uint32_t len = static_cast<uint32_t>(body.size() + 4);
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((len >> shift) & 0xff);
  out += body;
}

// Bind (unnamed portal) of statement `name` with no parameters, then Sync.
std::string bind_and_sync(std::string_view name) {
  std::string body;
  body += '\0';  // portal ""
  body += name;
  body += '\0';
  body.append(6, '\0');  // no parameter formats, no parameters, no result formats
  std::string out;
  append_message(out, 'B', body);
  append_message(out, 'S', {});
  return out;
}

// Counts the ReadyForQuery messages in a stream of backend messages read in pieces.
class ReadyCounter {
 public:
  void feed(const char* p, std::size_t n) {
    buffer_.append(p, n);
    std::size_t pos = 0;
    while (buffer_.size() - pos >= 5) {
      const auto* b = reinterpret_cast<const unsigned char*>(buffer_.data() + pos);
      const uint32_t len = (uint32_t{b[1]} << 24) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 8) | b[4];
      if (buffer_.size() - pos < len + 1) break;
      if (b[0] == 'Z') ++ready_;
      pos += len + 1;
    }
    buffer_.erase(0, pos);
  }
  std::size_t ready() const { return ready_; }
  bool at_boundary() const { return buffer_.empty(); }

 private:
  std::string buffer_;
  std::size_t ready_ = 0;
};


// A statement over the classifier cache's 16 KB that only the parser can classify (a
// subquery): a read.
std::string large_read_statement() {
  std::string sql = "SELECT count(*) FROM (VALUES (0)";
  for (int i = 1; sql.size() < 24 * 1024; ++i) sql += ",(" + std::to_string(i) + ")";
  return sql + ") AS v(x)";
}

struct LimitsProxy {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  explicit LimitsProxy(ProxyConfig config) { start_proxy(proxy, cluster, config); }
  Connection connect() { return connect_ok(app_conninfo(proxy, cluster)); }
};

ProxyConfig one_worker(int size = 2) {
  ProxyConfig config = pool_config("transaction", size);
  config.workers = 1;
  return config;
}

}  // namespace

TEST_CASE("a client that sends requests without reading the replies is paused at max_client_buffer") {
  ProxyConfig config = one_worker();
  config.extra = "[limits]\nmax_client_buffer = 65536\n";
  LimitsProxy p(config);
  Connection c = p.connect();
  const int fd = PQsocket(c.raw());
  REQUIRE(fd >= 0);
  REQUIRE(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
  const std::size_t rss_before = resident_bytes(p.proxy.pid());
  REQUIRE(rss_before > 0);

  // Each request is answered by pgsidecar itself (26000: "n" was never prepared) with
  // about three times its size. Unread, those answers would pile up in the proxy.
  std::string chunk;
  for (int i = 0; i < 4096; ++i) chunk += bind_and_sync("n");
  const std::size_t per_request = bind_and_sync("n").size();
  constexpr std::size_t kMaxSend = 48u * 1024 * 1024;
  std::size_t sent = 0;
  bool blocked = false;
  while (sent < kMaxSend) {
    const ssize_t n = send(fd, chunk.data() + sent % chunk.size(), chunk.size() - sent % chunk.size(),
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) FAIL("send: ", strerror(errno));
    pollfd pw{fd, POLLOUT, 0};
    if (poll(&pw, 1, 2000) == 0) {  // the proxy stopped reading us
      blocked = true;
      break;
    }
  }
  const std::size_t rss_blocked = resident_bytes(p.proxy.pid());
  INFO("sent ", sent, " bytes; proxy RSS ", rss_before, " -> ", rss_blocked);
  CHECK(blocked);
#ifndef __SANITIZE_ADDRESS__
  // (AddressSanitizer keeps freed memory in quarantine: the proxy's RSS says nothing there.)
  CHECK(rss_blocked < rss_before + 32u * 1024 * 1024);
#endif

  // Reading resumes the client: every request is answered, and it goes on as usual.
  ReadyCounter replies;
  char buf[65536];
  const auto deadline = Clock::now() + 120s;
  while ((sent % per_request != 0 || replies.ready() < sent / per_request) && Clock::now() < deadline) {
    pollfd pr{fd, static_cast<short>(POLLIN | (sent % per_request != 0 ? POLLOUT : 0)), 0};
    if (poll(&pr, 1, 1000) <= 0) continue;
    if (pr.revents & POLLOUT) {  // the rest of the request cut short
      const ssize_t n = send(fd, chunk.data() + sent % chunk.size(), per_request - sent % per_request,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) sent += static_cast<std::size_t>(n);
    }
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    REQUIRE_MESSAGE(n != 0, "the proxy closed the connection");
    if (n > 0) replies.feed(buf, static_cast<std::size_t>(n));
  }
  REQUIRE(replies.ready() == sent / per_request);
  REQUIRE(replies.at_boundary());
  REQUIRE(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0);
  const QueryResult r = c.exec("SELECT 41 + 1");
  CHECK_MESSAGE(r.ok, r.describe());
  if (r.ok) CHECK(r.value() == "42");
}

TEST_CASE("a message read whole that is over max_client_buffer gets 54000; a larger Query streams through") {
  ProxyConfig config = one_worker();
  config.extra = "[limits]\nmax_client_buffer = 65536\n";
  LimitsProxy p(config);
  const std::string padding(100 * 1024, 'x');

  Connection c = p.connect();
  const QueryResult refused = c.prepare("big", "SELECT '" + padding + "'");
  CHECK_MESSAGE(!refused.ok, refused.describe());
  CHECK(refused.sqlstate == "54000");
  CHECK(refused.message.find("max_client_buffer") != std::string::npos);

  // A Query is forwarded as it arrives: no limit applies to it.
  Connection other = p.connect();
  const QueryResult streamed = other.exec("SELECT length('" + padding + "')");
  CHECK_MESSAGE(streamed.ok, streamed.describe());
  if (streamed.ok) CHECK(streamed.value() == std::to_string(padding.size()));
}

TEST_CASE("max_prepared_bytes_per_client refuses a Parse with 54000 and the client goes on") {
  ProxyConfig config = one_worker(1);  // one server: DEALLOCATE reaches the one that ran s1
  config.pool_extra = "max_prepared_bytes_per_client = 8192\n";
  LimitsProxy p(config);
  const std::string text = "SELECT length('" + std::string(3000, 'y') + "')";

  Connection c = p.connect();
  REQUIRE_MESSAGE(c.prepare("s1", text).ok, "s1");
  REQUIRE_MESSAGE(c.prepare("s2", text).ok, "s2");
  const QueryResult refused = c.prepare("s3", text);
  CHECK_MESSAGE(!refused.ok, refused.describe());
  CHECK(refused.sqlstate == "54000");
  CHECK(refused.message.find("max_prepared_bytes_per_client") != std::string::npos);

  // The connection stays usable, and freeing a statement makes room.
  const QueryResult s2 = c.exec_prepared("s2", {});
  CHECK_MESSAGE(s2.ok, s2.describe());
  REQUIRE(c.exec_prepared("s1", {}).ok);  // prepared on the server, so that DEALLOCATE finds it
  REQUIRE(c.exec("DEALLOCATE s1").ok);
  const QueryResult again = c.prepare("s3", text);
  CHECK_MESSAGE(again.ok, again.describe());
  const QueryResult s3 = c.exec_prepared("s3", {});
  CHECK_MESSAGE(s3.ok, s3.describe());
  if (s3.ok) CHECK(s3.value() == "3000");

  SUBCASE("right after BEGIN (answered by pgsidecar) the Parse is refused with 54000, the transaction failed") {
    REQUIRE(c.exec("BEGIN").ok);
    const QueryResult refused_in_tx = c.prepare("s4", text);
    CHECK(refused_in_tx.sqlstate == "54000");
    CHECK(PQtransactionStatus(c.raw()) == PQTRANS_INERROR);
    CHECK(c.exec("SELECT 1").sqlstate == "25P02");
    REQUIRE(c.exec("ROLLBACK").ok);
    CHECK(c.exec("SELECT 1").ok);
  }

  SUBCASE("inside a transaction the Parse is refused with FATAL 54000") {
    REQUIRE(c.exec("BEGIN").ok);
    REQUIRE(c.exec("SELECT 1").ok);  // the transaction holds a server
    const QueryResult fatal = c.prepare("s4", text);
    CHECK_MESSAGE(!fatal.ok, fatal.describe());
    CHECK(fatal.sqlstate == "54000");
    CHECK(PQstatus(c.raw()) == CONNECTION_BAD);
    Connection other = p.connect();
    CHECK(other.exec("SELECT 1").ok);
  }
}

TEST_CASE("a server connection keeps at most max_statements_per_server, the least recently used are closed") {
  ProxyConfig config = one_worker(1);  // one server: every statement lands on it
  config.pool_extra = "max_statements_per_server = 3\n";
  LimitsProxy p(config);
  Connection c = p.connect();
  constexpr int kStatements = 6;
  for (int i = 0; i < kStatements; ++i)
    REQUIRE(c.prepare("st" + std::to_string(i), "SELECT " + std::to_string(i) + " AS n").ok);
  auto run_all = [&c] {
    for (int i = 0; i < kStatements; ++i) {
      const QueryResult r = c.exec_prepared("st" + std::to_string(i), {});
      CHECK_MESSAGE(r.ok, "st", i, ": ", r.describe());
      if (r.ok) CHECK(r.value() == std::to_string(i));
    }
  };
  auto held_on_server = [](Connection& conn) {
    const QueryResult r = conn.exec("SELECT count(*) FROM pg_prepared_statements");
    REQUIRE_MESSAGE(r.ok, r.describe());
    return std::stoi(r.value());
  };

  run_all();  // each is prepared on the server at its first run
  CHECK(held_on_server(c) <= 3);
  run_all();  // the closed ones are prepared again, unseen
  CHECK(held_on_server(c) <= 3);
  Connection other = p.connect();
  CHECK(held_on_server(other) <= 3);
}

TEST_CASE("a large prepared statement is classified once, not at every Bind") {
  Cluster& cluster = Cluster::shared();
  ProxyConfig config = one_worker();
  // With a replica, every transaction's first statement is classified for routing.
  config.extra = "replicas = [" + toml_string(cluster.replica_url()) + "]\n\n[http]\naddress = \"127.0.0.1\"\n" +
                 "port = @HTTP_PORT@\n";
  LimitsProxy p(config);
  const std::string sql = large_read_statement();
  REQUIRE(sql.size() > 16 * 1024);

  Connection c = p.connect();
  const uint64_t before = metric_value(p.proxy.http_port(), "pgsidecar_statements_classified_total");
  const QueryResult prepared = c.prepare("big", sql);
  REQUIRE_MESSAGE(prepared.ok, prepared.describe());
  constexpr int kRuns = 50;
  for (int i = 0; i < kRuns; ++i) {
    const QueryResult r = c.exec_prepared("big", {});
    REQUIRE_MESSAGE(r.ok, r.describe());
  }
  // A Parse sent with its Bind in one request (pipeline mode): classified for routing the
  // request, and the statement keeps what was found.
  {
    PGconn* raw = c.raw();
    REQUIRE(PQenterPipelineMode(raw) == 1);
    REQUIRE(PQsendPrepare(raw, "big2", sql.c_str(), 0, nullptr) == 1);
    REQUIRE(PQsendQueryPrepared(raw, "big2", 0, nullptr, nullptr, nullptr, 0) == 1);
    REQUIRE(PQpipelineSync(raw) == 1);
    for (bool synced = false; !synced;) {
      PGresult* res = PQgetResult(raw);
      if (res == nullptr) continue;  // the end of one command's results
      const ExecStatusType st = PQresultStatus(res);
      synced = st == PGRES_PIPELINE_SYNC;
      CHECK_MESSAGE((st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || synced), PQresultErrorMessage(res));
      PQclear(res);
      REQUIRE(PQstatus(raw) == CONNECTION_OK);
    }
    REQUIRE(PQexitPipelineMode(raw) == 1);
  }
  for (int i = 0; i < kRuns; ++i) {
    const QueryResult r = c.exec_prepared("big2", {});
    REQUIRE_MESSAGE(r.ok, r.describe());
  }
  const uint64_t after = metric_value(p.proxy.http_port(), "pgsidecar_statements_classified_total");
  INFO("classified ", after - before, " times for ", 2 * kRuns, " runs of two statements");
  CHECK(after - before <= 3);
}
