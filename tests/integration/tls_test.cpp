// TLS toward servers: libpq's sslmode and certificate parameters in the server URL, fail
// closed; the authentication policy (never a cleartext password without TLS, never a login
// without authentication unless require_auth=none); SCRAM-SHA-256-PLUS with
// channel_binding; cancel requests over TLS. The TLS server is cluster.sh start-tls.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "proxy_fixture.h"

using namespace pgsidecar::testing;

namespace {

// A database entry "tls" whose primary is `url`, for the app user.
ProxyConfig tls_entry(const std::string& url, std::string users = {}) {
  ProxyConfig c = pool_config("transaction", 4);
  // A refusal is not waited out (write_wait): the client hears it, and why, at once.
  c.extra = "[[databases]]\nname = \"tls\"\nprimary = " + toml_string(url) + "\nwrite_wait = \"0s\"\n" + users;
  return c;
}

// A URL that logs every client in as the app user (or, without a password, `user`).
std::string tls_url(Cluster& cluster, std::string_view host, std::string_view params, std::string_view user = {}) {
  const std::string login = user.empty() ? cluster.app_user() + ":" + cluster.app_password() : std::string(user);
  return "postgres://" + login + "@" + std::string(host) + ":" + std::to_string(cluster.tls_port()) + "/app?" +
         std::string(params);
}

// The first statement through the proxy to "tls": the error of the server login (at the
// client's login or at its first query), or "" when it worked.
std::string first_failure(const ProxyProcess& proxy, Cluster& cluster, std::string* sqlstate = nullptr) {
  Connection c = Connection::open(app_conninfo(proxy, cluster, "tls"));
  if (!c.ok()) {
    if (sqlstate != nullptr) *sqlstate = c.sqlstate();
    return c.error();
  }
  const QueryResult r = c.exec("SELECT 1");
  if (sqlstate != nullptr) *sqlstate = r.sqlstate;
  return r.ok ? std::string() : r.message;
}

// A proxy whose "tls" entry is `url` refuses the server login: 08001, saying `reason`.
// The health probes fail there too, but must not mark the server down first (a server
// known down gets no login attempt: 08006, without the login's reason).
void check_refused(Cluster& cluster, const std::string& url, std::string_view reason) {
  ProxyProcess proxy;
  ProxyConfig config = tls_entry(url);
  config.extra += "\n[health]\nfailures_before_down = 1000000\n";
  start_proxy(proxy, cluster, config);
  std::string sqlstate;
  const std::string error = first_failure(proxy, cluster, &sqlstate);
  CHECK(sqlstate == "08001");
  CHECK_MESSAGE(error.find(reason) != std::string::npos, error);
}

// A proxy whose "tls" entry reaches the TLS server with verify-full, and a client of it.
Connection connect_verify_full(Cluster& cluster, ProxyProcess& proxy) {
  cluster.start_tls();
  start_proxy(proxy, cluster,
              tls_entry(tls_url(cluster, "localhost", "sslmode=verify-full&sslrootcert=" + cluster.tls_file("ca.crt"))));
  return connect_ok(app_conninfo(proxy, cluster, "tls"));
}

}  // namespace

TEST_CASE("sslmode=verify-full: server connections run over TLS, as pg_stat_ssl shows") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  Connection c = connect_verify_full(cluster, proxy);
  const QueryResult r = c.exec("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  REQUIRE_MESSAGE(r.ok, r.describe());
  CHECK(r.value(0, 0) == "t");
  CHECK(r.value(0, 1).starts_with("TLSv1."));
}

TEST_CASE("verify-ca and verify-full refuse a server whose certificate another CA signed") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  for (const char* mode : {"verify-ca", "verify-full"}) {
    CAPTURE(mode);
    check_refused(cluster, tls_url(cluster, "localhost",
                                  std::string("sslmode=") + mode + "&sslrootcert=" + cluster.tls_file("other-ca.crt")), "certificate verify failed");
  }
}

TEST_CASE("verify-full checks the host name; verify-ca does not") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  const std::string params = "hostaddr=127.0.0.1&sslrootcert=" + cluster.tls_file("ca.crt");
  check_refused(cluster, tls_url(cluster, "wrong.example", params + "&sslmode=verify-full"), "hostname mismatch");
  ProxyProcess proxy;
  start_proxy(proxy, cluster, tls_entry(tls_url(cluster, "wrong.example", params + "&sslmode=verify-ca")));
  CHECK(first_failure(proxy, cluster) == "");
}

TEST_CASE("sslmode=require fails closed against a server without TLS; prefer goes on in plain text") {
  Cluster& cluster = Cluster::shared();
  // "localhost": not the app entry's server (127.0.0.1), whose probe knows no sslmode.
  const std::string plain = "postgres://localhost:" + std::to_string(cluster.primary_port()) + "/app";
  {
    ProxyProcess proxy;
    // The probe (libpq, same sslmode) or the pool's own connection refuses it, whichever is first.
    start_proxy(proxy, cluster, tls_entry(plain + "?sslmode=require"));
    std::string sqlstate;
    const std::string error = first_failure(proxy, cluster, &sqlstate);
    CHECK(sqlstate.starts_with("08"));
    CHECK_MESSAGE((error.find("does not support TLS, but sslmode=require requires it") != std::string::npos ||
                   error.find("is unavailable") != std::string::npos),
                  error);
  }
  ProxyProcess proxy;
  start_proxy(proxy, cluster, tls_entry(plain + "?sslmode=prefer"));
  CHECK(first_failure(proxy, cluster) == "");
}

