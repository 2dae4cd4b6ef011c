// Client authentication to the proxy (SCRAM-SHA-256, md5, trust, a SCRAM verifier in
// the config), login failures and their SQLSTATEs, cancel requests, and the Unix socket
// listener. The proxy's own logins to the servers use SCRAM (the test cluster asks for it),
// so every successful query here covers that too.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tests/integration/proxy_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// Authentication request codes (AuthenticationXXX (B), Int32 after the 'R').
constexpr int kAuthOk = 0;
constexpr int kAuthMd5 = 5;
constexpr int kAuthSasl = 10;

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
    text.replace(at, from.size(), to);
  return text;
}

// PQcancel blocks until the peer closes the cancel connection; run it aside so that a
// proxy that never closes fails the test instead of hanging it. True once PQcancel
// returned success within timeout.
bool cancel_bounded(PGconn* conn, std::chrono::milliseconds timeout) {
  struct Shared {
    std::mutex mu;
    bool done = false;
    bool ok = false;
  };
  auto shared = std::make_shared<Shared>();
  PGcancel* cancel = PQgetCancel(conn);
  if (cancel == nullptr) return false;
  std::thread([cancel, shared] {
    char err[256];
    const bool ok = PQcancel(cancel, err, sizeof err) == 1;
    PQfreeCancel(cancel);
    std::lock_guard lock(shared->mu);
    shared->done = true;
    shared->ok = ok;
  }).detach();
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    {
      std::lock_guard lock(shared->mu);
      if (shared->done) return shared->ok;
    }
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// The SCRAM-SHA-256 verifier PostgreSQL itself stores for `password`, read back from
// pg_authid for a throwaway role.
std::string scram_verifier_from_postgres(const Cluster& cluster, const std::string& password) {
  Connection super = connect_ok(cluster.superuser_conninfo(cluster.primary_port(), "postgres"));
  const std::string role = "itest_verifier_" + random_suffix();
  REQUIRE(super.exec("SET password_encryption = 'scram-sha-256'").ok);
  const QueryResult escaped = super.exec_params("SELECT quote_literal($1)", {password});
  REQUIRE(escaped.ok);
  const QueryResult created = super.exec("CREATE ROLE " + role + " PASSWORD " + escaped.value());
  REQUIRE_MESSAGE(created.ok, created.describe());
  const QueryResult verifier = super.exec_params("SELECT rolpassword FROM pg_authid WHERE rolname = $1", {role});
  super.exec("DROP ROLE " + role);
  REQUIRE_MESSAGE(verifier.ok, verifier.describe());
  REQUIRE(verifier.value().rfind("SCRAM-SHA-256$4096:", 0) == 0);
  return verifier.value();
}

}  // namespace

TEST_CASE("a client logs in with SCRAM-SHA-256 by default") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config("transaction"));

  CHECK(authentication_request(proxy.port(), cluster.app_user(), "app") == kAuthSasl);
  Connection c = connect_ok(app_conninfo(proxy, cluster));
  const QueryResult who = c.exec("SELECT current_user, current_database()");
  REQUIRE_MESSAGE(who.ok, who.describe());
  CHECK(who.value(0, 0) == cluster.app_user());
  CHECK(who.value(0, 1) == cluster.database());

  const ChildResult psql = psql_via_proxy(cluster, proxy, {"-c", "SELECT current_user"});
  CHECK_MESSAGE(psql.exit_code == 0, psql.describe());
  CHECK(psql.out == cluster.app_user() + "\n");
}

TEST_CASE("a wrong password and an unknown user both fail with the same FATAL 28P01") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config("transaction"));

  const Connection wrong = Connection::open(proxy.conninfo(cluster.app_user(), "not-the-password", "app"));
  CHECK_FALSE(wrong.ok());
  CHECK_MESSAGE(wrong.sqlstate() == "28P01", wrong.error());
  CHECK_MESSAGE(wrong.error().find("FATAL:  28P01: password authentication failed for user \"" +
                                   cluster.app_user() + "\"") != std::string::npos,
                wrong.error());

  // An unknown user goes through the same SCRAM exchange and gets the same words, so a
  // client cannot tell which users exist.
  const std::string stranger = "nobody_" + random_suffix();
  CHECK(authentication_request(proxy.port(), stranger, "app") == kAuthSasl);
  const Connection unknown = Connection::open(proxy.conninfo(stranger, "whatever", "app"));
  CHECK_FALSE(unknown.ok());
  CHECK_MESSAGE(unknown.sqlstate() == "28P01", unknown.error());
  CHECK(replace_all(unknown.error(), stranger, "USER") == replace_all(wrong.error(), cluster.app_user(), "USER"));

  // A failed login does not disturb the next one.
  CHECK(connect_ok(app_conninfo(proxy, cluster)).exec("SELECT 1").value() == "1");
}

