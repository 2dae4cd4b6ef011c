// Invalid configurations: every problem is reported, with its key path and position.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "config/load.h"
#include "tests/unit/config/minimal_config.h"

using namespace pgsidecar::config;

namespace {

struct Expected {
  std::string key_path;
  int line;
  int column;
  std::string message;  // a part of the message
};

// Valid [[users]] and [[databases]] sections, appended after the text under test so that
// its line numbers are the ones written in each test.
constexpr const char* kValidTail = pgsidecar::config::testing::kMinimalConfig;

LoadResult load(const std::string& text, const EnvLookup& env = fixed_env({})) {
  return load_string(text, "test.toml", env);
}

// The problems must be exactly these, in this order.
void expect_problems(const LoadResult& r, const std::vector<Expected>& expected) {
  CHECK(r.config == nullptr);
  for (const Problem& p : r.problems) MESSAGE(p.to_string());
  REQUIRE(r.problems.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const Problem& p = r.problems[i];
    const Expected& e = expected[i];
    CAPTURE(i);
    CAPTURE(p.to_string());
    CHECK(p.key_path == e.key_path);
    CHECK(p.line == e.line);
    CHECK(p.column == e.column);
    CHECK(p.message.find(e.message) != std::string::npos);
  }
}

std::string source_dir() {
  const std::string file = __FILE__;
  return file.substr(0, file.find_last_of('/'));
}

}  // namespace

