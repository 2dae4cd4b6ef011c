// Loading valid configurations: every key read, defaults applied, overrides merged.
#include <doctest/doctest.h>

#include <string>

#include "config/load.h"
#include "tests/unit/config/minimal_config.h"

using namespace pgsidecar::config;
using namespace std::chrono_literals;

namespace {

const EnvLookup kEnv = fixed_env({{"APP_PASSWORD", "app-secret"},
                                  {"REPLICA_HOST", "10.0.0.6"},
                                  {"DB_USER", "service"},
                                  {"DB_PASSWORD", "p@ss"}});

constexpr const char* kScramVerifier =
    "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=:"
    "PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0=";

std::shared_ptr<const Config> load_ok(const std::string& text, const EnvLookup& env = kEnv) {
  LoadResult r = load_string(text, "test.toml", env);
  for (const Problem& p : r.problems) MESSAGE(p.to_string());
  REQUIRE(r.problems.empty());
  REQUIRE(r.config != nullptr);
  return r.config;
}

constexpr const char* kMinimal = pgsidecar::config::testing::kMinimalConfig;

}  // namespace

TEST_CASE("a config that sets every key is read into the snapshot") {
  const std::string text = std::string(R"toml(
[listen]
address = "0.0.0.0"
port = 7432
unix_socket_dir = "/var/run/pgsidecar"
workers = 4
max_client_connections = 5000
admin_reserved_connections = 5

[http]
address = "::"
port = 9930

[auth]
method = "md5"
login_timeout = "15s"

[limits]
max_message_size = 1048576
max_scram_iterations = 20000

[admin]
users = ["admin", "verified"]

[[users]]
name = "app"
password = "${APP_PASSWORD}"
server_password = "server-secret"
auth_method = "scram-sha-256"

[[users]]
name = "admin"
password = "md56a422f785c9e20873908ce25d1736ae2"

[[users]]
name = "ops"
auth_method = "trust"

[[users]]
name = "verified"
password = ")toml") + kScramVerifier + R"toml("
auth_method = "scram-sha-256"

[pool_defaults]
mode = "session"
size = 30
min_idle = 2
query_wait_timeout = "7s"
server_connect_timeout = "3s"
server_idle_timeout = "2m"
server_lifetime = "1h"
client_idle_timeout = "10m"
max_prepared_statements = 200
max_prepared_bytes_per_client = 65536
max_statements_per_server = 50
max_concurrent_logins = 8
min_size = 2

[health]
interval = "250ms"
timeout = "2s"
failures_before_down = 3
successes_before_up = 2

[[databases]]
name = "app"
primary = "postgres://app@10.0.0.5:5432/app?sslmode=require"
replicas = ["postgres://app@${REPLICA_HOST}:5432/app", "postgresql://10.0.0.7/app"]
reads = "any"
on_primary_down = "fail"
write_wait = "0"
max_replica_lag = "1s"
mode = "transaction"
size = 10
min_idle = 1
query_wait_timeout = "1s"
server_connect_timeout = "500ms"
server_idle_timeout = "0s"
server_lifetime = "0s"
client_idle_timeout = "0"
max_prepared_statements = 0
max_concurrent_logins = 2
min_size = 3
fleet_max_connections = 30
)toml";
  const auto cfg = load_ok(text);
  CHECK(cfg->source_path == "test.toml");

  CHECK(cfg->listen.address == "0.0.0.0");
  CHECK(cfg->listen.port == 7432);
  CHECK(cfg->listen.unix_socket_dir == "/var/run/pgsidecar");
  CHECK(cfg->listen.workers == 4);
  CHECK(cfg->listen.max_client_connections == 5000);
  CHECK(cfg->listen.admin_reserved_connections == 5);
  CHECK(cfg->http.address == "::");
  CHECK(cfg->http.port == 9930);
  CHECK(cfg->auth.method == AuthMethod::Md5);
  CHECK(cfg->auth.login_timeout == 15s);
  CHECK(cfg->limits.max_message_size == 1048576u);
  CHECK(cfg->limits.max_scram_iterations == 20000);
  CHECK(cfg->admin_users == std::vector<std::string>{"admin", "verified"});

  REQUIRE(cfg->users.size() == 4);
  const User& app = cfg->users[0];
  CHECK(app.name == "app");
  CHECK(app.password == "app-secret");
  CHECK(app.server_password == "server-secret");
  CHECK(app.auth_method == AuthMethod::ScramSha256);
  CHECK(cfg->auth_method_for(app) == AuthMethod::ScramSha256);
  const User& admin = cfg->users[1];
  CHECK(admin.password == "md56a422f785c9e20873908ce25d1736ae2");
  CHECK(admin.server_password.empty());  // a hash cannot log in to a server
  CHECK_FALSE(admin.auth_method.has_value());
  CHECK(cfg->auth_method_for(admin) == AuthMethod::Md5);
  const User& ops = cfg->users[2];
  CHECK(ops.password.empty());
  CHECK(cfg->auth_method_for(ops) == AuthMethod::Trust);
  CHECK(cfg->users[3].password == kScramVerifier);
  CHECK(cfg->users[3].server_password.empty());
  CHECK(cfg->is_admin("verified"));
  CHECK_FALSE(cfg->is_admin("app"));
  CHECK(cfg->find_user("verified") == &cfg->users[3]);

  const PoolSettings& d = cfg->pool_defaults;
  CHECK(d.mode == PoolMode::Session);
  CHECK(d.size == 30);
  CHECK(d.min_idle == 2);
  CHECK(d.query_wait_timeout == 7s);
  CHECK(d.server_connect_timeout == 3s);
  CHECK(d.server_idle_timeout == 2min);
  CHECK(d.server_lifetime == 1h);
  CHECK(d.client_idle_timeout == 10min);
  CHECK(d.max_prepared_statements == 200);
  CHECK(d.max_prepared_bytes_per_client == 65536);
  CHECK(d.max_statements_per_server == 50);
  CHECK(d.max_concurrent_logins == 8);
  CHECK(d.min_size == 2);

  CHECK(cfg->health.interval == 250ms);
  CHECK(cfg->health.timeout == 2s);
  CHECK(cfg->health.failures_before_down == 3);
  CHECK(cfg->health.successes_before_up == 2);

  REQUIRE(cfg->databases.size() == 1);
  const Database& db = cfg->databases[0];
  CHECK(cfg->find_database("app") == &db);
  CHECK(db.primary.host == "10.0.0.5");
  CHECK(db.primary.user == "app");
  CHECK(db.primary.sslmode == "require");
  REQUIRE(db.replicas.size() == 2);
  CHECK(db.replicas[0].host == "10.0.0.6");
  CHECK(db.replicas[0].url == "postgres://app@10.0.0.6:5432/app");
  CHECK(db.replicas[1].host == "10.0.0.7");
  CHECK(db.reads == ReadPolicy::Any);
  CHECK(db.on_primary_down == PrimaryDownPolicy::Fail);
  CHECK(db.write_wait == 0ms);
  CHECK(db.max_replica_lag == 1s);
  CHECK(db.pool.mode == PoolMode::Transaction);
  CHECK(db.pool.size == 10);
  CHECK(db.pool.min_idle == 1);
  CHECK(db.pool.query_wait_timeout == 1s);
  CHECK(db.pool.server_connect_timeout == 500ms);
  CHECK(db.pool.server_idle_timeout == 0ms);
  CHECK(db.pool.server_lifetime == 0ms);
  CHECK(db.pool.client_idle_timeout == 0ms);
  CHECK(db.pool.max_prepared_statements == 0);
  CHECK(db.pool.max_concurrent_logins == 2);
  CHECK(db.pool.min_size == 3);
  CHECK(db.fleet_max_connections == 30);
}

