// The TLS and authentication parameters of server URLs (docs/tls.md).
#include <doctest/doctest.h>

#include <string>

#include "config/url.h"

using pgsidecar::config::parse_server_url;
using pgsidecar::config::ServerAddress;

TEST_CASE("require_auth is taken out of the URL before libpq 15 parses it, and kept") {
  ServerAddress a;
  std::string error;
  REQUIRE_MESSAGE(parse_server_url("postgres://db.internal/app?require_auth=scram-sha-256%2Cnone&sslmode=verify-full", a,
                                   error),
                  error);
  CHECK(a.require_auth == "scram-sha-256,none");
  CHECK(a.sslmode == "verify-full");
  CHECK(a.url == "postgres://db.internal/app?require_auth=scram-sha-256%2Cnone&sslmode=verify-full");
}

TEST_CASE("an unknown require_auth method or channel_binding value is refused") {
  ServerAddress a;
  std::string error;
  CHECK_FALSE(parse_server_url("postgres://db.internal/app?require_auth=gss", a, error));
  CHECK(error.find("invalid require_auth method \"gss\"") != std::string::npos);
  CHECK_FALSE(parse_server_url("postgres://db.internal/app?channel_binding=always", a, error));
  CHECK(error.find("invalid channel_binding \"always\"") != std::string::npos);
  REQUIRE(parse_server_url("postgres://db.internal/app?channel_binding=require&sslrootcert=system", a, error));
  CHECK(a.options.at("channel_binding") == "require");
  CHECK(a.options.at("sslrootcert") == "system");
}