TEST_CASE("unknown keys are reported at every level with a suggestion when one is close") {
  const LoadResult r = load(std::string(R"toml(bogus = 1
[listen]
prot = 6432
[listen.tls]
cert = "x"
[pool_defaults]
sise = 3
[health]
whatever = 1
)toml") + R"toml([[users]]
name = "app"
password = "secret"
passwrd = "x"
[[databases]]
name = "app"
primary = "postgres://db/app"
min_idel = 1
[[databases]]
name = "b"
primary = "postgres://db/b"
"weird key" = 2
)toml");
  expect_problems(r, {
                         {"bogus", 1, 1, "unknown key"},
                         {"listen.prot", 3, 1, "unknown key (did you mean \"port\"?)"},
                         {"listen.tls", 4, 9, "unknown key"},
                         {"pool_defaults.sise", 7, 1, "unknown key (did you mean \"size\"?)"},
                         {"health.whatever", 9, 1, "unknown key"},
                         {"users[0].passwrd", 13, 1, "unknown key (did you mean \"password\"?)"},
                         {"databases[0].min_idel", 17, 1, "unknown key (did you mean \"min_idle\"?)"},
                         {"databases[1].\"weird key\"", 21, 1, "unknown key"},
                     });
  CHECK(r.problems[4].message == "unknown key");  // nothing close to "whatever"
}

TEST_CASE("wrong types say what was expected and what was found") {
  const LoadResult r = load(std::string(R"toml([listen]
address = 5
port = "6432"
workers = 1.5
http = 5
[admin]
users = "app"
[health]
interval = 5
timeout = 1.5
failures_before_down = true
successes_before_up = 1979-05-27
)toml") + kValidTail);
  expect_problems(r, {
                         {"listen.address", 2, 11, "expected a string, got an integer"},
                         {"listen.port", 3, 8, "expected an integer, got a string"},
                         {"listen.workers", 4, 11, "expected an integer, got a floating-point number"},
                         {"listen.http", 5, 1, "unknown key"},
                         {"admin.users", 7, 9, "expected an array, got a string"},
                         {"health.interval", 9, 12,
                          "expected a duration with a unit, such as \"5ms\" or \"5s\", got an integer"},
                         {"health.timeout", 10, 11, "expected a duration such as \"5s\" or \"500ms\", got a floating-point number"},
                         {"health.failures_before_down", 11, 24, "expected an integer, got a boolean"},
                         {"health.successes_before_up", 12, 23, "expected an integer, got a date"},
                     });
}

TEST_CASE("sections of the wrong shape are reported once, not key by key") {
  const LoadResult r = load(R"toml(listen = 5
http = "x"
pool_defaults = []
users = "app"
[databases]
name = "app"
)toml");
  expect_problems(r, {
                         {"listen", 1, 10, "expected a table, got an integer"},
                         {"http", 2, 8, "expected a table, got a string"},
                         {"pool_defaults", 3, 17, "expected a table, got an array"},
                         {"users", 4, 9, "expected an array of tables ([[users]] sections), got a string"},
                         {"databases", 5, 1, "expected an array of tables ([[databases]] sections), got a table"},
                     });
}

TEST_CASE("bad durations name the key and the reason") {
  const LoadResult r = load(std::string(R"toml([pool_defaults]
query_wait_timeout = "5 s"
server_connect_timeout = "-1s"
server_idle_timeout = "1.5s"
server_lifetime = "3d"
client_idle_timeout = "10"
[health]
interval = "0s"
timeout = "0"
[auth]
login_timeout = "9999h"
)toml") + kValidTail);
  expect_problems(r, {
                         {"pool_defaults.query_wait_timeout", 2, 22, "invalid duration \"5 s\": unknown unit \" s\""},
                         {"pool_defaults.server_connect_timeout", 3, 26, "invalid duration \"-1s\": a duration cannot be negative"},
                         {"pool_defaults.server_idle_timeout", 4, 23, "invalid duration \"1.5s\": fractions are not supported"},
                         {"pool_defaults.server_lifetime", 5, 19, "invalid duration \"3d\": unknown unit \"d\""},
                         {"pool_defaults.client_idle_timeout", 6, 23, "invalid duration \"10\": missing unit"},
                         {"health.interval", 8, 12, "must be longer than 0"},
                         {"health.timeout", 9, 11, "must be longer than 0"},
                         {"auth.login_timeout", 11, 17, "invalid duration \"9999h\": too large"},
                     });
}

TEST_CASE("zero is refused where it makes no sense and accepted where it means never or at once") {
  const LoadResult r = load(std::string(R"toml([pool_defaults]
query_wait_timeout = "0s"
server_connect_timeout = 0
server_idle_timeout = 0
server_lifetime = "0"
client_idle_timeout = "0ms"
)toml") + kValidTail + R"toml(write_wait = 0
max_replica_lag = "0s"
)toml");
  expect_problems(r, {
                         {"pool_defaults.query_wait_timeout", 2, 22, "must be longer than 0"},
                         {"pool_defaults.server_connect_timeout", 3, 26, "must be longer than 0"},
                         {"databases[0].max_replica_lag", 16, 19, "must be longer than 0"},
                     });
}

TEST_CASE("bad URLs are reported at the URL, replicas by index") {
  const LoadResult r = load(R"toml([[users]]
name = "app"
password = "secret"
[[databases]]
name = "app"
primary = "mysql://db/app"
replicas = ["postgres://r1/app", "garbage", "postgres://r2,r3/app", 5, "postgres:///app"]
)toml");
  expect_problems(r, {
                         {"databases[0].primary", 6, 11, "expected a postgres:// or postgresql:// URL"},
                         {"databases[0].replicas[1]", 7, 34, "expected a postgres:// or postgresql:// URL"},
                         {"databases[0].replicas[2]", 7, 45, "multi-host URLs are not supported"},
                         {"databases[0].replicas[3]", 7, 69, "expected a string, got an integer"},
                         {"databases[0].replicas[4]", 7, 72, "names no host"},
                     });
}

TEST_CASE("bad enum values list the allowed ones") {
  const LoadResult r = load(R"toml([auth]
method = "password"
[pool_defaults]
mode = "sesion"
[[users]]
name = "app"
password = "secret"
auth_method = "SCRAM-SHA-256"
[[databases]]
name = "app"
primary = "postgres://db/app"
reads = "replica"
on_primary_down = 1
)toml");
  expect_problems(r, {
                         {"auth.method", 2, 10, "expected one of \"scram-sha-256\", \"md5\", \"trust\", \"cert\", got \"password\""},
                         {"pool_defaults.mode", 4, 8, "expected one of \"session\", \"transaction\", got \"sesion\""},
                         {"users[0].auth_method", 8, 15, "got \"SCRAM-SHA-256\""},
                         {"databases[0].reads", 12, 9, "expected one of \"primary\", \"replicas\", \"any\", got \"replica\""},
                         {"databases[0].on_primary_down", 13, 19, "expected a string, got an integer"},
                     });
}

TEST_CASE("numbers out of range give the range and the value") {
  const LoadResult r = load(std::string(R"toml([listen]
port = 0
workers = 257
max_client_connections = 0
[http]
port = 70000
[limits]
max_message_size = 100
[pool_defaults]
size = 0
min_idle = -1
max_prepared_statements = -1
[health]
failures_before_down = 0
successes_before_up = -3
)toml") + kValidTail);
  expect_problems(r, {
                         {"listen.port", 2, 8, "must be between 1 and 65535, got 0"},
                         {"listen.workers", 3, 11, "must be between 0 and 256, got 257"},
                         {"listen.max_client_connections", 4, 26, "must be at least 1, got 0"},
                         {"http.port", 6, 8, "must be between 0 and 65535, got 70000"},
                         {"limits.max_message_size", 8, 20, "must be between 1024 and 1073741824, got 100"},
                         {"pool_defaults.size", 10, 8, "must be at least 1, got 0"},
                         {"pool_defaults.min_idle", 11, 12, "must be at least 0, got -1"},
                         {"pool_defaults.max_prepared_statements", 12, 27, "must be at least 0, got -1"},
                         {"health.failures_before_down", 14, 24, "must be at least 1, got 0"},
                         {"health.successes_before_up", 15, 23, "must be at least 1, got -3"},
                     });
}

TEST_CASE("range limits themselves are accepted") {
  const LoadResult r = load(std::string(R"toml([listen]
port = 65535
workers = 256
[http]
port = 65534
[limits]
max_message_size = 1073741824
)toml") + kValidTail);
  CHECK(r.problems.empty());
  REQUIRE(r.config != nullptr);
  CHECK(r.config->limits.max_message_size == 1073741824u);
  CHECK(load(std::string("[limits]\nmax_message_size = 1024\n") + kValidTail).problems.empty());
  CHECK(load(std::string("[limits]\nmax_message_size = 1073741825\n") + kValidTail).problems.size() == 1);
}

TEST_CASE("min_idle larger than size is reported where it was written") {
  const LoadResult r = load(R"toml([pool_defaults]
size = 4
min_idle = 5
[[users]]
name = "app"
password = "secret"
[[databases]]
name = "inherits"
primary = "postgres://db/app"
[[databases]]
name = "small"
primary = "postgres://db/app"
size = 2
[[databases]]
name = "fixed"
primary = "postgres://db/app"
min_idle = 1
size = 2
[[databases]]
name = "greedy"
primary = "postgres://db/app"
min_idle = 6
)toml");
  expect_problems(r, {
                         {"pool_defaults.min_idle", 3, 12, "min_idle (5) must not exceed size (4)"},
                         {"databases[1].size", 13, 8, "min_idle (5) must not exceed size (2)"},
                         {"databases[3].min_idle", 22, 12, "min_idle (6) must not exceed size (4)"},
                     });
}

TEST_CASE("fleet and login keys: ranges, min_size within size, a budget not below min_size, per entry only") {
  const LoadResult r = load(R"toml([pool_defaults]
size = 4
max_concurrent_logins = 0
min_size = 5
fleet_max_connections = 30
[[users]]
name = "app"
password = "secret"
[[databases]]
name = "a"
primary = "postgres://db/app"
min_size = 2
fleet_max_connections = 1
[[databases]]
name = "b"
primary = "postgres://db/app"
min_size = 0
fleet_max_connections = -1
[[databases]]
name = "c"
primary = "postgres://db/app"
min_size = 1
fleet_max_connections = 0
[[databases]]
name = "d"
primary = "postgres://db/app"
size = 10
min_size = 2
fleet_max_connections = 2
max_concurrent_logins = 1
)toml");
  expect_problems(r, {
                         {"pool_defaults.max_concurrent_logins", 3, 25, "must be at least 1, got 0"},
                         {"pool_defaults.min_size", 4, 12, "min_size (5) must not exceed size (4)"},
                         {"pool_defaults.fleet_max_connections", 5, 1, "unknown key"},
                         {"databases[0].fleet_max_connections", 13, 25,
                          "fleet_max_connections (1) must be at least min_size (2)"},
                         {"databases[1].min_size", 17, 12, "must be at least 1, got 0"},
                         {"databases[1].fleet_max_connections", 18, 25, "must be at least 0, got -1"},
                     });
}

TEST_CASE("duplicate user and database names point at the second one") {
  const LoadResult r = load(R"toml([[users]]
name = "app"
password = "a"
[[users]]
name = "app"
password = "b"
[[databases]]
name = "app"
primary = "postgres://db/app"
[[databases]]
name = "app"
primary = "postgres://db/app"
)toml");
  expect_problems(r, {
                         {"users[1].name", 5, 8, "duplicate user \"app\" (first defined on line 2)"},
                         {"databases[1].name", 11, 8, "duplicate database \"app\" (first defined on line 8)"},
                     });
}

TEST_CASE("admin users must be defined users") {
  const LoadResult r = load(std::string(R"toml([admin]
users = ["app", "root", 7]
)toml") + kValidTail);
  expect_problems(r, {
                         {"admin.users[1]", 2, 17, "\"root\" is not a defined user"},
                         {"admin.users[2]", 2, 25, "expected a string, got an integer"},
                     });
}

TEST_CASE("an admin user whose method is trust is refused: TCP logins would need no password") {
  const LoadResult by_default = load(R"toml([auth]
method = "trust"
[admin]
users = ["app"]
[[users]]
name = "app"
[[databases]]
name = "app"
primary = "postgres://db:5432/app"
)toml");
  expect_problems(by_default, {{"admin.users[0]", 4, 10, "admin user \"app\" would log in with trust"}});
  const LoadResult own_method = load(R"toml([admin]
users = ["ops"]
[[users]]
name = "ops"
auth_method = "trust"
)toml" + std::string(kValidTail));
  expect_problems(own_method, {{"admin.users[0]", 2, 10, "anyone reaching listen.address over TCP"}});
  // The same users with a password method are fine, and trust stays allowed for non-admins.
  CHECK(load(R"toml([auth]
method = "trust"
[admin]
users = ["ops"]
[[users]]
name = "ops"
password = "s3cret"
auth_method = "scram-sha-256"
)toml" + std::string(kValidTail)).problems.empty());
}

TEST_CASE("max_scram_iterations and admin_reserved_connections have ranges") {
  const LoadResult r = load(R"toml([listen]
admin_reserved_connections = -1
[limits]
max_scram_iterations = 20000000
)toml" + std::string(kValidTail));
  expect_problems(r, {
                         {"listen.admin_reserved_connections", 2, 30, "must be between 0 and 1000, got -1"},
                         {"limits.max_scram_iterations", 4, 24, "must be between 1 and 10000000, got 20000000"},
                     });
}

TEST_CASE("missing required sections and keys") {
  expect_problems(load(""), {
                                {"users", 0, 0, "missing: at least one [[users]] section is required"},
                                {"databases", 0, 0, "missing: at least one [[databases]] section is required"},
                            });
  expect_problems(load("users = []\ndatabases = []\n"),
                  {
                      {"users", 1, 9, "at least one [[users]] section is required"},
                      {"databases", 2, 13, "at least one [[databases]] section is required"},
                  });
  expect_problems(load(R"toml([[users]]
password = "x"
[[users]]
name = "nopass"
[[databases]]
reads = "any"
)toml"),
                  {
                      {"users[0]", 1, 1, "missing required key \"name\""},
                      {"users[1]", 3, 1, "missing required key \"password\""},
                      {"databases[0]", 5, 1, "missing required key \"name\""},
                      {"databases[0]", 5, 1, "missing required key \"primary\""},
                  });
}

TEST_CASE("names must not be empty and pgsidecar is reserved for the admin console") {
  const LoadResult r = load(R"toml([[users]]
name = ""
password = "x"
[[databases]]
name = "pgsidecar"
primary = "postgres://db/app"
[[databases]]
name = ""
primary = "postgres://db/app"
)toml");
  expect_problems(r, {
                         {"users[0].name", 2, 8, "must not be empty"},
                         {"databases[0].name", 5, 8, "\"pgsidecar\" is reserved for the admin console"},
                         {"databases[1].name", 8, 8, "must not be empty"},
                     });
}

TEST_CASE("a TOML syntax error is reported with toml++'s line and column") {
  const LoadResult r = load("[listen]\nport = 6432\naddress = \"127.0.0.1\n");
  REQUIRE(r.problems.size() == 1);
  const Problem& p = r.problems[0];
  CHECK(p.key_path.empty());
  CHECK(p.line == 3);
  CHECK(p.column > 0);
  CHECK(p.message.find("string") != std::string::npos);
  CHECK(r.config == nullptr);

  const LoadResult dup = load("[listen]\nport = 1\nport = 2\n");
  REQUIRE(dup.problems.size() == 1);
  CHECK(dup.problems[0].line == 3);
  CHECK(dup.problems[0].to_string().starts_with("line 3, col "));

  CHECK(load("[[users]\n").problems.at(0).line == 1);
  CHECK(load(std::string("a = \"\xff\"\n")).problems.size() == 1);  // invalid UTF-8
}

TEST_CASE("an unset variable is a problem at the value that uses it") {
  const LoadResult r = load(R"toml([listen]
address = "${LISTEN_ADDR}"
[[users]]
name = "app"
password = "${APP_PASSWORD}"
[[databases]]
name = "app"
primary = "postgres://${DB_USER}:${DB_PASS}@db/app"
replicas = ["postgres://${REPLICA}/app", "postgres://${BAD-NAME}/app"]
)toml",
                            fixed_env({{"REPLICA", "10.0.0.6"}}));
  expect_problems(r, {
                         {"listen.address", 2, 11, "environment variable \"LISTEN_ADDR\" is not set"},
                         {"users[0].password", 5, 12, "environment variable \"APP_PASSWORD\" is not set"},
                         {"databases[0].primary", 8, 11, "environment variables \"DB_USER\", \"DB_PASS\" are not set"},
                         {"databases[0].replicas[1]", 9, 42, "malformed variable reference \"${BAD-NAME}\""},
                     });
}

TEST_CASE("passwords must suit the user's authentication method") {
  const std::string verifier =
      "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=:"
      "PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0=";
  const LoadResult r = load(R"toml([[users]]
name = "a"
password = ")toml" + verifier + R"toml("
auth_method = "md5"
[[users]]
name = "b"
password = "md56a422f785c9e20873908ce25d1736ae2"
[[users]]
name = "c"
password = "SCRAM-SHA-256$4096:salt"
[[users]]
name = "d"
password = "plain"
server_password = ")toml" + verifier + R"toml("
[[users]]
name = "e"
password = ""
[[users]]
name = "f"
password = "md56a422f785c9e20873908ce25d1736ae2"
server_password = "md56a422f785c9e20873908ce25d1736ae2"
auth_method = "md5"
[[databases]]
name = "app"
primary = "postgres://db/app"
)toml");
  expect_problems(r, {
                         {"users[0].password", 3, 12, "a SCRAM-SHA-256 verifier cannot check md5 logins"},
                         {"users[1].password", 7, 12, "an md5 hash cannot check scram-sha-256 logins"},
                         {"users[2].password", 10, 12, "malformed SCRAM-SHA-256 verifier"},
                         {"users[3].server_password", 14, 19, "must be the plain-text password"},
                         {"users[4].password", 17, 12, "must not be empty"},
                         {"users[5].server_password", 21, 19, "must be the plain-text password"},
                     });
}

TEST_CASE("listen and http addresses must be IP addresses; the socket directory absolute and short") {
  const LoadResult r = load(std::string(R"toml([listen]
address = "localhost"
unix_socket_dir = "tmp"
[http]
address = "127.0.0.1:9930"
)toml") + kValidTail);
  expect_problems(r, {
                         {"listen.address", 2, 11, "expected an IPv4 or IPv6 address"},
                         {"listen.unix_socket_dir", 3, 19, "expected an absolute path"},
                         {"http.address", 5, 11, "expected an IPv4 or IPv6 address"},
                     });
  const LoadResult long_dir = load("[listen]\nunix_socket_dir = \"/" + std::string(100, 'x') + "\"\n" + kValidTail);
  expect_problems(long_dir, {{"listen.unix_socket_dir", 2, 19, "too long"}});
}

TEST_CASE("the HTTP endpoint cannot share the client port") {
  expect_problems(load(std::string("[listen]\nport = 7000\n[http]\nport = 7000\n") + kValidTail),
                  {{"http.port", 4, 8, "the same as listen.port (7000)"}});
  expect_problems(load(std::string("[listen]\naddress = \"0.0.0.0\"\n[http]\nport = 6432\n") + kValidTail),
                  {{"http.port", 4, 8, "the same as listen.port (6432)"}});
  CHECK(load(std::string("[listen]\naddress = \"127.0.0.1\"\n[http]\naddress = \"127.0.0.2\"\nport = 6432\n") +
             kValidTail)
            .problems.empty());
}

TEST_CASE("reads = replicas needs replicas") {
  expect_problems(load(R"toml([[users]]
name = "app"
password = "secret"
[[databases]]
name = "app"
primary = "postgres://db/app"
reads = "replicas"
[[databases]]
name = "b"
primary = "postgres://db/app"
replicas = []
reads = "replicas"
)toml"),
                  {
                      {"databases[0].reads", 7, 9, "needs at least one entry in replicas"},
                      {"databases[1].reads", 12, 9, "needs at least one entry in replicas"},
                  });
}

TEST_CASE("many problems are reported together, in file order") {
  const LoadResult r = load(R"toml([listen]
port = "x"
typo = 1
[pool_defaults]
mode = "statement"
[[users]]
name = "app"
[[databases]]
name = "app"
primary = "nope"
write_wait = "soon"
)toml");
  expect_problems(r, {
                         {"listen.port", 2, 8, "expected an integer"},
                         {"listen.typo", 3, 1, "unknown key"},
                         {"pool_defaults.mode", 5, 8, "expected one of"},
                         {"users[0]", 6, 1, "missing required key \"password\""},
                         {"databases[0].primary", 10, 11, "expected a postgres:// or postgresql:// URL"},
                         {"databases[0].write_wait", 11, 14, "invalid duration \"soon\""},
                     });
}

TEST_CASE("broken.toml: a wrong type, an unknown key, a bad duration and a bad URL, each with its position") {
  const LoadResult r = load_file(source_dir() + "/broken.toml", fixed_env({{"APP_PASSWORD", "secret"}}));
  expect_problems(r, {
                         {"listen.port", 5, 8, "expected an integer, got a string"},
                         {"pool_defaults.max_idle", 9, 1, "unknown key"},
                         {"pool_defaults.query_wait_timeout", 10, 22, "invalid duration \"5 seconds\""},
                         {"databases[0].primary", 19, 11, "expected a postgres:// or postgresql:// URL"},
                     });
  for (const Problem& p : r.problems) CHECK(p.to_string().find(" (line ") != std::string::npos);
}

TEST_CASE("load_file reports files it cannot read") {
  const LoadResult missing = load_file("/nonexistent/pgsidecar.toml");
  REQUIRE(missing.problems.size() == 1);
  CHECK(missing.config == nullptr);
  CHECK(missing.problems[0].to_string() == "cannot read \"/nonexistent/pgsidecar.toml\": No such file or directory");

  const LoadResult directory = load_file(source_dir());
  REQUIRE(directory.problems.size() == 1);
  CHECK(directory.problems[0].message.starts_with("cannot read"));

  const LoadResult endless = load_file("/dev/zero");
  REQUIRE(endless.problems.size() == 1);
  CHECK(endless.problems[0].message.find("larger than 16 MiB") != std::string::npos);
}

TEST_CASE("the example configuration is valid") {
  const LoadResult r = load_file(source_dir() + "/../../../config/example.toml",
                                 fixed_env({{"APP_PASSWORD", "app-secret"}, {"ADMIN_PASSWORD", "admin-secret"},
                                            {"SESSIONS_PASSWORD", "sessions-secret"}}));
  for (const Problem& p : r.problems) MESSAGE(p.to_string());
  CHECK(r.problems.empty());
  REQUIRE(r.config != nullptr);
  CHECK(r.config->databases.size() >= 2);
}

TEST_CASE("the example configuration names every variable it needs") {
  const LoadResult r = load_file(source_dir() + "/../../../config/example.toml", fixed_env({}));
  CHECK_FALSE(r.problems.empty());
  for (const Problem& p : r.problems) {
    CAPTURE(p.to_string());
    CHECK(p.message.find("is not set") != std::string::npos);
  }
}

TEST_CASE("round-trip switches: booleans per pool, defaults defer_begin on and answer_pings off") {
  const LoadResult r = load(R"toml([pool_defaults]
defer_begin = 1
[[users]]
name = "app"
password = "secret"
[[databases]]
name = "a"
primary = "postgres://db/app"
answer_pings = "yes"
)toml");
  expect_problems(r, {
                         {"pool_defaults.defer_begin", 2, 15, "expected true or false, got an integer"},
                         {"databases[0].answer_pings", 9, 16, "expected true or false, got a string"},
                     });
  const LoadResult ok = load(R"toml([[users]]
name = "app"
password = "secret"
[[databases]]
name = "a"
primary = "postgres://db/app"
answer_pings = true
[[databases]]
name = "b"
primary = "postgres://db/app"
defer_begin = false
)toml");
  REQUIRE(ok.config != nullptr);
  CHECK(ok.config->databases[0].pool.defer_begin);
  CHECK(ok.config->databases[0].pool.answer_pings);
  CHECK(!ok.config->databases[1].pool.defer_begin);
  CHECK(!ok.config->databases[1].pool.answer_pings);
}
