// TLS toward clients ([tls], docs/tls.md): psql with sslmode=verify-full, with and without
// SCRAM channel binding; client_tls = "require"; bytes sent after an SSLRequest before the
// handshake; the handshake under login_timeout; client certificate logins; certificates
// reloaded on SIGHUP while connections stay. Certificates are cluster.sh start-tls's.
#include <doctest/doctest.h>

#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/integration/proxy_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

constexpr std::uint32_t kSslRequest = 80877103;

// [tls] with the test server certificate (CN localhost, IP 127.0.0.1) and `more` lines.
ProxyConfig tls_config(Cluster& cluster, const std::string& more = {}) {
  ProxyConfig c = pool_config("transaction", 4);
  c.listen_extra = "unix_socket_dir = \"@DIR@\"\n";
  c.extra = "[tls]\ncert_file = " + toml_string(cluster.tls_file("server.crt")) +
            "\nkey_file = " + toml_string(cluster.tls_file("server.key")) + "\n" + more;
  return c;
}

// libpq options for a verified TLS connection to the proxy (the host name is checked).
std::string verify_full(Cluster& cluster, const std::string& root = "ca.crt") {
  return " host=localhost sslmode=verify-full sslrootcert=" + cluster.tls_file(root);
}

// Whether `c` runs over TLS, as libpq sees it.
bool over_tls(const Connection& c) { return PQsslInUse(c.raw()) == 1; }

}  // namespace

TEST_CASE("psql sslmode=verify-full through pgsidecar, with and without channel_binding=require") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, tls_config(cluster));
  for (const char* binding : {"disable", "prefer", "require"}) {
    CAPTURE(binding);
    const std::string dbname = "dbname=app host=localhost sslmode=verify-full sslrootcert=" +
                               cluster.tls_file("ca.crt") + " channel_binding=" + binding;
    const ChildResult psql = run_psql(cluster, "localhost", proxy.port(), {"-c", "SELECT 'over tls', 1 + 1"},
                                      cluster.app_password(), 60s, dbname);
    CHECK_MESSAGE(psql.exit_code == 0, psql.describe());
    CHECK(psql.out == "over tls|2\n");
  }
  // And libpq says the session is encrypted.
  Connection c = connect_ok(app_conninfo(proxy, cluster) + verify_full(cluster) + " channel_binding=require");
  CHECK(over_tls(c));
  CHECK(c.exec("SELECT 3").value() == "3");
  // A client that trusts another CA refuses pgsidecar's certificate.
  Connection wrong = Connection::open(app_conninfo(proxy, cluster) + verify_full(cluster, "other-ca.crt"));
  CHECK_FALSE(wrong.ok());
  CHECK_MESSAGE(wrong.error().find("certificate verify failed") != std::string::npos, wrong.error());
}

TEST_CASE("client_tls = allow still lets plain clients in; require refuses them with 28000 but not the Unix socket") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  {
    ProxyProcess proxy;
    start_proxy(proxy, cluster, tls_config(cluster));
    Connection plain = connect_ok(app_conninfo(proxy, cluster));
    CHECK_FALSE(over_tls(plain));
  }
  ProxyProcess proxy;
  start_proxy(proxy, cluster, tls_config(cluster, "client_tls = \"require\"\n"));
  Connection plain = Connection::open(app_conninfo(proxy, cluster));
  CHECK_FALSE(plain.ok());
  CHECK(plain.sqlstate() == "28000");
  CHECK_MESSAGE(plain.error().find("requires TLS") != std::string::npos, plain.error());
  Connection tls = connect_ok(app_conninfo(proxy, cluster) + verify_full(cluster));
  CHECK(over_tls(tls));
  Connection local = connect_ok(make_conninfo({{"host", proxy.dir()},
                                               {"port", std::to_string(proxy.port())},
                                               {"user", cluster.app_user()},
                                               {"password", cluster.app_password()},
                                               {"dbname", "app"}}));
  CHECK(local.exec("SELECT 4").value() == "4");
}

TEST_CASE("bytes sent after an SSLRequest, before the handshake, are refused with 08P01") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, tls_config(cluster));
  Socket s = connect_tcp(proxy.port());
  REQUIRE(s.ok());
  // One write: the SSLRequest and, behind it, a plain StartupMessage a man in the middle
  // could have added.
  REQUIRE(send_all(s.fd(),
                    Bytes{}.int32(8).int32(kSslRequest).raw(startup_message(cluster.app_user(), "app")).get()));
  const Received r = receive_until_closed(s.fd(), 10s);
  CHECK_MESSAGE(r.sqlstate() == "08P01", r.describe());
  CHECK(r.message() == "received unencrypted data after SSL request");
  CHECK(r.closed);
}

TEST_CASE("a TLS handshake that does not finish counts against login_timeout") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  ProxyProcess proxy;
  ProxyConfig config = tls_config(cluster);
  config.extra += "[auth]\nlogin_timeout = \"1s\"\n";
  start_proxy(proxy, cluster, config);
  Socket s = connect_tcp(proxy.port());
  REQUIRE(s.ok());
  REQUIRE(send_all(s.fd(), Bytes{}.int32(8).int32(kSslRequest).get()));
  pollfd p{s.fd(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);
  char answer = 0;
  REQUIRE(::recv(s.fd(), &answer, 1, 0) == 1);
  CHECK(answer == 'S');
  // No ClientHello follows: the proxy closes the connection, with nothing more to say.
  const Received r = receive_until_closed(s.fd(), 20s);
  CHECK_MESSAGE(r.closed, r.describe());
  CHECK(r.messages.empty());
  CHECK(proxy.stderr_tail().find("TLS handshake not finished") != std::string::npos);
}

