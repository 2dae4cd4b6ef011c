#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "config/url.h"

using pgsidecar::config::parse_server_url;
using pgsidecar::config::redacted_url;
using pgsidecar::config::ServerAddress;

namespace {

ServerAddress parse_ok(const std::string& url) {
  ServerAddress a;
  std::string error;
  CAPTURE(url);
  CHECK(parse_server_url(url, a, error));
  CHECK(error.empty());
  return a;
}

std::string parse_error(const std::string& url) {
  ServerAddress a;
  a.host = "untouched";
  std::string error;
  CAPTURE(url);
  CHECK_FALSE(parse_server_url(url, a, error));
  CHECK(a.host == "untouched");
  return error;
}

}  // namespace

TEST_CASE("a full URL gives user, password, host, port, dbname, sslmode and options") {
  const ServerAddress a = parse_ok(
      "postgres://app:p%40ss@db.internal:5433/appdb?sslmode=require&options=-c%20statement_timeout%3D5s"
      "&application_name=pgsidecar&connect_timeout=3");
  CHECK(a.url ==
        "postgres://app:p%40ss@db.internal:5433/appdb?sslmode=require&options=-c%20statement_timeout%3D5s"
        "&application_name=pgsidecar&connect_timeout=3");
  CHECK(a.user == "app");
  CHECK(a.password == "p@ss");
  CHECK(a.host == "db.internal");
  CHECK(a.port == 5433);
  CHECK(a.dbname == "appdb");
  CHECK(a.sslmode == "require");
  CHECK(a.options.size() == 3);
  CHECK(a.options.at("options") == "-c statement_timeout=5s");
  CHECK(a.options.at("application_name") == "pgsidecar");
  CHECK(a.options.at("connect_timeout") == "3");
}

TEST_CASE("a minimal URL takes the defaults: port 5432, no user, no dbname") {
  const ServerAddress a = parse_ok("postgres://10.0.0.5");
  CHECK(a.host == "10.0.0.5");
  CHECK(a.port == 5432);
  CHECK(a.dbname.empty());
  CHECK(a.user.empty());
  CHECK(a.password.empty());
  CHECK(a.sslmode.empty());
  CHECK(a.options.empty());
}

TEST_CASE("the postgresql:// scheme is accepted too") {
  const ServerAddress a = parse_ok("postgresql://app@db:6000/app");
  CHECK(a.host == "db");
  CHECK(a.port == 6000);
  CHECK(a.user == "app");
  CHECK(a.dbname == "app");
}

TEST_CASE("IPv6 literals, Unix socket directories and hostaddr are hosts") {
  CHECK(parse_ok("postgres://[::1]:5432/app").host == "::1");
  CHECK(parse_ok("postgres://%2Fvar%2Frun%2Fpostgresql/app").host == "/var/run/postgresql");
  CHECK(parse_ok("postgres:///app?host=/tmp").host == "/tmp");
  const ServerAddress only_addr = parse_ok("postgres:///app?hostaddr=10.0.0.7&port=5440");
  CHECK(only_addr.host == "10.0.0.7");
  CHECK(only_addr.port == 5440);
  CHECK(only_addr.options.empty());
  const ServerAddress both = parse_ok("postgres://db.internal/app?hostaddr=10.0.0.7&sslmode=verify-full");
  CHECK(both.host == "10.0.0.7");
  CHECK(both.options.at("host") == "db.internal");
}

