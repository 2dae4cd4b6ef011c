// Hardening against costly, stale or leaky behaviour, with libpq clients and the harness's
// real PostgreSQL: the SCRAM iteration limit and key derivation off the event loop, a
// reload that changes a password, slots reserved for admins above
// max_client_connections, and secrets kept out of logs, SHOW output and errors.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include "protocol/scram.h"
#include "tests/integration/proxy_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

Connection superuser(const Cluster& cluster) {
  return connect_ok(cluster.superuser_conninfo(cluster.primary_port(), "postgres"));
}

// A login role whose stored SCRAM verifier asks for `iterations` (PostgreSQL keeps a
// verifier given as the password as it is, whatever its count), dropped at the end.
class ScramRole {
 public:
  ScramRole(const Cluster& cluster, int iterations)
      : cluster_(cluster), name_("itest_scram_" + random_suffix()) {
    Connection su = superuser(cluster_);
    const QueryResult created = su.exec("CREATE ROLE " + name_ + " LOGIN");
    REQUIRE_MESSAGE(created.ok, created.describe());
    set_password(password(), iterations);
  }

  // The role's password from now on, stored as a verifier with this iteration count.
  void set_password(const std::string& password, int iterations = 4096) {
    std::vector<std::byte> salt(16);
    for (std::size_t i = 0; i < salt.size(); ++i) salt[i] = std::byte(static_cast<unsigned char>(rand() & 0xff));
    const std::string verifier = pgsidecar::protocol::format_scram_verifier(
        pgsidecar::protocol::make_scram_verifier(password, salt, iterations));
    Connection su = superuser(cluster_);
    const QueryResult altered = su.exec("ALTER ROLE " + name_ + " PASSWORD '" + verifier + "'");
    REQUIRE_MESSAGE(altered.ok, altered.describe());
  }
  ~ScramRole() {
    Connection su = Connection::open(cluster_.superuser_conninfo(cluster_.primary_port(), "postgres"));
    if (!su.ok()) return;
    su.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", {name_}, 10s);
    su.exec("DROP ROLE IF EXISTS " + name_, 10s);
  }
  ScramRole(const ScramRole&) = delete;
  ScramRole& operator=(const ScramRole&) = delete;

  const std::string& name() const { return name_; }
  static std::string password() { return "scram-role-pw"; }
  // The [[users]] entry the proxy needs for it (after the app user, who stays first so
  // that health probes log in as the app user).
  std::string user_entry() const {
    return "[[users]]\nname = " + toml_string(name_) + "\npassword = " + toml_string(password()) + "\n";
  }

 private:
  const Cluster& cluster_;
  std::string name_;
};

std::string admin_section(const Cluster& cluster) {
  return "[admin]\nusers = [" + toml_string(cluster.app_user()) + "]\n";
}

