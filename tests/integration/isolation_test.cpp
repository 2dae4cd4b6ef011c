// Isolation between clients in transaction mode (docs/security.md): nothing one client
// leaves on a server connection (its role, a set_config(), an SQL PREPARE, a prepared
// statement, also one whose Close or Parse the server skipped after an error) is seen or
// run by the next client on that connection. Each test has one worker and a pool of one
// server, so both clients use the same server connection; each checks that they did (the
// same backend pid).
//
// Also: the BackendKeyData of successive logins is random, not a counter; a notification
// reaches only the client that listened; a cancel reaches only the lease it was aimed at.

#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <set>
#include <thread>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/proxy_fixture.h"
#include "tests/support/fault_relay.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// One worker, one server: every client of the proxy runs on the same server connection.
ProxyConfig one_shared_server() {
  ProxyConfig config = pool_config("transaction", 1);
  config.workers = 1;
  return config;
}

// A proxy with one_shared_server() in front of the test cluster, and its clients.
struct SharedServerProxy {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  explicit SharedServerProxy(ProxyConfig config = one_shared_server()) { start_proxy(proxy, cluster, config); }
  // The same, its server connection through `relay` (in front of the primary).
  explicit SharedServerProxy(const FaultRelay& relay) {
    ProxyConfig config = one_shared_server();
    config.primary_port = relay.port();
    start_proxy(proxy, cluster, config);
  }
  // A client; `extra` is more conninfo ("options='-c role=x'").
  Connection connect(const std::string& extra = "") { return connect_ok(app_conninfo(proxy, cluster) + " " + extra); }
};

// A request refused as PostgreSQL refuses a statement name it does not know.
void check_unknown_statement(const QueryResult& r, std::string_view message = {}) {
  CHECK_MESSAGE(!r.ok, r.describe());
  CHECK(r.sqlstate == "26000");
  if (!message.empty()) CHECK(r.message == message);
  CHECK(r.rows.empty());
}

// Runs the client's statement `name` `times` times; each must answer `expected`.
void check_runs(Connection& c, const std::string& name, const std::string& expected, int times = 1) {
  for (int i = 0; i < times; ++i) {
    const QueryResult r = c.exec_prepared(name, {});
    CHECK_MESSAGE(r.ok, name, " run ", i, ": ", r.describe());
    if (r.ok) CHECK(r.value() == expected);
  }
}

// The backend pid the client's next statement runs on.
std::string backend_of(Connection& c) {
  const QueryResult r = c.exec("SELECT pg_backend_pid()");
  REQUIRE_MESSAGE(r.ok, r.describe());
  return r.value();
}

std::string current_user_of(Connection& c) {
  const QueryResult r = c.exec("SELECT current_user");
  REQUIRE_MESSAGE(r.ok, r.describe());
  return r.value();
}

// A role the app user may SET ROLE to, created by the superuser and dropped (after the
// proxy that used it has stopped: declare it before the SharedServerProxy).
class TenantRole {
 public:
  explicit TenantRole(Cluster& cluster)
      : cluster_(cluster), name_("itest_tenant_" + random_suffix()) {
    Connection super = connect_ok(cluster_.superuser_conninfo(cluster_.primary_port(), "postgres"));
    const QueryResult created = super.exec("CREATE ROLE " + name_ + " NOLOGIN");
    REQUIRE_MESSAGE(created.ok, created.describe());
    const QueryResult granted = super.exec("GRANT " + name_ + " TO " + cluster_.app_user());
    REQUIRE_MESSAGE(granted.ok, granted.describe());
  }
  ~TenantRole() {
    exec_once(cluster_.superuser_conninfo(cluster_.primary_port(), "postgres"), "DROP ROLE IF EXISTS " + name_,
              10s);
  }
  TenantRole(const TenantRole&) = delete;
  TenantRole& operator=(const TenantRole&) = delete;
  const std::string& name() const { return name_; }

 private:
  Cluster& cluster_;
  std::string name_;
};

}  // namespace

TEST_CASE("a client's SET ROLE is reset before the next client uses its server") {
  TenantRole tenant(Cluster::shared());  // dropped after the proxy stops
  SharedServerProxy p;
  Connection a = p.connect();
  Connection b = p.connect();
  const QueryResult set_role = a.exec("SET ROLE " + tenant.name());
  REQUIRE_MESSAGE(set_role.ok, set_role.describe());
  CHECK(current_user_of(a) == tenant.name());
  const std::string a_backend = backend_of(a);

  const QueryResult seen = b.exec("SELECT current_user, session_user, pg_backend_pid()");
  REQUIRE_MESSAGE(seen.ok, seen.describe());
  REQUIRE_MESSAGE(seen.value(0, 2) == a_backend, "the clients did not share their server");
  CHECK(seen.value(0, 0) == p.cluster.app_user());
  CHECK(seen.value(0, 1) == p.cluster.app_user());
  const QueryResult role = b.exec("SHOW role");
  REQUIRE_MESSAGE(role.ok, role.describe());
  CHECK(role.value() == "none");
}

