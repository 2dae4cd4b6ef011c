// The pool under stress and misbehaviour: a thousand idle clients beside a busy few,
// clients that send garbage, vanish mid-query or wait too long, server backends killed
// under a client, a database whose server is down, idle clients timed out, and logins
// that never finish.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/proxy_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// Opens n connections with `threads` threads; failures are counted, the first one kept.
struct OpenedClients {
  std::vector<Connection> connections;
  int failures = 0;
  std::string first_error;
};

OpenedClients open_clients(const std::string& conninfo, int n, int threads) {
  OpenedClients out;
  out.connections.resize(static_cast<std::size_t>(n));
  std::mutex mu;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = t; i < n; i += threads) {
        Connection c = Connection::open(conninfo, 30s);
        if (!c.ok()) {
          std::lock_guard lock(mu);
          if (out.failures++ == 0) out.first_error = c.sqlstate() + " " + c.error();
        }
        out.connections[static_cast<std::size_t>(i)] = std::move(c);
      }
    });
  }
  for (auto& w : workers) w.join();
  return out;
}

// A client running `SELECT 1` in a loop on one connection until told to stop.
class LoopingClient {
 public:
  explicit LoopingClient(std::string conninfo) : conninfo_(std::move(conninfo)) {
    thread_ = std::thread([this] { run(); });
  }
  ~LoopingClient() { stop(); }
  LoopingClient(const LoopingClient&) = delete;
  LoopingClient& operator=(const LoopingClient&) = delete;
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int ok() const { return ok_; }
  int errors() const { return errors_; }
  std::string first_error() const {
    std::lock_guard lock(mu_);
    return first_error_;
  }

 private:
  void run() {
    Connection c = Connection::open(conninfo_, 30s);
    if (!c.ok()) {
      note_error("connect: " + c.sqlstate() + " " + c.error());
      return;
    }
    for (int i = 0; !stop_; ++i) {
      const QueryResult r = c.exec_params("SELECT $1::int + 1", {std::to_string(i)}, 10s);
      if (r.ok && r.rows.size() == 1 && r.value() == std::to_string(i + 1)) {
        ++ok_;
      } else {
        note_error(r.describe());
        if (!c.ok()) return;
      }
    }
  }
  void note_error(const std::string& what) {
    std::lock_guard lock(mu_);
    if (errors_++ == 0) first_error_ = what;
  }

  std::string conninfo_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0};
  std::atomic<int> errors_{0};
  mutable std::mutex mu_;
  std::string first_error_;
};

// The proxy is alive and serves a fresh client.
void check_proxy_serves(ProxyProcess& proxy, const Cluster& cluster) {
  CHECK(proxy.running());
  const QueryResult r = exec_once(app_conninfo(proxy, cluster), "SELECT 'still serving'", 10s);
  CHECK_MESSAGE(r.ok, r.describe());
  if (r.ok) CHECK(r.value() == "still serving");
}

// A superuser connection straight to the primary, to watch and kill backends.
Connection primary_superuser(const Cluster& cluster) {
  return connect_ok(cluster.superuser_conninfo(cluster.primary_port(), "postgres"));
}

// A TCP listener that completes handshakes (the kernel's backlog) but never answers.
class SilentServer {
 public:
  SilentServer() : port_(pick_free_port()) {
    socket_ = Socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(socket_.ok());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(socket_.fd(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(socket_.fd(), 64) == 0);
  }
  int port() const { return port_; }

 private:
  int port_;
  Socket socket_;
};

}  // namespace