TEST_CASE("a minimal config gets the documented defaults") {
  const auto cfg = load_ok(kMinimal);
  const Config defaults;
  CHECK(cfg->listen.address == "127.0.0.1");
  CHECK(cfg->listen.port == 6432);
  CHECK(cfg->listen.unix_socket_dir.empty());
  CHECK(cfg->listen.workers == 0);
  CHECK(cfg->listen.max_client_connections == 10000);
  CHECK(cfg->http.address == "127.0.0.1");
  CHECK(cfg->http.port == 0);
  CHECK(cfg->auth.method == AuthMethod::ScramSha256);
  CHECK(cfg->auth.login_timeout == 10s);
  CHECK(cfg->limits.max_message_size == 256u * 1024u * 1024u);
  CHECK(cfg->limits.max_scram_iterations == 100000);
  CHECK(cfg->listen.admin_reserved_connections == 3);
  CHECK(cfg->admin_users.empty());
  CHECK(cfg->pool_defaults.mode == PoolMode::Transaction);
  CHECK(cfg->pool_defaults.size == 20);
  CHECK(cfg->pool_defaults.min_idle == 0);
  CHECK(cfg->pool_defaults.query_wait_timeout == 5s);
  CHECK(cfg->pool_defaults.server_connect_timeout == 2s);
  CHECK(cfg->pool_defaults.server_idle_timeout == 60s);
  CHECK(cfg->pool_defaults.server_lifetime == 3600s);
  CHECK(cfg->pool_defaults.client_idle_timeout == 0s);
  CHECK(cfg->pool_defaults.max_prepared_statements == 1000);
  CHECK(cfg->pool_defaults.max_prepared_bytes_per_client == 16 * 1024 * 1024);
  CHECK(cfg->pool_defaults.max_statements_per_server == 1000);
  CHECK(cfg->limits.max_client_buffer == 16u * 1024 * 1024);
  CHECK(cfg->pool_defaults.max_concurrent_logins == 4);
  CHECK(cfg->pool_defaults.min_size == 1);
  CHECK(cfg->health.interval == 500ms);
  CHECK(cfg->health.timeout == 1s);
  CHECK(cfg->health.failures_before_down == 2);
  CHECK(cfg->health.successes_before_up == 1);

  REQUIRE(cfg->users.size() == 1);
  CHECK(cfg->users[0].server_password == "secret");  // defaults to a plain password
  REQUIRE(cfg->databases.size() == 1);
  const Database& db = cfg->databases[0];
  CHECK(db.primary.host == "db");
  CHECK(db.primary.port == 5432);
  CHECK(db.primary.dbname == "app");
  CHECK(db.primary.user.empty());
  CHECK(db.replicas.empty());
  CHECK(db.reads == ReadPolicy::Primary);
  CHECK(db.on_primary_down == PrimaryDownPolicy::ReplicaReads);
  CHECK(db.write_wait == 10s);
  CHECK(db.max_replica_lag == 5s);
  CHECK(db.fleet_max_connections == 0);  // no fleet budget
  CHECK(db.pool.size == defaults.pool_defaults.size);
  CHECK(db.pool.mode == defaults.pool_defaults.mode);
}