TEST_CASE("an unknown database fails with FATAL 3D000") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config("transaction"));

  const Connection c = Connection::open(app_conninfo(proxy, cluster, "no_such_database"));
  CHECK_FALSE(c.ok());
  CHECK_MESSAGE(c.sqlstate() == "3D000", c.error());
  CHECK_MESSAGE(c.error().find("\"no_such_database\"") != std::string::npos, c.error());
  CHECK(connect_ok(app_conninfo(proxy, cluster)).exec("SELECT 1").value() == "1");
}

TEST_CASE("md5 authentication works with psql and rejects a wrong password") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction");
  config.auth_method = "md5";
  start_proxy(proxy, cluster, config);

  CHECK(authentication_request(proxy.port(), cluster.app_user(), "app") == kAuthMd5);
  const ChildResult ok = psql_via_proxy(cluster, proxy, {"-c", "SELECT current_user"});
  CHECK_MESSAGE(ok.exit_code == 0, ok.describe());
  CHECK(ok.out == cluster.app_user() + "\n");

  const ChildResult bad = run_psql(cluster, "127.0.0.1", proxy.port(), {"-c", "SELECT 1"}, "not-the-password");
  CHECK(bad.exit_code == 2);
  CHECK_MESSAGE(bad.err.find("password authentication failed for user \"" + cluster.app_user() + "\"") !=
                    std::string::npos,
                bad.describe());
  const Connection wrong = Connection::open(proxy.conninfo(cluster.app_user(), "not-the-password", "app"));
  CHECK_MESSAGE(wrong.sqlstate() == "28P01", wrong.error());
}

TEST_CASE("trust lets a configured user in without a password and still refuses unknown users") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction");
  config.auth_method = "trust";
  start_proxy(proxy, cluster, config);  // the password stays: the server still asks for it

  CHECK(authentication_request(proxy.port(), cluster.app_user(), "app") == kAuthOk);
  const ChildResult psql = run_psql(cluster, "127.0.0.1", proxy.port(), {"-c", "SELECT current_user"}, "");
  CHECK_MESSAGE(psql.exit_code == 0, psql.describe());
  CHECK(psql.out == cluster.app_user() + "\n");

  const Connection stranger = Connection::open(proxy.conninfo("nobody_" + random_suffix(), "", "app"));
  CHECK_FALSE(stranger.ok());
  CHECK_MESSAGE(stranger.sqlstate() == "28P01", stranger.error());
}

TEST_CASE("a SCRAM verifier as the configured password accepts the right password only") {
  Cluster& cluster = Cluster::shared();
  const std::string verifier = scram_verifier_from_postgres(cluster, cluster.app_password());
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction");
  config.password = verifier;
  config.server_password = cluster.app_password();  // a verifier cannot log in to a server
  start_proxy(proxy, cluster, config);

  CHECK(authentication_request(proxy.port(), cluster.app_user(), "app") == kAuthSasl);
  Connection c = connect_ok(app_conninfo(proxy, cluster));
  CHECK(c.exec("SELECT current_user").value() == cluster.app_user());
  const ChildResult psql = psql_via_proxy(cluster, proxy, {"-c", "SELECT 'verified'"});
  CHECK_MESSAGE(psql.exit_code == 0, psql.describe());
  CHECK(psql.out == "verified\n");

  const Connection wrong = Connection::open(proxy.conninfo(cluster.app_user(), "not-the-password", "app"));
  CHECK_FALSE(wrong.ok());
  CHECK_MESSAGE(wrong.sqlstate() == "28P01", wrong.error());
}