TEST_CASE("a thousand idle clients stay usable while fifty others run queries") {
  Cluster& cluster = Cluster::shared();
  REQUIRE(raise_open_files_limit(8192) >= 4096);
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config("transaction", 10));
  const std::string conninfo = app_conninfo(proxy, cluster);

  OpenedClients idle = open_clients(conninfo, 1000, 4);
  REQUIRE_MESSAGE(idle.failures == 0, idle.failures, " of 1000 logins failed; first: ", idle.first_error);

  std::vector<std::unique_ptr<LoopingClient>> load;
  for (int i = 0; i < 50; ++i) load.push_back(std::make_unique<LoopingClient>(conninfo));
  std::this_thread::sleep_for(3s);
  int queries = 0;
  for (auto& l : load) {
    l->stop();
    CHECK_MESSAGE(l->errors() == 0, l->first_error());
    CHECK(l->ok() > 0);
    queries += l->ok();
  }
  CHECK(queries >= 50);

  // Every 20th idle client, spread over both workers, still answers.
  int sampled = 0;
  for (std::size_t i = 0; i < idle.connections.size(); i += 20) {
    CAPTURE(i);
    Connection& c = idle.connections[i];
    REQUIRE(c.ok());
    const QueryResult r = c.exec("SELECT " + std::to_string(i), 10s);
    CHECK_MESSAGE(r.ok, r.describe());
    if (r.ok) CHECK(r.value() == std::to_string(i));
    ++sampled;
  }
  CHECK(sampled == 50);
  CHECK(proxy.running());
}

TEST_CASE("a client sending garbage gets 08P01 or is closed, and the proxy keeps serving others") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config("transaction", 4));
  // A client in the middle of its work, to show others are unaffected.
  Connection bystander = connect_ok(app_conninfo(proxy, cluster));
  REQUIRE(bystander.exec("SELECT 1").ok);

  SUBCASE("random bytes instead of a startup packet") {
    std::mt19937 rng(20240601);
    Bytes junk;
    junk.byte(0xff);  // a length far beyond any startup packet, whatever follows
    for (int i = 0; i < 1023; ++i) junk.byte(static_cast<std::uint8_t>(rng()));
    Socket s = connect_tcp(proxy.port());
    REQUIRE(s.ok());
    send_all(s.fd(), junk.get());
    ::shutdown(s.fd(), SHUT_WR);
    const Received r = receive_until_closed(s.fd(), 5s);
    CHECK_MESSAGE(r.closed, r.describe());
    if (r.error()) CHECK_MESSAGE(r.sqlstate() == "08P01", r.describe());
  }

  SUBCASE("a startup packet with a 2 GB length") {
    Socket s = connect_tcp(proxy.port());
    REQUIRE(s.ok());
    send_all(s.fd(), Bytes{}.int32(0x80000000U).int32(196608).get());
    const Received r = receive_until_closed(s.fd(), 5s);
    CHECK_MESSAGE(r.closed, r.describe());
    CHECK_MESSAGE(r.sqlstate() == "08P01", r.describe());
  }

  SUBCASE("a malformed SASL response during authentication") {
    Socket s = connect_tcp(proxy.port());
    REQUIRE(s.ok());
    REQUIRE(send_all(s.fd(), startup_message(cluster.app_user(), "app")));
    const Received first = receive_first(s.fd(), 5s);
    REQUIRE_MESSAGE(first.tags() == "R", first.describe());
    // SASLInitialResponse (F) naming no mechanism and claiming more data than it has.
    send_all(s.fd(), Bytes{}.byte('p').int32(11).cstring("").int32(100).byte('x').byte('y').get());
    const Received r = receive_until_closed(s.fd(), 5s);
    CHECK_MESSAGE(r.closed, r.describe());
    CHECK_MESSAGE(r.sqlstate() == "08P01", r.describe());
  }

  SUBCASE("after login") {
    Connection victim = connect_ok(app_conninfo(proxy, cluster));
    REQUIRE(victim.exec("SELECT 1").ok);
    std::vector<std::byte> garbage;
    SUBCASE("an unknown message type") { garbage = Bytes{}.byte('!').int32(4).get(); }
    SUBCASE("a message length of 3") { garbage = Bytes{}.byte('Q').int32(3).get(); }
    SUBCASE("a 2 GB message length") {
      garbage = Bytes{}.byte('Q').int32(0x80000000U).cstring("SELECT 1").get();
    }
    SUBCASE("a 2 GB - 1 message length") {
      garbage = Bytes{}.byte('Q').int32(0x7fffffffU).cstring("SELECT 1").get();
    }
    REQUIRE(send_all(PQsocket(victim.raw()), garbage));
    const Received r = receive_until_closed(PQsocket(victim.raw()), 5s);
    CHECK_MESSAGE(r.closed, r.describe());
    CHECK_MESSAGE(r.sqlstate() == "08P01", r.describe());
    CHECK_MESSAGE(r.severity() == "FATAL", r.describe());
  }

  CHECK(proxy.running());
  const QueryResult still = bystander.exec("SELECT 'bystander'");
  CHECK_MESSAGE(still.ok, still.describe());
  check_proxy_serves(proxy, cluster);
}