TEST_CASE("each database starts from pool_defaults and applies only its own overrides") {
  const auto cfg = load_ok(R"toml(
[[users]]
name = "app"
password = "secret"

[pool_defaults]
mode = "session"
size = 50
min_idle = 5
query_wait_timeout = "9s"

[[databases]]
name = "app"
primary = "postgres://db/app"

[[databases]]
name = "sessions"
primary = "postgres://db/app"
size = 10
client_idle_timeout = "30s"

[[databases]]
name = "billing"
primary = "postgres://db/billing"
mode = "transaction"
min_idle = 0
size = 3
)toml");
  REQUIRE(cfg->databases.size() == 3);
  const PoolSettings& app = cfg->find_database("app")->pool;
  CHECK(app.mode == PoolMode::Session);
  CHECK(app.size == 50);
  CHECK(app.min_idle == 5);
  CHECK(app.query_wait_timeout == 9s);
  CHECK(app.client_idle_timeout == 0s);

  const PoolSettings& sessions = cfg->find_database("sessions")->pool;
  CHECK(sessions.mode == PoolMode::Session);
  CHECK(sessions.size == 10);
  CHECK(sessions.min_idle == 5);
  CHECK(sessions.query_wait_timeout == 9s);
  CHECK(sessions.client_idle_timeout == 30s);

  const PoolSettings& billing = cfg->find_database("billing")->pool;
  CHECK(billing.mode == PoolMode::Transaction);
  CHECK(billing.size == 3);
  CHECK(billing.min_idle == 0);
  CHECK(billing.query_wait_timeout == 9s);

  CHECK(cfg->pool_defaults.size == 50);  // overrides never leak back
}

