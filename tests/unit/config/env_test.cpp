#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "config/env.h"

using pgsidecar::config::EnvLookup;
using pgsidecar::config::fixed_env;
using pgsidecar::config::interpolate_env;
using pgsidecar::config::process_env;

namespace {

const EnvLookup kEnv = fixed_env({{"APP_PASSWORD", "s3cret"}, {"HOST", "db.internal"}, {"EMPTY", ""},
                                  {"DOLLARS", "a$b${HOST}"}, {"_x1", "under"}});

}  // namespace

TEST_CASE("${VAR} is replaced by the variable's value") {
  std::vector<std::string> missing;
  CHECK(interpolate_env("${APP_PASSWORD}", kEnv, missing) == "s3cret");
  CHECK(interpolate_env("postgres://app:${APP_PASSWORD}@${HOST}:5432/app", kEnv, missing) ==
        "postgres://app:s3cret@db.internal:5432/app");
  CHECK(interpolate_env("[${EMPTY}]", kEnv, missing) == "[]");
  CHECK(interpolate_env("${_x1}", kEnv, missing) == "under");
  CHECK(interpolate_env("no variables here", kEnv, missing) == "no variables here");
  CHECK(interpolate_env("", kEnv, missing).empty());
  CHECK(missing.empty());
}

TEST_CASE("a substituted value is inserted as is, not scanned again") {
  std::vector<std::string> missing;
  CHECK(interpolate_env("${DOLLARS}", kEnv, missing) == "a$b${HOST}");
  CHECK(missing.empty());
}

TEST_CASE("$$ is a literal dollar and a lone $ is kept") {
  std::vector<std::string> missing;
  CHECK(interpolate_env("pa$$word", kEnv, missing) == "pa$word");
  CHECK(interpolate_env("$${HOST}", kEnv, missing) == "${HOST}");
  CHECK(interpolate_env("$$$${HOST}", kEnv, missing) == "$${HOST}");
  CHECK(interpolate_env("$$$", kEnv, missing) == "$$");
  CHECK(interpolate_env("cost: 5$", kEnv, missing) == "cost: 5$");
  CHECK(interpolate_env("$HOST", kEnv, missing) == "$HOST");
  const std::string verifier =
      "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$3O7yKa1eX/EAo8FkA0uVGiAnOSCbGFJ5b4qj7yyyTnQ=:"
      "Z4vQvOQbA9bU4MyVaB7Fm2nK2U4WyJ3eHhVj0E0Nk9s=";
  CHECK(interpolate_env(verifier, kEnv, missing) == verifier);
  CHECK(missing.empty());
}

TEST_CASE("an unset variable is reported once and its reference kept") {
  std::vector<std::string> missing;
  CHECK(interpolate_env("${NOPE}:${HOST}:${NOPE}:${ALSO_NOPE}", kEnv, missing) == "${NOPE}:db.internal:${NOPE}:${ALSO_NOPE}");
  CHECK(missing == std::vector<std::string>{"NOPE", "ALSO_NOPE"});
}

TEST_CASE("malformed references are reported and kept as written") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"${", "${"},           {"abc${HOST", "${"}, {"${secret-part", "${"}, {"${}", "${}"},
      {"${A-B}", "${A-B}"},   {"${1ABC}", "${1ABC}"},  {"${ HOST }", "${ HOST }"},
      {"${HOST:-x}", "${HOST:-x}"},
  };
  for (const auto& c : cases) {
    const std::string& text = c.first;
    const std::string& reference = c.second;
    CAPTURE(text);
    std::vector<std::string> missing, malformed;
    CHECK(interpolate_env(text, kEnv, missing, &malformed) == text);
    CHECK(missing.empty());
    CHECK(malformed == std::vector<std::string>{reference});
  }
}

TEST_CASE("malformed references are tolerated when nobody asks for them") {
  std::vector<std::string> missing;
  CHECK(interpolate_env("${HOST}${", kEnv, missing) == "db.internal${");
  CHECK(missing.empty());
}

TEST_CASE("process_env reads the real environment") {
  REQUIRE(setenv("PGSIDECAR_ENV_TEST_VAR", "from-env", 1) == 0);
  unsetenv("PGSIDECAR_ENV_TEST_UNSET");
  const EnvLookup env = process_env();
  CHECK(env("PGSIDECAR_ENV_TEST_VAR") == std::optional<std::string>("from-env"));
  CHECK_FALSE(env("PGSIDECAR_ENV_TEST_UNSET").has_value());
  std::vector<std::string> missing;
  CHECK(interpolate_env("x=${PGSIDECAR_ENV_TEST_VAR}", env, missing) == "x=from-env");
  unsetenv("PGSIDECAR_ENV_TEST_VAR");
}