TEST_CASE("a client that disconnects mid-query leaves no stuck server behind") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  // One server on one worker: if the vanished client's server were never given back,
  // nobody else could run anything.
  ProxyConfig config = pool_config(mode, 1);
  config.workers = 1;
  config.pool_extra = "query_wait_timeout = \"3s\"\n";
  start_proxy(proxy, cluster, config);
  Connection monitor = primary_superuser(cluster);
  const std::string marker = "itest-vanished-" + random_suffix();

  {
    Connection gone = connect_ok(app_conninfo(proxy, cluster));
    send_query(gone, "SELECT pg_sleep(5) /* " + marker + " */");
    REQUIRE_MESSAGE(wait_backend_running(monitor, marker, 5s) != 0, "the query never started on the primary");
    ::shutdown(PQsocket(gone.raw()), SHUT_RDWR);  // gone without a Terminate
  }
  const auto vanished = Clock::now();

  const auto started = Clock::now();
  for (int i = 0; i < 10; ++i) {
    CAPTURE(i);
    const QueryResult r = exec_once(app_conninfo(proxy, cluster), "SELECT " + std::to_string(i), 10s);
    REQUIRE_MESSAGE(r.ok, r.describe());
    CHECK(r.value() == std::to_string(i));
  }
  const double took = seconds_since(started);
  CHECK_MESSAGE(took < 3.0, "10 sequential clients took ", took, " s");

  // The abandoned pg_sleep(5) is cancelled or runs out; it does not linger past that.
  bool cleared = false;
  while (seconds_since(vanished) < 7.5) {
    if (count_backends_running(monitor, marker) == 0) {
      cleared = true;
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  CHECK_MESSAGE(cleared, "a backend still runs the vanished client's query ", seconds_since(vanished),
                " s after it left");
  CHECK(proxy.running());
}

TEST_CASE("terminating a busy client's server backend fails that client only") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config(mode, 4));
  Connection monitor = primary_superuser(cluster);
  const std::string marker = "itest-terminated-" + random_suffix();

  LoopingClient other(app_conninfo(proxy, cluster));
  Connection victim = connect_ok(app_conninfo(proxy, cluster));
  send_query(victim, "SELECT pg_sleep(3) /* " + marker + " */");
  const int pid = wait_backend_running(monitor, marker, 5s);
  REQUIRE_MESSAGE(pid != 0, "the query never started on the primary");
  const auto killed_at = Clock::now();
  const QueryResult killed = monitor.exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  REQUIRE_MESSAGE(killed.ok, killed.describe());
  CHECK(killed.value() == "t");

  std::string message;
  const std::string state = await_query(victim.raw(), 5s, &message);
  CHECK(seconds_since(killed_at) < 2.0);
  // The server's own FATAL 57P01, or a connection-class error from the proxy.
  CHECK_MESSAGE((state == "57P01" || state.rfind("08", 0) == 0), state, ": ", message);

  std::this_thread::sleep_for(500ms);  // the looping client keeps going past the kill
  other.stop();
  CHECK_MESSAGE(other.errors() == 0, other.first_error());
  CHECK(other.ok() > 0);
  check_proxy_serves(proxy, cluster);
}

TEST_CASE("query_wait_timeout answers a client that waited too long with 53300 and keeps it usable") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  ProxyConfig config = pool_config(mode, 1);
  config.workers = 1;  // the one server is this worker's; no hand-over between workers
  config.pool_extra = "query_wait_timeout = \"1s\"\n";
  start_proxy(proxy, cluster, config);

  std::optional<Connection> holder(connect_ok(app_conninfo(proxy, cluster)));
  // The single server stays with the holder: inside a transaction, or for the session.
  if (mode == "transaction") REQUIRE(holder->exec("BEGIN").ok);
  REQUIRE(holder->exec("SELECT 1").ok);

  Connection waiter = connect_ok(app_conninfo(proxy, cluster));
  const auto started = Clock::now();
  const QueryResult refused = waiter.exec("SELECT 'waited'", 10s);
  const double waited = seconds_since(started);
  CHECK(refused.sqlstate == "53300");
  CHECK_MESSAGE(refused.message.find("query_wait_timeout") != std::string::npos, refused.describe());
  CHECK(waited >= 0.9);
  CHECK(waited < 2.0);
  REQUIRE(waiter.ok());

  // The holder was not disturbed, and once it lets go the waiter's next query runs.
  CHECK(holder->exec("SELECT 2").value() == "2");
  if (mode == "transaction") {
    CHECK(holder->exec("COMMIT").ok);
  } else {
    holder.reset();
  }
  const QueryResult after = waiter.exec("SELECT 'served'", 10s);
  CHECK_MESSAGE(after.ok, after.describe());
  if (after.ok) CHECK(after.value() == "served");
}