TEST_CASE("sslmode=allow logs in without TLS, and over TLS when the server refuses the plain login") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  // The TLS server's pg_hba.conf rejects plain connections to the database tlsonly.
  const auto url = [&](std::string_view database, std::string_view sslmode) {
    return "postgres://" + cluster.app_user() + ":" + cluster.app_password() + "@localhost:" +
           std::to_string(cluster.tls_port()) + "/" + std::string(database) + "?sslmode=" + std::string(sslmode);
  };
  const auto ssl_in_use = [&](const std::string& server_url) {
    ProxyProcess proxy;
    start_proxy(proxy, cluster, tls_entry(server_url));
    Connection c = Connection::open(app_conninfo(proxy, cluster, "tls"));
    if (!c.ok()) return "login failed: " + c.error();
    const QueryResult r = c.exec("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    return r.ok ? r.value(0, 0) : r.message;
  };
  const std::string plain = ssl_in_use(url("tlsonly", "disable"));
  CHECK_MESSAGE(plain.find("no encryption") != std::string::npos, plain);
  CHECK(ssl_in_use(url("tlsonly", "allow")) == "t");
  CHECK(ssl_in_use(url("app", "allow")) == "f");
}

TEST_CASE("channel_binding=require logs in with SCRAM-SHA-256-PLUS over TLS, and refuses without TLS") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  {
    ProxyProcess proxy;
    start_proxy(proxy, cluster,
                tls_entry(tls_url(cluster, "localhost",
                                  "sslmode=verify-full&channel_binding=require&sslrootcert=" +
                                      cluster.tls_file("ca.crt"))));
    CHECK(first_failure(proxy, cluster) == "");
  }
  check_refused(cluster, tls_url(cluster, "localhost", "sslmode=disable&channel_binding=require"), "channel_binding=require");
}

TEST_CASE("a client certificate logs into the server; a login without authentication needs require_auth=none") {
  Cluster& cluster = Cluster::shared();
  cluster.start_tls();
  const std::string params = "sslmode=verify-full&sslrootcert=" + cluster.tls_file("ca.crt") +
                             "&sslcert=" + cluster.tls_file("client.crt") + "&sslkey=" + cluster.tls_file("client.key");
  check_refused(cluster, tls_url(cluster, "localhost", params, "certuser"), "did not ask for authentication");
  ProxyProcess proxy;
  start_proxy(proxy, cluster, tls_entry(tls_url(cluster, "localhost", params + "&require_auth=none", "certuser")));
  Connection c = connect_ok(app_conninfo(proxy, cluster, "tls"));
  const QueryResult r = c.exec("SELECT current_user, ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  REQUIRE_MESSAGE(r.ok, r.describe());
  CHECK(r.value(0, 0) == "certuser");
  CHECK(r.value(0, 1) == "t");
  CHECK(r.value(0, 2) == "/CN=certuser");
}

TEST_CASE("a cancel request reaches a server over TLS") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  Connection c = connect_verify_full(cluster, proxy);
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    PGcancel* cancel = PQgetCancel(c.raw());
    char err[256];
    PQcancel(cancel, err, sizeof err);
    PQfreeCancel(cancel);
  });
  const QueryResult r = c.exec("SELECT pg_sleep(20)");
  canceller.join();
  CHECK(r.sqlstate == "57014");
}

TEST_CASE("a server asking for a cleartext password over plain TCP gets none") {
  Cluster& cluster = Cluster::shared();
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  REQUIRE(::listen(listener, 8) == 0);
  const int port = ntohs(addr.sin_port);

  // Answers SSLRequest with 'N', then asks for a cleartext password; records what comes
  // back, on pgsidecar's server connections and on its health probe's alike.
  std::atomic<bool> got_password{false};
  std::atomic<int> asked{0};
  std::thread fake([&] {
    pollfd p{listener, POLLIN, 0};
    while (::poll(&p, 1, 10000) > 0) {
      const int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      char buf[4096];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n == 8 && buf[4] == 0x04 && buf[5] == static_cast<char>(0xd2) && buf[6] == 0x16 && buf[7] == 0x2f) {
        (void)::write(fd, "N", 1);  // SSLRequest: no
        n = ::read(fd, buf, sizeof buf);
      }
      if (n <= 0) {
        ::close(fd);
        continue;
      }
      const unsigned char cleartext[] = {'R', 0, 0, 0, 8, 0, 0, 0, 3};  // AuthenticationCleartextPassword
      (void)::write(fd, cleartext, sizeof cleartext);
      ++asked;
      pollfd q{fd, POLLIN, 0};
      while (::poll(&q, 1, 2000) > 0) {
        n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        if (buf[0] == 'p') got_password = true;
      }
      ::close(fd);
    }
  });
  check_refused(cluster, "postgres://127.0.0.1:" + std::to_string(port) + "/app",
                "cleartext password over an unencrypted connection");
  ::shutdown(listener, SHUT_RDWR);
  fake.join();
  ::close(listener);
  CHECK(asked > 0);
  CHECK_FALSE(got_password);
}
