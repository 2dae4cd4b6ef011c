// [tls]: TLS toward clients (docs/tls.md), its defaults and what it must be given.
#include <doctest/doctest.h>

#include <string>

#include "config/load.h"
#include "tests/unit/config/minimal_config.h"

using namespace pgsidecar::config;

namespace {

constexpr const char* kBase = pgsidecar::config::testing::kMinimalConfig;

LoadResult load(const std::string& extra) {
  return load_string(std::string(kBase) + extra, "test.toml", fixed_env({}));
}

// The one problem of `extra`, as text.
std::string problem(const std::string& extra) {
  const LoadResult r = load(extra);
  REQUIRE(r.problems.size() == 1);
  return r.problems[0].to_string();
}

}  // namespace

TEST_CASE("without [tls], client TLS is off") {
  const LoadResult r = load("");
  REQUIRE(r.config != nullptr);
  CHECK(r.config->tls.client_tls == ClientTlsMode::Disable);
  CHECK_FALSE(r.config->tls.enabled());
  CHECK(r.config->tls.min_protocol == "TLSv1.2");
}

TEST_CASE("a certificate and key turn client TLS on as allow; every key is read") {
  LoadResult r = load("[tls]\ncert_file = \"/s.crt\"\nkey_file = \"/s.key\"\n");
  REQUIRE(r.config != nullptr);
  CHECK(r.config->tls.client_tls == ClientTlsMode::Allow);
  r = load(
      "[tls]\ncert_file = \"/s.crt\"\nkey_file = \"/s.key\"\nca_file = \"/ca.crt\"\nclient_tls = \"require\"\n"
      "min_protocol = \"TLSv1.3\"\n");
  REQUIRE(r.config != nullptr);
  CHECK(r.config->tls.cert_file == "/s.crt");
  CHECK(r.config->tls.key_file == "/s.key");
  CHECK(r.config->tls.ca_file == "/ca.crt");
  CHECK(r.config->tls.client_tls == ClientTlsMode::Require);
  CHECK(r.config->tls.min_protocol == "TLSv1.3");
  r = load("[tls]\ncert_file = \"/s.crt\"\nkey_file = \"/s.key\"\nclient_tls = \"disable\"\n");
  REQUIRE(r.config != nullptr);
  CHECK_FALSE(r.config->tls.enabled());
}

TEST_CASE("[tls] problems name the key") {
  CHECK(problem("[tls]\nclient_tls = \"require\"\n").find("tls.client_tls") != std::string::npos);
  CHECK(problem("[tls]\ncert_file = \"/s.crt\"\n").find("cert_file and key_file go together") != std::string::npos);
  CHECK(problem("[tls]\ncert_file = \"/s.crt\"\nkey_file = \"/s.key\"\nmin_protocol = \"SSLv3\"\n")
            .find("tls.min_protocol") != std::string::npos);
  CHECK(problem("[tls]\ncert_file = \"/s.crt\"\nkey_file = \"/s.key\"\nclient_tls = \"prefer\"\n")
            .find("expected one of \"disable\", \"allow\", \"require\"") != std::string::npos);
  CHECK(problem("[tls]\ncertfile = \"/s.crt\"\n").find("did you mean \"cert_file\"") != std::string::npos);
}

TEST_CASE("auth_method cert needs client TLS with a CA for client certificates") {
  const std::string users = "[[users]]\nname = \"svc\"\nauth_method = \"cert\"\n";
  CHECK(problem(users).find("users[1].auth_method") != std::string::npos);
  CHECK(problem("[tls]\ncert_file = \"/s.crt\"\nkey_file = \"/s.key\"\n" + users).find("ca_file") != std::string::npos);
  const LoadResult r = load("[tls]\ncert_file = \"/s.crt\"\nkey_file = \"/s.key\"\nca_file = \"/ca.crt\"\n" + users);
  REQUIRE(r.config != nullptr);
  const User* svc = r.config->find_user("svc");
  REQUIRE(svc != nullptr);
  CHECK(r.config->auth_method_for(*svc) == AuthMethod::Cert);
  CHECK(svc->password.empty());
}