// With write_wait 0 a login or write does not wait for the primary to come back (with the
// default it waits, and then gets this same error: failover_restart_test).
TEST_CASE("a database whose server is down fails fast with a class-08 error naming it") {
  Cluster& cluster = Cluster::shared();
  int port = 0;
  std::optional<SilentServer> silent;
  double at_least = 0;
  SUBCASE("the port is closed") { port = pick_free_port({cluster.primary_port(), cluster.replica_port()}); }
  SUBCASE("the server accepts connections but never answers") {
    silent.emplace();
    port = silent->port();
    at_least = 0.8;  // only server_connect_timeout can end the wait
  }
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction", 4);
  config.extra = "[[databases]]\nname = \"down\"\nprimary = \"postgres://127.0.0.1:" + std::to_string(port) +
                 "/app\"\nserver_connect_timeout = \"1s\"\nwrite_wait = \"0s\"\n";
  start_proxy(proxy, cluster, config);

  for (int attempt = 0; attempt < 2; ++attempt) {
    CAPTURE(attempt);
    const auto started = Clock::now();
    Connection c = Connection::open(app_conninfo(proxy, cluster, "down"), 10s);
    std::string state = c.sqlstate();
    std::string message = c.error();
    if (c.ok()) {  // the login may succeed and the first query fail instead
      const QueryResult r = c.exec("SELECT 1", 10s);
      CHECK_FALSE(r.ok);
      state = r.sqlstate;
      message = r.message;
    }
    const double took = seconds_since(started);
    CHECK_MESSAGE(state.rfind("08", 0) == 0, state, ": ", message);
    CHECK_MESSAGE(message.find("\"down\"") != std::string::npos, message);
    CHECK(took < 1.0 + 2 * at_least);  // a login tries the server twice (a read may go elsewhere)
    CHECK(took >= at_least);
  }
  check_proxy_serves(proxy, cluster);
}

TEST_CASE("client_idle_timeout closes an idle client with 57P05 and spares a busy one") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  ProxyConfig config = pool_config(mode, 4);
  config.pool_extra = "client_idle_timeout = \"1s\"\n";
  start_proxy(proxy, cluster, config);

  Connection idle = connect_ok(app_conninfo(proxy, cluster));
  REQUIRE(idle.exec("SELECT 1").ok);  // in session mode this client now holds a server
  const auto idle_since = Clock::now();

  // A client that never stays quiet for a second is never closed.
  std::atomic<int> busy_errors{0};
  std::string busy_error;
  std::thread busy([&] {
    Connection c = Connection::open(app_conninfo(proxy, cluster));
    for (int i = 0; i < 12; ++i) {
      const QueryResult r = c.exec("SELECT 1", 5s);
      if (!r.ok && busy_errors++ == 0) busy_error = r.describe();
      std::this_thread::sleep_for(250ms);
    }
  });

  const Received r = receive_until_closed(PQsocket(idle.raw()), 6s);
  const double after = seconds_since(idle_since);
  busy.join();
  CHECK_MESSAGE(r.sqlstate() == "57P05", r.describe());
  CHECK_MESSAGE(r.severity() == "FATAL", r.describe());
  CHECK_MESSAGE(r.closed, r.describe());
  CHECK(after >= 0.9);
  CHECK(after < 3.5);
  CHECK_MESSAGE(busy_errors == 0, busy_error);
  check_proxy_serves(proxy, cluster);
}