TEST_CASE("a client certificate logs in with auth_method cert when ca_file is set; its CN must be the user") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  ProxyProcess proxy;
  // The client certificate's CN is certuser. Its server logins use the app user (by the
  // name localhost: an entry whose server key equals the app entry's would share its address).
  const std::string forced = "postgres://" + cluster.app_user() + ":" + cluster.app_password() + "@localhost:" +
                             std::to_string(cluster.primary_port()) + "/app";
  ProxyConfig config = tls_config(cluster, "ca_file = " + toml_string(cluster.tls_file("ca.crt")) + "\n");
  config.extra += "[[users]]\nname = \"certuser\"\nauth_method = \"cert\"\n"
                  "[[users]]\nname = \"someone\"\nauth_method = \"cert\"\n"
                  "[[databases]]\nname = \"certdb\"\nprimary = " + toml_string(forced) + "\n";
  start_proxy(proxy, cluster, config);
  const std::string base = "host=localhost port=" + std::to_string(proxy.port()) +
                           " dbname=certdb sslmode=verify-full sslrootcert=" + cluster.tls_file("ca.crt");
  const std::string with_cert =
      " sslcert=" + cluster.tls_file("client.crt") + " sslkey=" + cluster.tls_file("client.key");

  Connection c = connect_ok(base + " user=certuser" + with_cert);
  CHECK(over_tls(c));
  CHECK(c.exec("SELECT current_user").value() == cluster.app_user());

  Connection none = Connection::open(base + " user=certuser sslcert=/nonexistent sslkey=/nonexistent");
  CHECK_FALSE(none.ok());
  CHECK(none.sqlstate() == "28000");
  CHECK_MESSAGE(none.error().find("requires a valid client certificate") != std::string::npos, none.error());

  Connection other = Connection::open(base + " user=someone" + with_cert);
  CHECK_FALSE(other.ok());
  CHECK(other.sqlstate() == "28000");
  CHECK_MESSAGE(other.error().find("certificate authentication failed for user \"someone\"") != std::string::npos,
                other.error());

  // Password users still log in with or without a certificate (verified when sent).
  Connection password = connect_ok(app_conninfo(proxy, cluster) + verify_full(cluster) + with_cert);
  CHECK(over_tls(password));
}

TEST_CASE("SIGHUP reloads the certificate: new connections get the new one, open ones stay") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  ProxyProcess proxy;
  namespace fs = std::filesystem;
  const std::string crt = proxy.dir() + "/server.crt";
  const std::string key = proxy.dir() + "/server.key";
  fs::copy_file(cluster.tls_file("server.crt"), crt);
  fs::copy_file(cluster.tls_file("server.key"), key);
  ProxyConfig config = pool_config("transaction", 4);
  config.extra = "[tls]\ncert_file = " + toml_string(crt) + "\nkey_file = " + toml_string(key) + "\n";
  start_proxy(proxy, cluster, config);

  Connection before = connect_ok(app_conninfo(proxy, cluster) + verify_full(cluster));
  CHECK(before.exec("SELECT 1").value() == "1");

  // A new certificate for the same names, signed by the other CA, in place of the old.
  const std::string dir = cluster.tls_file("");
  const std::string make =
      "cd " + proxy.dir() + " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext && "
      "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout new.key -out new.csr 2>/dev/null && "
      "openssl x509 -req -in new.csr -CA " + dir + "/other-ca.crt -CAkey " + dir +
      "/other-ca.key -set_serial 4242 -days 2 -extfile ext -out new.crt 2>/dev/null && "
      "mv new.crt server.crt && mv new.key server.key";
  REQUIRE(std::system(make.c_str()) == 0);
  proxy.signal(SIGHUP);
  const auto deadline = Clock::now() + 10s;
  while (proxy.stderr_tail(1000).find("event=reloaded") == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  REQUIRE_MESSAGE(proxy.stderr_tail(1000).find("event=reloaded") != std::string::npos, proxy.stderr_tail());

  Connection old_ca = Connection::open(app_conninfo(proxy, cluster) + verify_full(cluster));
  CHECK_FALSE(old_ca.ok());
  CHECK_MESSAGE(old_ca.error().find("certificate verify failed") != std::string::npos, old_ca.error());
  Connection new_ca = connect_ok(app_conninfo(proxy, cluster) + verify_full(cluster, "other-ca.crt"));
  CHECK(over_tls(new_ca));
  // The connection made before the reload keeps its TLS session.
  CHECK(before.exec("SELECT 2").value() == "2");
  CHECK(over_tls(before));
}

TEST_CASE("a reload with an unreadable certificate keeps the previous one") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, tls_config(cluster));
  ProxyConfig broken = tls_config(cluster);
  broken.extra = "[tls]\ncert_file = \"/nonexistent.crt\"\nkey_file = \"/nonexistent.key\"\n";
  proxy.write_config(proxy_config(cluster, broken));
  proxy.signal(SIGHUP);
  const auto deadline = Clock::now() + 10s;
  while (proxy.stderr_tail(1000).find("event=reload_failed") == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  CHECK_MESSAGE(proxy.stderr_tail(1000).find("nonexistent.crt") != std::string::npos, proxy.stderr_tail());
  Connection c = connect_ok(app_conninfo(proxy, cluster) + verify_full(cluster));
  CHECK(over_tls(c));
}