TEST_CASE("interpolation applies to every string value, enums and URLs included") {
  const EnvLookup env = fixed_env({{"MODE", "session"},
                                   {"ADDR", "0.0.0.0"},
                                   {"WAIT", "3s"},
                                   {"NAME", "app"},
                                   {"PW", "pw"},
                                   {"DB_USER", "service"},
                                   {"DB_PASSWORD", "p%40ss"}});
  const auto cfg = load_ok(R"toml(
[listen]
address = "${ADDR}"
[admin]
users = ["${NAME}"]
[[users]]
name = "${NAME}"
password = "${PW}$$"
[pool_defaults]
mode = "${MODE}"
query_wait_timeout = "${WAIT}"
[[databases]]
name = "${NAME}"
primary = "postgres://${DB_USER}:${DB_PASSWORD}@db/app"
)toml",
                           env);
  CHECK(cfg->listen.address == "0.0.0.0");
  CHECK(cfg->admin_users == std::vector<std::string>{"app"});
  CHECK(cfg->users[0].name == "app");
  CHECK(cfg->users[0].password == "pw$");
  CHECK(cfg->pool_defaults.mode == PoolMode::Session);
  CHECK(cfg->pool_defaults.query_wait_timeout == 3s);
  CHECK(cfg->databases[0].name == "app");
  CHECK(cfg->databases[0].primary.user == "service");
  CHECK(cfg->databases[0].primary.password == "p@ss");
}

TEST_CASE("a user whose effective method is trust needs no password") {
  const auto cfg = load_ok(R"toml(
[auth]
method = "trust"
[[users]]
name = "app"
[[databases]]
name = "app"
primary = "postgres://db/app"
)toml");
  CHECK(cfg->users[0].password.empty());
  CHECK(cfg->users[0].server_password.empty());
}

TEST_CASE("databases may be written as an inline array of tables") {
  const auto cfg = load_ok(R"toml(
users = [{ name = "app", password = "secret" }]
databases = [{ name = "app", primary = "postgres://db/app", size = 4 }]
)toml");
  CHECK(cfg->databases[0].pool.size == 4);
}

TEST_CASE("a config loaded twice gives two independent snapshots") {
  const auto a = load_ok(kMinimal);
  const auto b = load_ok(kMinimal);
  CHECK(a != b);
  CHECK(a->databases[0].name == b->databases[0].name);
}

TEST_CASE("Problem::to_string leaves out the parts it does not know") {
  CHECK(Problem{"databases[1].replicas[0]", 42, 12, "expected a postgres:// URL"}.to_string() ==
        "databases[1].replicas[0] (line 42, col 12): expected a postgres:// URL");
  CHECK(Problem{"users", 0, 0, "missing"}.to_string() == "users: missing");
  CHECK(Problem{"", 3, 7, "syntax"}.to_string() == "line 3, col 7: syntax");
  CHECK(Problem{"", 0, 0, "cannot read"}.to_string() == "cannot read");
}