TEST_CASE("a role given in startup options is its client's own and never the next client's") {
  TenantRole tenant(Cluster::shared());
  SharedServerProxy p;
  Connection a = p.connect("options='-c role=" + tenant.name() + "'");
  Connection b = p.connect();
  CHECK(current_user_of(a) == tenant.name());
  const std::string a_backend = backend_of(a);

  REQUIRE_MESSAGE(backend_of(b) == a_backend, "the clients did not share their server");
  CHECK(current_user_of(b) == p.cluster.app_user());
  // Back on the same server, a gets its startup role again.
  CHECK(current_user_of(a) == tenant.name());
  CHECK(current_user_of(b) == p.cluster.app_user());
}

TEST_CASE("a session-level set_config() of one client does not reach the next client") {
  SharedServerProxy p;
  Connection a = p.connect();
  Connection b = p.connect();
  const std::string a_backend = backend_of(a);
  REQUIRE_MESSAGE(backend_of(b) == a_backend, "the clients did not share their server");

  // A value written in the text, or given as a parameter (read from the Bind), is
  // followed and replayed for its client (docs/pooling.md); the next client on the server
  // gets the server reset first.
  SUBCASE("in a simple Query") {
    const QueryResult set = a.exec("SELECT set_config('statement_timeout', '4321', false)");
    REQUIRE_MESSAGE(set.ok, set.describe());
  }
  SUBCASE("spelt in capitals, in a simple Query") {
    const QueryResult set = a.exec("SELECT 1 AS one, pg_catalog.SET_CONFIG('statement_timeout', '4321', FALSE)");
    REQUIRE_MESSAGE(set.ok, set.describe());
  }
  SUBCASE("its value a parameter of a Parse") {
    const QueryResult set = a.exec_params("SELECT set_config('statement_timeout', $1, false)", {"4321"});
    REQUIRE_MESSAGE(set.ok, set.describe());
  }
  SUBCASE("its value a parameter of a named statement run again later") {
    const QueryResult prepared = a.prepare("set_timeout", "SELECT set_config('statement_timeout', $1, false)");
    REQUIRE_MESSAGE(prepared.ok, prepared.describe());
    const QueryResult first = a.exec_prepared("set_timeout", {"1234"});
    REQUIRE_MESSAGE(first.ok, first.describe());
    CHECK(backend_of(a) == a_backend);
    const QueryResult set = a.exec_prepared("set_timeout", {"4321"});
    REQUIRE_MESSAGE(set.ok, set.describe());
  }
  const QueryResult a_sees = a.exec("SHOW statement_timeout");
  REQUIRE_MESSAGE(a_sees.ok, a_sees.describe());
  CHECK(a_sees.value() == "4321ms");

  const QueryResult seen = b.exec("SELECT current_setting('statement_timeout'), pg_backend_pid()");
  REQUIRE_MESSAGE(seen.ok, seen.describe());
  REQUIRE(seen.value(0, 1) == a_backend);
  CHECK(seen.value(0, 0) == "0");
}

TEST_CASE("an SQL PREPARE of one client cannot be run by another") {
  SharedServerProxy p;
  Connection a = p.connect();
  Connection b = p.connect();
  // Protocol-level statements of both clients; a's is on the server before the PREPARE.
  REQUIRE(a.prepare("a_stmt", "SELECT 'a protocol'").ok);
  REQUIRE(b.prepare("b_stmt", "SELECT 'b protocol'").ok);
  check_runs(a, "a_stmt", "a protocol");
  const std::string a_backend = backend_of(a);

  // The PREPARE pins a to its server (docs/pooling.md): b waits for it.
  const QueryResult prepared = a.exec("PREPARE s AS SELECT 'A only'");
  REQUIRE_MESSAGE(prepared.ok, prepared.describe());
  auto b_first = std::async(std::launch::async, [&b] { return b.exec_prepared("b_stmt", {}); });
  const QueryResult own = a.exec("EXECUTE s");
  REQUIRE_MESSAGE(own.ok, own.describe());
  CHECK(own.value() == "A only");
  check_runs(a, "a_stmt", "a protocol", 2);
  CHECK(backend_of(a) == a_backend);
  CHECK(b_first.wait_for(0ms) == std::future_status::timeout);

  // a ends: its server, reset, goes to b, whose own statement is prepared there in the
  // same write as the reset, and runs twice.
  a = Connection();
  const QueryResult b_ran = b_first.get();
  CHECK_MESSAGE(b_ran.ok, b_ran.describe());
  if (b_ran.ok) CHECK(b_ran.value() == "b protocol");
  check_runs(b, "b_stmt", "b protocol");
  check_unknown_statement(b.exec("EXECUTE s"));
  REQUIRE(backend_of(b) == a_backend);
}