TEST_CASE("every sslmode libpq knows is accepted") {
  for (const char* mode : {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
    CHECK(parse_ok(std::string("postgres://db/app?sslmode=") + mode).sslmode == mode);
}

TEST_CASE("bad URLs are refused with a reason") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "expected a postgres:// or postgresql:// URL"},
      {"garbage", "expected a postgres:// or postgresql:// URL"},
      {"host=db port=5432 dbname=app", "expected a postgres:// or postgresql:// URL"},
      {"mysql://db/app", "expected a postgres:// or postgresql:// URL"},
      {"POSTGRES://db/app", "expected a postgres:// or postgresql:// URL"},
      {"postgres:/db/app", "expected a postgres:// or postgresql:// URL"},
      {"postgres:///app", "names no host"},
      {"postgres://", "names no host"},
      {"postgres://db1,db2/app", "multi-host URLs are not supported"},
      {"postgresql://db1:5432,db2:5433/app", "multi-host URLs are not supported"},
      {"postgres://db/app?host=a,b", "multi-host URLs are not supported"},
      {"postgres://db/app?hostaddr=10.0.0.1,10.0.0.2", "multi-host URLs are not supported"},
      {"postgres://db:notaport/app", "invalid port \"notaport\""},
      {"postgres://db:0/app", "invalid port \"0\""},
      {"postgres://db:65536/app", "invalid port \"65536\""},
      {"postgres://db:-1/app", "invalid port \"-1\""},
      {"postgres://db/app?bogus=1", "invalid URI query parameter: \"bogus\""},
      {"postgres://db/app?sslmode=sometimes", "invalid sslmode \"sometimes\""},
      {"postgres://:secret@db/app", "a password but no user"},
      {"postgres://db/app?password=secret", "a password but no user"},
      {"postgres://[::1/app", "expected a postgres:// URL"},
      {"postgres://db/app%zz", "expected a postgres:// URL"},
      {std::string("postgres://db/app\0x", 20), "NUL character"},
  };
  for (const auto& c : cases) {
    const std::string& url = c.first;
    const std::string& reason = c.second;
    const std::string error = parse_error(url);
    CAPTURE(url);
    CAPTURE(error);
    CHECK(error.find(reason) != std::string::npos);
  }
}

TEST_CASE("errors never show the password, even when libpq quotes the URL") {
  const std::vector<std::string> urls = {
      "postgres://app:hunter2@[::1/app",
      "postgres://app:hunter2@[]/app",
      "postgres://app:hun%zzter2@db/app",
      "postgres://app@db/app?password=hunter2&x",
      "postgres://app@db/app?password=hun%zzter2",
      "postgres://app:hunter2@db/app?password=hunter2&bad",
  };
  for (const std::string& url : urls) {
    const std::string error = parse_error(url);
    CAPTURE(error);
    CHECK(error.find("hunter2") == std::string::npos);
    CHECK(error.find("hun%zzter2") == std::string::npos);
    CHECK(error.find("expected a postgres:// URL") != std::string::npos);
  }
}

TEST_CASE("redacted_url hides the password and reads back to the same address") {
  const ServerAddress a = parse_ok("postgres://app:hunter2@db.internal:5433/app db?sslmode=require&application_name=x");
  const std::string shown = redacted_url(a);
  CHECK(shown.find("hunter2") == std::string::npos);
  CHECK(shown == "postgres://app:***@db.internal:5433/app%20db?sslmode=require&application_name=x");
  const ServerAddress back = parse_ok(shown);
  CHECK(back.host == a.host);
  CHECK(back.port == a.port);
  CHECK(back.dbname == a.dbname);
  CHECK(back.user == a.user);
  CHECK(back.sslmode == a.sslmode);
  CHECK(back.options == a.options);

  CHECK(redacted_url(parse_ok("postgres://[::1]/app")) == "postgres://[::1]:5432/app");
  // libpq's other secret option, the passphrase of an sslkey, is hidden the same way.
  CHECK(redacted_url(parse_ok("postgres://app:pw@db/app?sslkey=/k.pem&sslpassword=open%20sesame")) ==
        "postgres://app:***@db:5432/app?sslkey=%2Fk.pem&sslpassword=***");
  CHECK(redacted_url(parse_ok("postgres://%2Ftmp/app")) == "postgres://%2Ftmp:5432/app");
  CHECK(redacted_url(parse_ok("postgres://db.internal/app?hostaddr=10.0.0.7")) ==
        "postgres://db.internal:5432/app?hostaddr=10.0.0.7");
}