// Writes `config` and reloads (SIGHUP); returns once the proxy logged the first reload.
void reload_with(ProxyProcess& proxy, const std::string& config) {
  proxy.write_config(config);
  proxy.signal(SIGHUP);
  const auto deadline = Clock::now() + 10s;
  while (proxy.stderr_tail(100000).find("event=reloaded") == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  REQUIRE_MESSAGE(proxy.stderr_tail(100000).find("event=reloaded") != std::string::npos, proxy.stderr_tail());
}

// Opens `conninfo`, trying again for a few seconds while the proxy answers 53300: a
// refused connection's slot is freed a moment after the client has read the refusal.
Connection open_when_slot_free(const std::string& conninfo) {
  const auto deadline = Clock::now() + 5s;
  for (;;) {
    Connection c = Connection::open(conninfo);
    if (c.ok() || c.sqlstate() != "53300" || Clock::now() > deadline) return c;
    std::this_thread::sleep_for(50ms);
  }
}

// Every cell of every row, one line per row, for grepping.
std::string all_cells(const QueryResult& r) {
  std::string out;
  for (const auto& row : r.rows) {
    for (const auto& cell : row) out += cell + "|";
    out += "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("a server asking for more SCRAM iterations than max_scram_iterations is refused with 08004") {
  Cluster& cluster = Cluster::shared();
  ScramRole role(cluster, 200'000);  // the default limit is 100000
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction", 2);
  // Still in the [[databases]] entry: a refused server login is reported at once, not
  // after waiting write_wait for the primary.
  config.extra = "write_wait = \"0s\"\n" + role.user_entry();
  start_proxy(proxy, cluster, config);

  const Connection refused = Connection::open(proxy.conninfo(role.name(), ScramRole::password(), "app"));
  CHECK_FALSE(refused.ok());
  CHECK_MESSAGE(refused.sqlstate() == "08004", refused.error());
  CHECK_MESSAGE(refused.error().find("server asked for 200000 SCRAM iterations, more than max_scram_iterations "
                                     "(100000)") != std::string::npos,
                refused.error());
  CHECK_MESSAGE(proxy.stderr_tail(2000).find("max_scram_iterations") != std::string::npos, proxy.stderr_tail());

  // Raised above the server's count, the same login goes through (its derivation may take
  // seconds in a sanitizer build: more than the default server_connect_timeout).
  ProxyProcess raised;
  config.pool_extra += "server_connect_timeout = \"30s\"\n";
  config.extra += "[limits]\nmax_scram_iterations = 200000\n";
  start_proxy(raised, cluster, config);
  Connection ok = connect_ok(raised.conninfo(role.name(), ScramRole::password(), "app"));
  const QueryResult who = ok.exec("SELECT current_user");
  REQUIRE_MESSAGE(who.ok, who.describe());
  CHECK(who.value() == role.name());
}

TEST_CASE("while a server login derives a costly SCRAM key, other clients of the same worker are served") {
  Cluster& cluster = Cluster::shared();
  // About two seconds of PBKDF2 (twice PostgreSQL's default count, 4096, times 700).
  constexpr int kIterations = 3'000'000;
  ScramRole role(cluster, kIterations);
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction", 2);
  config.workers = 1;  // one event loop: the bystander and the login share it
  config.pool_extra = "server_connect_timeout = \"60s\"\nquery_wait_timeout = \"60s\"";
  config.extra = role.user_entry() + "[limits]\nmax_scram_iterations = " + std::to_string(kIterations) +
                 "\n[auth]\nlogin_timeout = \"60s\"\n";
  start_proxy(proxy, cluster, config);

  Connection bystander = connect_ok(app_conninfo(proxy, cluster));
  REQUIRE(bystander.exec("SELECT 1").ok);

  std::atomic<bool> done{false};
  Connection slow;
  std::thread login([&] {
    slow = Connection::open(proxy.conninfo(role.name(), ScramRole::password(), "app"), 60s);
    done = true;
  });
  // Each query sleeps 50 ms on the server: while the loop is free, about twenty of them
  // fit in a second of key derivation; a loop busy deriving would answer none meanwhile.
  int served = 0;
  const auto deadline = Clock::now() + 90s;
  while (!done && Clock::now() < deadline) {
    const QueryResult r = bystander.exec("SELECT pg_sleep(0.05)", 30s);
    REQUIRE_MESSAGE(r.ok, r.describe());
    ++served;
  }
  login.join();
  REQUIRE_MESSAGE(slow.ok(), slow.sqlstate(), " ", slow.error());
  CHECK(slow.exec("SELECT current_user").value() == role.name());
  MESSAGE("bystander queries answered during the login: ", served);
  CHECK(served >= 5);
}

TEST_CASE("a reload that changes a password takes effect for new logins at once; sessions stay") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  ProxyConfig v1 = pool_config("transaction", 2);
  v1.password = "first-client-pw";
  v1.server_password = cluster.app_password();  // the server's password does not change
  start_proxy(proxy, cluster, v1);

  // Several logins, so that both workers have checked (and cached) the first password.
  std::vector<Connection> old_sessions;
  for (int i = 0; i < 6; ++i) old_sessions.push_back(connect_ok(proxy.conninfo(cluster.app_user(), v1.password, "app")));

  ProxyConfig v2 = v1;
  v2.password = "second-client-pw";
  reload_with(proxy, proxy_config(cluster, v2));

  for (int i = 0; i < 6; ++i) {
    CAPTURE(i);
    const Connection old_pw = Connection::open(proxy.conninfo(cluster.app_user(), v1.password, "app"));
    CHECK_FALSE(old_pw.ok());
    CHECK_MESSAGE(old_pw.sqlstate() == "28P01", old_pw.error());
    Connection new_pw = connect_ok(proxy.conninfo(cluster.app_user(), v2.password, "app"));
    CHECK(new_pw.exec("SELECT 1").ok);
  }
  for (Connection& c : old_sessions) {
    const QueryResult r = c.exec("SELECT 'still here'");
    CHECK_MESSAGE(r.ok, r.describe());
  }
}

TEST_CASE("a reload that rotates the server password reaches the probes and the existing pools") {
  Cluster& cluster = Cluster::shared();
  ScramRole role(cluster, 4096);
  // The role is the only user: health probes and server logins both use its password.
  const auto config = [&](const std::string& password) {
    return "[listen]\naddress = \"127.0.0.1\"\nport = @PORT@\nworkers = 2\n\n[[users]]\nname = " +
           toml_string(role.name()) + "\npassword = " + toml_string(password) +
           "\n\n[[databases]]\nname = \"app\"\nsize = 2\nprimary = " +
           toml_string("postgres://127.0.0.1:" + std::to_string(cluster.primary_port()) + "/" + cluster.database()) +
           "\n";
  };
  ProxyProcess proxy;
  REQUIRE_MESSAGE(proxy.start(config(ScramRole::password())), proxy.error());
  // Six clients at once: both workers get a pool, logged in with the first password.
  std::vector<Connection> before;
  for (int i = 0; i < 6; ++i) {
    before.push_back(connect_ok(proxy.conninfo(role.name(), ScramRole::password(), "app")));
    CHECK(before.back().exec("SELECT 1").ok);
  }

  // Rotate: the server first, then the proxy's configuration; then every connection of the
  // role ends (as after a restart), so the probe must log in again.
  const std::string rotated = "rotated-pw-" + random_suffix();
  role.set_password(rotated);
  reload_with(proxy, config(rotated));
  Connection su = superuser(cluster);
  REQUIRE(su.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", {role.name()}).ok);

  // The probe's new connection shows up under the role once it logged in with the new password.
  bool probe_back = false;
  const auto deadline = Clock::now() + 15s;
  while (!probe_back && Clock::now() < deadline) {
    const QueryResult n = su.exec_params("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", {role.name()});
    probe_back = n.ok && n.value() != "0";
    if (!probe_back) std::this_thread::sleep_for(100ms);
  }
  CHECK_MESSAGE(probe_back, proxy.stderr_tail());
  // The pools the workers already had log in with the new password too. An idle server
  // connection whose termination the proxy has not read yet may still be leased once
  // (57P01): that client tries again.
  std::vector<Connection> after;
  for (int i = 0; i < 6; ++i) {
    CAPTURE(i);
    QueryResult r;
    for (int attempt = 0; attempt < 3; ++attempt) {
      after.push_back(connect_ok(proxy.conninfo(role.name(), rotated, "app")));
      r = after.back().exec("SELECT current_user");
      if (r.sqlstate != "57P01") break;
    }
    CHECK_MESSAGE(r.ok, r.describe());
  }
}

TEST_CASE("two entries on one server each log in as their own URL says: a forced user stays in its entry") {
  Cluster& cluster = Cluster::shared();
  ScramRole role(cluster, 4096);
  const std::string server = "127.0.0.1:" + std::to_string(cluster.primary_port()) + "/" + cluster.database();
  const std::string forced_url = "postgres://" + cluster.app_user() + ":" + cluster.app_password() + "@" + server;
  const std::string plain_url = "postgres://" + server;
  // Either entry may come first: the first names the server for the health probe.
  for (const bool forced_first : {true, false}) {
    CAPTURE(forced_first);
    const std::string forced = "[[databases]]\nname = \"forced\"\nsize = 2\nprimary = " + toml_string(forced_url) + "\n";
    const std::string plain = "[[databases]]\nname = \"plain\"\nsize = 2\nprimary = " + toml_string(plain_url) + "\n";
    ProxyProcess proxy;
    REQUIRE_MESSAGE(proxy.start("[listen]\naddress = \"127.0.0.1\"\nport = @PORT@\nworkers = 2\n\n" +
                                role.user_entry() + "\n" + (forced_first ? forced + plain : plain + forced)),
                    proxy.error());
    for (int i = 0; i < 3; ++i) {
      Connection on_plain = connect_ok(proxy.conninfo(role.name(), ScramRole::password(), "plain"));
      CHECK(on_plain.exec("SELECT current_user").value() == role.name());
      Connection on_forced = connect_ok(proxy.conninfo(role.name(), ScramRole::password(), "forced"));
      CHECK(on_forced.exec("SELECT current_user").value() == cluster.app_user());
    }
  }
}

TEST_CASE("above max_client_connections, admin_reserved_connections let admins into the console only") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  ProxyConfig config = pool_config("transaction", 2);
  config.listen_extra = "max_client_connections = 2\nadmin_reserved_connections = 2";
  config.extra = admin_section(cluster) +
                 "[[users]]\nname = \"viewer\"\npassword = \"viewer-pw\"\n";
  start_proxy(proxy, cluster, config);

  std::vector<Connection> clients;
  clients.push_back(connect_ok(app_conninfo(proxy, cluster)));
  clients.push_back(connect_ok(app_conninfo(proxy, cluster)));

  const Connection third = Connection::open(app_conninfo(proxy, cluster));
  CHECK_FALSE(third.ok());
  CHECK_MESSAGE(third.sqlstate() == "53300", third.error());
  // A user not listed in [admin] users gets no reserved slot, not even for the console.
  const Connection viewer = Connection::open(proxy.conninfo("viewer", "viewer-pw", "pgsidecar"));
  CHECK_MESSAGE(viewer.sqlstate() == "53300", viewer.error());

  const std::string admin = proxy.conninfo(cluster.app_user(), cluster.app_password(), "pgsidecar");
  Connection first_admin = open_when_slot_free(admin);
  REQUIRE_MESSAGE(first_admin.ok(), first_admin.sqlstate(), " ", first_admin.error());
  const QueryResult clients_shown = first_admin.exec("SHOW CLIENTS");
  CHECK_MESSAGE(clients_shown.ok, clients_shown.describe());
  Connection second_admin = open_when_slot_free(admin);
  REQUIRE_MESSAGE(second_admin.ok(), second_admin.sqlstate(), " ", second_admin.error());
  CHECK(second_admin.exec("SHOW VERSION").ok);
  // The reserve is used up: even an admin waits for a slot now.
  const Connection over = Connection::open(admin);
  CHECK_MESSAGE(over.sqlstate() == "53300", over.error());

  // A freed ordinary slot serves an ordinary client again.
  clients.pop_back();
  first_admin = Connection();
  second_admin = Connection();
  const Connection again = open_when_slot_free(app_conninfo(proxy, cluster));
  CHECK_MESSAGE(again.ok(), again.error());
}

TEST_CASE("no password reaches the log, SHOW output or errors: logins, failures, reloads, SWITCHOVER") {
  Cluster& cluster = Cluster::shared();
  const std::string user_password = "user-secret-" + random_suffix();
  const std::string ssl_password = "ssl-key-secret-" + random_suffix();
  const std::string wrong_password = "wrong-url-secret-" + random_suffix();
  const std::string switchover_password = "switchover-secret-" + random_suffix();
  // A forced-user URL with the server's password and an sslpassword (libpq uses it only to
  // decrypt an sslkey; here it just has to stay hidden), and one whose password the
  // server refuses (on the replica: one entry per server, or the pools would be shared).
  const auto url = [&](int port, const std::string& password, const std::string& query) {
    return "postgres://" + cluster.app_user() + ":" + password + "@127.0.0.1:" + std::to_string(port) + "/" +
           cluster.database() + query;
  };
  const std::string forced_url = url(cluster.primary_port(), cluster.app_password(), "?sslpassword=" + ssl_password);
  const std::string wrong_url = url(cluster.replica_port(), wrong_password, "");
  const std::string config = "[listen]\naddress = \"127.0.0.1\"\nport = @PORT@\nworkers = 2\n\n" +
                             admin_section(cluster) + "\n[[users]]\nname = " + toml_string(cluster.app_user()) +
                             "\npassword = " + toml_string(user_password) + "\n\n[[databases]]\nname = \"forced\"\n" +
                             "primary = " + toml_string(forced_url) + "\nsize = 2\n\n[[databases]]\nname = \"wrong\"\n" +
                             "primary = " + toml_string(wrong_url) + "\nsize = 2\n";
  ProxyProcess proxy;
  REQUIRE_MESSAGE(proxy.start(config), proxy.error());
  const std::string client = proxy.conninfo(cluster.app_user(), user_password, "forced");

  Connection forced = connect_ok(client);
  CHECK(forced.exec("SELECT 1").ok);
  const Connection wrong = Connection::open(proxy.conninfo(cluster.app_user(), user_password, "wrong"));
  CHECK_FALSE(wrong.ok());
  const Connection bad_client = Connection::open(proxy.conninfo(cluster.app_user(), wrong_password, "forced"));
  CHECK_MESSAGE(bad_client.sqlstate() == "28P01", bad_client.error());

  std::string seen = wrong.error() + bad_client.error();
  Connection admin = connect_ok(proxy.conninfo(cluster.app_user(), user_password, "pgsidecar"));
  const auto show_all = [&] {
    for (const char* show : {"SHOW DATABASES", "SHOW SERVERS", "SHOW POOLS", "SHOW CLIENTS", "SHOW HEALTH",
                             "SHOW CONFIG", "SHOW LISTS", "SHOW STATS"}) {
      const QueryResult r = admin.exec(show);
      CHECK_MESSAGE(r.ok, show, ": ", r.describe());
      seen += all_cells(r);
    }
  };
  show_all();
  const QueryResult databases = admin.exec("SHOW DATABASES");
  CHECK_MESSAGE(all_cells(databases).find(":***@") != std::string::npos, all_cells(databases));
  // SWITCHOVER to the same server with another secret in its URL, then a malformed one.
  const std::string target = url(cluster.primary_port(), cluster.app_password(), "?sslpassword=" + switchover_password);
  const QueryResult switchover = admin.exec("SWITCHOVER forced TO '" + target + "'", 60s);
  CHECK_MESSAGE(switchover.ok, switchover.describe());
  for (const std::string& notice : admin.notices()) seen += notice;
  const QueryResult malformed = admin.exec("SWITCHOVER forced TO 'postgres://u:" + switchover_password + "@h:0/x'");
  CHECK_FALSE(malformed.ok);
  seen += malformed.message;
  const QueryResult reload = admin.exec("RELOAD");
  CHECK_MESSAGE(reload.ok, reload.describe());
  Connection after = connect_ok(client);
  CHECK(after.exec("SELECT 1").ok);
  show_all();

  admin = Connection();
  forced = Connection();
  after = Connection();
  CHECK(proxy.stop() == 0);
  const std::string log = proxy.stderr_tail(1000000);
  seen += log;
  CHECK(log.find("event=reloaded") != std::string::npos);
  for (const std::string& secret :
       {user_password, cluster.app_password(), ssl_password, wrong_password, switchover_password}) {
    CAPTURE(secret);
    CHECK_MESSAGE(seen.find(secret) == std::string::npos, seen);
  }
}