TEST_CASE("a prepared statement of one client is never run by another that did not prepare it") {
  SharedServerProxy p;
  Connection a = p.connect();
  Connection b = p.connect();
  const QueryResult prepared = a.prepare("s_probe", "SELECT 'A secret'");
  REQUIRE_MESSAGE(prepared.ok, prepared.describe());
  check_runs(a, "s_probe", "A secret");
  const std::string a_backend = backend_of(a);
  const std::string unknown = "prepared statement \"s_probe\" does not exist";  // PostgreSQL's text

  SUBCASE("outside a transaction, answered by the proxy") {
    check_unknown_statement(b.exec_prepared("s_probe", {}), unknown);
  }
  SUBCASE("inside a transaction, which the error aborts as on PostgreSQL") {
    REQUIRE(b.exec("BEGIN").ok);
    check_unknown_statement(b.exec_prepared("s_probe", {}), unknown);
    CHECK(PQtransactionStatus(b.raw()) == PQTRANS_INERROR);
    REQUIRE(b.exec("ROLLBACK").ok);
  }
  SUBCASE("the unnamed statement") {
    const QueryResult unnamed = a.exec_params("SELECT 'A unnamed' WHERE $1 = 'x'", {"x"});
    REQUIRE_MESSAGE(unnamed.ok, unnamed.describe());
    check_unknown_statement(b.exec_prepared("", {"x"}), "unnamed prepared statement does not exist");
  }
  // b's connection goes on, on the same server, and the owner still runs its statement.
  CHECK(backend_of(b) == a_backend);
  check_runs(a, "s_probe", "A secret");
}

namespace {

// Sends what `send` queues in one libpq pipeline ending with a Sync; returns the
// statuses of the results up to the Sync's, in order.
std::vector<ExecStatusType> run_pipeline(Connection& c, const std::function<void(PGconn*)>& send) {
  PGconn* conn = c.raw();
  REQUIRE(PQenterPipelineMode(conn) == 1);
  send(conn);
  REQUIRE(PQpipelineSync(conn) == 1);
  std::vector<ExecStatusType> statuses;
  const auto deadline = Clock::now() + 10s;
  while (statuses.empty() || statuses.back() != PGRES_PIPELINE_SYNC) {
    REQUIRE_MESSAGE(Clock::now() < deadline, "no answer to the pipeline");
    PQflush(conn);
    if (PQisBusy(conn) != 0) {
      pollfd p{PQsocket(conn), POLLIN, 0};
      poll(&p, 1, 100);
      REQUIRE(PQconsumeInput(conn) == 1);
      continue;
    }
    PGresult* r = PQgetResult(conn);
    if (r == nullptr) continue;  // the end of one query's results
    statuses.push_back(PQresultStatus(r));
    PQclear(r);
  }
  REQUIRE(PQexitPipelineMode(conn) == 1);
  return statuses;
}

const std::vector<ExecStatusType> kErrorThenSkipped = {PGRES_FATAL_ERROR, PGRES_PIPELINE_ABORTED,
                                                       PGRES_PIPELINE_SYNC};

}  // namespace