TEST_CASE("PQcancel stops a running query within 2 s with 57014 and the connection stays usable") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config(mode, 4));
  Connection monitor = connect_ok(cluster.superuser_conninfo(cluster.primary_port(), "postgres"));
  const std::string marker = "itest-cancel-" + random_suffix();

  // Several rounds: the client's cancel may land on either worker.
  Connection c = connect_ok(app_conninfo(proxy, cluster));
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    send_query(c, "SELECT pg_sleep(10) /* " + marker + " */");
    REQUIRE_MESSAGE(wait_backend_running(monitor, marker, 5s) != 0, "the query never started on the primary");
    const auto started = Clock::now();
    CHECK(cancel_bounded(c.raw(), 2s));
    std::string message;
    const std::string state = await_query(c.raw(), 5s, &message);
    CHECK_MESSAGE(state == "57014", state, ": ", message);
    CHECK(seconds_since(started) < 2.0);
    REQUIRE(c.ok());
    const QueryResult after = c.exec("SELECT 'usable'");
    CHECK_MESSAGE(after.ok, after.describe());
    if (after.ok) CHECK(after.value() == "usable");
  }
}

TEST_CASE("a CancelRequest with a wrong key is ignored") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config(mode, 4));
  Connection monitor = connect_ok(cluster.superuser_conninfo(cluster.primary_port(), "postgres"));
  const std::string marker = "itest-wrong-key-" + random_suffix();

  Connection c = connect_ok(app_conninfo(proxy, cluster));
  const auto started = Clock::now();
  send_query(c, "SELECT pg_sleep(1) /* " + marker + " */");
  REQUIRE_MESSAGE(wait_backend_running(monitor, marker, 5s) != 0, "the query never started on the primary");
  // The right process ID with a made-up key (a 1 in 2^31 chance of being the real one),
  // and a made-up process ID.
  const std::int32_t pid = PQbackendPID(c.raw());
  const auto wrong_key = static_cast<std::int32_t>(std::random_device{}() & 0x7fffffff);
  for (const auto& packet : {cancel_request(pid, wrong_key), cancel_request(pid ^ 0x55aa, wrong_key)}) {
    Socket s = connect_tcp(proxy.port());
    REQUIRE(s.ok());
    REQUIRE(send_all(s.fd(), packet));
    const Received r = receive_until_closed(s.fd(), 3s);
    CHECK_MESSAGE(r.closed, r.describe());  // closed with no answer, as PostgreSQL does
    CHECK_MESSAGE(r.messages.empty(), r.describe());
  }
  std::string message;
  const std::string state = await_query(c.raw(), 5s, &message);
  CHECK_MESSAGE(state.empty(), "the query was cancelled: ", state, ": ", message);
  CHECK(seconds_since(started) >= 0.9);
  CHECK(c.exec("SELECT 1").value() == "1");
}

TEST_CASE("psql connects through the Unix socket listener") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction");
  config.listen_extra = "unix_socket_dir = \"@DIR@\"\n";
  start_proxy(proxy, cluster, config);

  const std::string socket_path = proxy.dir() + "/.s.PGSQL." + std::to_string(proxy.port());
  CHECK_MESSAGE(::access(socket_path.c_str(), F_OK) == 0, socket_path, " does not exist");
  const ChildResult psql = run_psql(cluster, proxy.dir(), proxy.port(),
                                    {"-c", "SELECT 'via the socket', current_user"}, cluster.app_password());
  CHECK_MESSAGE(psql.exit_code == 0, psql.describe());
  CHECK(psql.out == "via the socket|" + cluster.app_user() + "\n");

  // libpq too, with a cancel request sent over the same socket path.
  Connection c = connect_ok(make_conninfo({{"host", proxy.dir()},
                                           {"port", std::to_string(proxy.port())},
                                           {"user", cluster.app_user()},
                                           {"password", cluster.app_password()},
                                           {"dbname", "app"}}));
  CHECK(c.exec("SELECT 2").value() == "2");
  send_query(c, "SELECT pg_sleep(10)");
  std::this_thread::sleep_for(300ms);
  const auto started = Clock::now();
  CHECK(cancel_bounded(c.raw(), 2s));
  CHECK(await_query(c.raw(), 5s) == "57014");
  CHECK(seconds_since(started) < 2.0);
}