TEST_CASE("login_timeout closes a client that does not finish logging in, with 57014") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction", 4);
  config.extra = "[auth]\nlogin_timeout = \"1s\"\n";
  start_proxy(proxy, cluster, config);
  // Logged in, then quiet for longer than the timeout: not affected by it.
  Connection bystander = connect_ok(app_conninfo(proxy, cluster));
  REQUIRE(bystander.exec("SELECT 1").ok);

  const auto started = Clock::now();
  SUBCASE("a connection that sends nothing") {
    Socket s = connect_tcp(proxy.port());
    REQUIRE(s.ok());
    const Received r = receive_until_closed(s.fd(), 6s);
    const double after = seconds_since(started);
    CHECK_MESSAGE(r.closed, r.describe());
    if (r.error()) CHECK_MESSAGE(r.sqlstate() == "57014", r.describe());
    CHECK(after >= 0.9);
    CHECK(after < 3.0);
  }
  SUBCASE("a client that stops in the middle of the SCRAM exchange") {
    Socket s = connect_tcp(proxy.port());
    REQUIRE(s.ok());
    REQUIRE(send_all(s.fd(), startup_message(cluster.app_user(), "app")));
    const Received r = receive_until_closed(s.fd(), 6s);
    const double after = seconds_since(started);
    CHECK_MESSAGE(r.closed, r.describe());
    CHECK_MESSAGE(r.sqlstate() == "57014", r.describe());
    CHECK_MESSAGE(r.severity() == "FATAL", r.describe());
    CHECK(after >= 0.9);
    CHECK(after < 3.0);
  }
  const QueryResult still = bystander.exec("SELECT 'bystander'");
  CHECK_MESSAGE(still.ok, still.describe());
  check_proxy_serves(proxy, cluster);
}

TEST_CASE("a startup packet and a query over 2 KB that arrive in pieces are answered") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction", 2);
  config.auth_method = "trust";
  start_proxy(proxy, cluster, config);

  // Sends `bytes` in two writes with a pause between, so the proxy reads them apart.
  auto send_in_two = [](int fd, const std::vector<std::byte>& bytes, std::size_t first) {
    REQUIRE(send_all(fd, std::vector<std::byte>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(first))));
    std::this_thread::sleep_for(300ms);
    REQUIRE(send_all(fd, std::vector<std::byte>(bytes.begin() + static_cast<std::ptrdiff_t>(first), bytes.end())));
  };
  auto until_ready = [](const Received& r) { return !r.messages.empty() && r.messages.back().tag == 'Z'; };

  Socket s = connect_tcp(proxy.port());
  REQUIRE(s.ok());
  // A startup packet of about 2.5 KB: a long application_name.
  Bytes startup_body;
  startup_body.int32(196608)
      .cstring("user").cstring(cluster.app_user())
      .cstring("database").cstring("app")
      .cstring("application_name").cstring(std::string(2500, 'a'))
      .byte(0);
  const std::vector<std::byte> startup =
      Bytes{}.int32(static_cast<std::uint32_t>(startup_body.get().size() + 4)).raw(startup_body.get()).get();
  REQUIRE(startup.size() > 2048);
  send_in_two(s.fd(), startup, 1400);
  const Received login = receive(s.fd(), 10s, until_ready);
  REQUIRE_MESSAGE(until_ready(login), login.describe());
  CHECK_FALSE(login.error());

  // A Query of about 3 KB, first 1,400 bytes, then the rest.
  const std::string value(3000, 'x');
  const std::string sql = "SELECT '" + value + "' AS v";
  Bytes query_body;
  query_body.cstring(sql);
  const std::vector<std::byte> query =
      Bytes{}.byte('Q').int32(static_cast<std::uint32_t>(query_body.get().size() + 4)).raw(query_body.get()).get();
  send_in_two(s.fd(), query, 1400);
  const Received answer = receive(s.fd(), 10s, until_ready);
  REQUIRE_MESSAGE(until_ready(answer), answer.describe());
  CHECK_MESSAGE(answer.tags() == "TDCZ", answer.describe());
  bool value_seen = false;
  for (const auto& m : answer.messages) {
    if (m.tag != 'D') continue;
    const std::string row(reinterpret_cast<const char*>(m.body.data()), m.body.size());
    value_seen = row.find(value) != std::string::npos;
  }
  CHECK(value_seen);
  check_proxy_serves(proxy, cluster);
}