TEST_CASE("what the server skipped after an error is still known to be another client's statement") {
  SharedServerProxy p;
  Connection a = p.connect();
  Connection b = p.connect();

  SUBCASE("a named statement whose Close was skipped") {
    REQUIRE(a.prepare("s_probe", "SELECT 'A secret'").ok);
    check_runs(a, "s_probe", "A secret");
    // b's run of s_probe (the proxy closes a's statement first, unseen) follows an error:
    // the server skips both, so a's statement is still there.
    CHECK(run_pipeline(b, [](PGconn* conn) {
            REQUIRE(PQsendQueryParams(conn, "SELEC 'not SQL'", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1);
            REQUIRE(PQsendQueryPrepared(conn, "s_probe", 0, nullptr, nullptr, nullptr, 0) == 1);
          }) == kErrorThenSkipped);
    REQUIRE(backend_of(b) == backend_of(a));
    check_runs(a, "s_probe", "A secret", 2);
    check_unknown_statement(b.exec_prepared("s_probe", {}), "prepared statement \"s_probe\" does not exist");
  }
  SUBCASE("the unnamed statement, when b's own Parse of it was skipped") {
    const QueryResult unnamed = a.exec_params("SELECT 'A unnamed' WHERE $1 = 'x'", {"x"});
    REQUIRE_MESSAGE(unnamed.ok, unnamed.describe());
    // b's unnamed Parse follows an error: skipped, so a's unnamed statement is still there.
    CHECK(run_pipeline(b, [](PGconn* conn) {
            REQUIRE(PQsendPrepare(conn, "b_bad", "SELEC 'not SQL'", 0, nullptr) == 1);
            REQUIRE(PQsendQueryParams(conn, "SELECT 'B unnamed'", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1);
          }) == kErrorThenSkipped);
    check_unknown_statement(b.exec_prepared("", {"x"}), "unnamed prepared statement does not exist");
    REQUIRE(backend_of(b) == backend_of(a));
  }
}

TEST_CASE("each login gets a random process id and secret key") {
  ProxyConfig config = one_shared_server();
  config.auth_method = "trust";  // the raw logins below read BackendKeyData without a password exchange
  SharedServerProxy p(config);
  constexpr int kLogins = 12;

  // Fewer than three equal differences between consecutive values: a counter (of any
  // step) has them all equal.
  auto not_sequential = [](const std::vector<int64_t>& values) {
    int equal = 0;
    for (std::size_t i = 2; i < values.size(); ++i)
      if (values[i] - values[i - 1] == values[i - 1] - values[i - 2]) ++equal;
    return equal < 3;
  };

  std::vector<int64_t> pids;
  for (int i = 0; i < kLogins; ++i) {
    pids.push_back(p.connect().backend_pid());
  }
  CHECK(std::set<int64_t>(pids.begin(), pids.end()).size() == kLogins);
  CHECK(not_sequential(pids));

  std::vector<int64_t> raw_pids;
  std::vector<int64_t> secrets;
  for (int i = 0; i < kLogins; ++i) {
    Socket s = connect_tcp(p.proxy.port());
    REQUIRE(s.ok());
    REQUIRE(send_all(s.fd(), startup_message(p.cluster.app_user(), "app")));
    const Received login =
        receive(s.fd(), 10s, [](const Received& r) { return !r.messages.empty() && r.messages.back().tag == 'Z'; });
    bool found = false;
    for (const BackendMessage& m : login.messages) {
      if (m.tag != 'K' || m.body.size() != 8) continue;
      auto int32_at = [&m](std::size_t at) {
        uint32_t v = 0;
        for (std::size_t k = 0; k < 4; ++k) v = (v << 8) | std::to_integer<uint32_t>(m.body[at + k]);
        return static_cast<int64_t>(static_cast<int32_t>(v));
      };
      raw_pids.push_back(int32_at(0));
      secrets.push_back(int32_at(4));
      found = true;
    }
    REQUIRE_MESSAGE(found, login.describe());
  }
  CHECK(std::set<int64_t>(raw_pids.begin(), raw_pids.end()).size() == kLogins);
  CHECK(std::set<int64_t>(secrets.begin(), secrets.end()).size() == kLogins);
  CHECK(not_sequential(raw_pids));
  CHECK(not_sequential(secrets));
}

// Polls `done` every 10 ms for up to 10 s.
bool eventually(const std::function<bool()>& done) {
  const auto deadline = Clock::now() + 10s;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

std::size_t count_in_log(const ProxyProcess& proxy, std::string_view what) {
  std::ifstream in(proxy.stderr_path());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// A blocking PQcancel for `c`, from another thread: true when the proxy took it.
std::future<bool> cancel_async(Connection& c) {
  PGcancel* cancel = PQgetCancel(c.raw());
  return std::async(std::launch::async, [cancel] {
    char error[256];
    const bool sent = PQcancel(cancel, error, sizeof error) == 1;
    PQfreeCancel(cancel);
    return sent;
  });
}

// Two clients of a SharedServerProxy whose server connection goes through a relay.
struct RelayedClients {
  Cluster& cluster = Cluster::shared();
  FaultRelay relay{cluster.host(), cluster.primary_port()};
  SharedServerProxy p{relay};
  Connection a = p.connect();
  Connection b = p.connect();
  std::string a_backend = backend_of(a);
};

TEST_CASE("a notification reaches only the client that listened") {
  RelayedClients t;
  auto& [cluster, relay, p, a, b, a_backend] = t;
  const std::string channel = "itest_channel_" + random_suffix();
  const QueryResult listened = a.exec("LISTEN " + channel);
  REQUIRE_MESSAGE(listened.ok, listened.describe());

  // The server sends the notification at once (its client is idle); the relay holds it.
  // Then a ends: the LISTEN pinned it to the server (docs/pooling.md), which goes back to
  // the pool reset, and the notification reaches pgsidecar after b asked for that server.
  relay.stall_replies();
  const FaultRelayStats before = relay.stats();
  Connection notifier = connect_ok(cluster.superuser_conninfo(cluster.primary_port(), cluster.database()));
  const QueryResult notified = notifier.exec("NOTIFY " + channel + ", 'for a only'");
  REQUIRE_MESSAGE(notified.ok, notified.describe());
  REQUIRE(eventually([&] { return relay.stats().held_bytes > before.held_bytes; }));
  a = Connection();
  auto b_reply = std::async(std::launch::async, [&b] { return b.exec("SELECT pg_backend_pid()"); });
  std::this_thread::sleep_for(300ms);  // b's request on its way (if not, the server is idle: dropped too)
  relay.pass();
  const QueryResult seen = b_reply.get();
  REQUIRE_MESSAGE(seen.ok, seen.describe());
  CHECK(seen.value() == a_backend);  // the same server connection, still in the pool
  PQconsumeInput(b.raw());
  PGnotify* leaked = PQnotifies(b.raw());
  CHECK_MESSAGE(leaked == nullptr, "b received the notification of a's channel ", channel);
  if (leaked != nullptr) PQfreemem(leaked);
}

TEST_CASE("a cancel reaches only the lease it was aimed at") {
  RelayedClients t;
  auto& [cluster, relay, p, a, b, a_backend] = t;

  SUBCASE("the server goes to no other client while the cancel is on its way") {
    // a's query ends on its own while pgsidecar's cancel connection waits in the relay;
    // b, waiting for the only server, must not get it before the server took the cancel.
    auto a_reply = std::async(std::launch::async, [&a] { return a.exec("SELECT pg_sleep(0.4), 'a done'"); });
    std::this_thread::sleep_for(100ms);
    relay.hold_new();
    auto cancelled = cancel_async(a);
    REQUIRE(eventually([&] { return count_in_log(p.proxy, "cancel_forwarded") == 1; }));
    auto b_reply = std::async(std::launch::async, [&b] { return b.exec("SELECT pg_sleep(1), 'b done'"); });
    const QueryResult a_result = a_reply.get();
    std::this_thread::sleep_for(300ms);  // long enough for b's query to start, were the server free
    relay.pass();
    CHECK(cancelled.get());
    // a was not cancelled (the cancel came too late for its query); nor was b.
    CHECK_MESSAGE(a_result.ok, a_result.describe());
    const QueryResult b_result = b_reply.get();
    CHECK_MESSAGE(b_result.ok, b_result.describe());
    if (b_result.ok) CHECK(b_result.value(0, 1) == "b done");
  }

  SUBCASE("a cancel of a client holding no server is dropped") {
    auto b_reply = std::async(std::launch::async, [&b] { return b.exec("SELECT pg_sleep(0.5), 'b done'"); });
    std::this_thread::sleep_for(100ms);
    CHECK(cancel_async(a).get());
    const QueryResult b_result = b_reply.get();
    CHECK_MESSAGE(b_result.ok, b_result.describe());
    CHECK(count_in_log(p.proxy, "cancel_forwarded") == 0);
    CHECK(count_in_log(p.proxy, "cancel_dropped") == 1);
  }

  SUBCASE("one cancel at a time per client") {
    auto a_reply = std::async(std::launch::async, [&a] { return a.exec("SELECT pg_sleep(5)"); });
    std::this_thread::sleep_for(100ms);
    relay.hold_new();
    std::vector<std::future<bool>> cancels;
    for (int i = 0; i < 3; ++i) cancels.push_back(cancel_async(a));
    REQUIRE(eventually([&] { return count_in_log(p.proxy, "cancel_dropped") == 2; }));
    CHECK(count_in_log(p.proxy, "cancel_forwarded") == 1);
    relay.pass();
    for (auto& c : cancels) CHECK(c.get());
    const QueryResult a_result = a_reply.get();
    CHECK(!a_result.ok);
    CHECK(a_result.sqlstate == "57014");  // query_canceled: the one cancel that went
  }
  CHECK(backend_of(b) == a_backend);
}
