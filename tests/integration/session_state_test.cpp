// Session state in transaction mode (docs/pooling.md): session SETs (set_config of Bind
// parameters too) follow their client onto every server it uses, and are undone when
// their transaction rolls back; RESET returns to the client's startup value; a temporary
// table pins its client to its server until DISCARD TEMP; with session_state = "refuse"
// the creating statement fails with 0A000 and the connection goes on.
//
// Also: advisory locks (counted), WITH HOLD cursors, LISTEN and SQL PREPARE pin until
// released; the same through the extended protocol; pinned_idle_timeout; SHOW CLIENTS'
// pinned column and pgsidecar_client_pins_total.
//
// A pool of two servers on one worker, and a second client that holds one of them in a
// transaction every other step, so the client under test keeps changing servers.

#include <doctest/doctest.h>

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/proxy_fixture.h"

namespace {

using namespace pgsidecar::testing;

struct Churn {
  Connection holder;
  int step = 0;
  // Every other call, holds a server inside a transaction; else lets it go.
  void next() {
    const std::string sql = (step++ % 2 == 0) ? "BEGIN; SELECT 1" : "COMMIT";
    const QueryResult r = holder.exec(sql);
    REQUIRE_MESSAGE(r.ok, r.describe());
  }
};

// Runs `sql`, which must succeed; its first value, or "" when it returns no rows.
std::string one(Connection& c, const std::string& sql) {
  const QueryResult r = c.exec(sql);
  REQUIRE_MESSAGE(r.ok, sql, ": ", r.describe());
  return r.rows.empty() ? std::string() : r.value();
}

ProxyConfig two_servers(const std::string& extra = "") {
  ProxyConfig config = pool_config("transaction", 2);
  config.workers = 1;
  config.pool_extra = extra;
  return config;
}

// A proxy in front of the test cluster, the client under test, another client, and a churn.
struct PinProxy {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  std::string base;
  Connection a, other;
  std::optional<Churn> churn;
  explicit PinProxy(const ProxyConfig& config = two_servers()) {
    start_proxy(proxy, cluster, config);
    base = app_conninfo(proxy, cluster);
    a = connect_ok(base);
    other = connect_ok(base);
    churn.emplace(Churn{connect_ok(base)});
  }
  // `use` runs `times` times, in transactions of their own while the churn holds a server
  // ("a", were it not pinned, would land on the other one); "a" stays on its server. Then
  // the churn lets go and `others` runs, on the server "a" does not hold.
  void stays_pinned(const std::function<void(int)>& use, int times = 30,
                    const std::function<void(int)>& others = {}) {
    const std::string pid = one(a, "SELECT pg_backend_pid()");
    for (int i = 0; i < times; ++i) {
      churn->next();
      use(i);
      CHECK(one(a, "SELECT pg_backend_pid()") == pid);
      churn->next();
      if (others) others(i);
    }
  }
  // Released: "a" moves between the two servers again.
  void moves_again() {
    std::set<std::string> seen;
    for (int i = 0; i < 6; ++i) {
      churn->next();
      seen.insert(one(a, "SELECT pg_backend_pid()"));
    }
    CHECK(seen.size() == 2);
  }
};

// The notifications libpq has read for `c` so far, after one more round trip.
std::vector<std::string> notifications(Connection& c) {
  one(c, "SELECT 1");
  std::vector<std::string> out;
  while (PGnotify* n = PQnotifies(c.raw())) {
    out.emplace_back(n->extra);
    PQfreemem(n);
  }
  return out;
}

// "a" with one admin listing, for SHOW CLIENTS.
ProxyConfig with_admin(ProxyConfig config, Cluster& cluster, const std::string& more = "") {
  config.extra = "[admin]\nusers = [" + toml_string(cluster.app_user()) + "]\n" + more;
  return config;
}

// SHOW CLIENTS' pinned column, for the clients that have one.
std::vector<std::string> pinned_rows(Connection& admin) {
  const QueryResult r = admin.exec("SHOW CLIENTS");
  REQUIRE_MESSAGE(r.ok, r.describe());
  const auto column = std::find(r.columns.begin(), r.columns.end(), "pinned") - r.columns.begin();
  REQUIRE(column < static_cast<std::ptrdiff_t>(r.columns.size()));
  std::vector<std::string> out;
  for (const auto& row : r.rows)
    if (!row[static_cast<std::size_t>(column)].empty()) out.push_back(row[static_cast<std::size_t>(column)]);
  return out;
}

// One statement through the extended protocol whose parameters may be NULL (nullopt) or
// in binary format; its first value, or the error's SQLSTATE after "ERROR ".
std::string exec_raw(Connection& c, const char* sql, const std::vector<std::optional<std::string>>& params,
                     int format = 0) {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const auto& p : params) {
    values.push_back(p ? p->c_str() : nullptr);
    lengths.push_back(p ? static_cast<int>(p->size()) : 0);
    formats.push_back(format);
  }
  PGresult* res = PQexecParams(c.raw(), sql, static_cast<int>(params.size()), nullptr, values.data(), lengths.data(),
                               formats.data(), 0);
  std::string out;
  if (PQresultStatus(res) == PGRES_TUPLES_OK) out = PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "";
  else out = std::string("ERROR ") + (PQresultErrorField(res, PG_DIAG_SQLSTATE) ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "");
  PQclear(res);
  return out;
}

// A frontend message: Byte1(tag) Int32(length) body.
std::vector<std::byte> message(char tag, const std::vector<std::byte>& body) {
  return Bytes{}.byte(static_cast<std::uint8_t>(tag)).int32(static_cast<std::uint32_t>(body.size() + 4)).raw(body).get();
}

// A raw client of the proxy, logged in: whatever it sends, it reads up to ReadyForQuery.
struct RawClient {
  Socket s;
  explicit RawClient(ProxyProcess& proxy, Cluster& cluster) : s(connect_tcp(proxy.port())) {
    REQUIRE(s.ok());
    REQUIRE(send_all(s.fd(), startup_message(cluster.app_user(), "app")));
    const Received login = until_ready();
    REQUIRE_MESSAGE(!login.error(), login.describe());
  }
  Received until_ready() {
    return receive(s.fd(), std::chrono::seconds(10),
                   [](const Received& r) { return !r.messages.empty() && r.messages.back().tag == 'Z'; });
  }
  // A Query's first value.
  std::string value(std::string_view sql) {
    REQUIRE(send_all(s.fd(), message('Q', Bytes{}.cstring(sql).get())));
    const Received r = until_ready();
    REQUIRE_MESSAGE(!r.error(), r.describe());
    for (const BackendMessage& m : r.messages) {
      if (m.tag != 'D' || m.body.size() < 6) continue;  // Int16(1) Int32(len) bytes
      const auto* b = reinterpret_cast<const char*>(m.body.data());
      return std::string(b + 6, m.body.size() - 6);
    }
    return "(no row)";
  }
};

}  // namespace

TEST_CASE("session SETs follow their client across servers, never another client, and a rollback undoes them") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, two_servers());
  const std::string base = app_conninfo(proxy, cluster);
  Connection a = connect_ok(base);
  Connection other = connect_ok(base);
  Churn churn{connect_ok(base)};

  one(a, "SET statement_timeout = '1234ms'");
  one(a, "SET search_path = public, pg_catalog");
  one(a, "SELECT set_config('app.user', 'O''Brien \\', false)");
  one(a, "BEGIN; SET work_mem = '9MB'; ROLLBACK");
  one(a, "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  std::set<std::string> backends;
  for (int i = 0; i < 30; ++i) {
    churn.next();
    const QueryResult r = a.exec(
        "SELECT current_setting('statement_timeout'), current_setting('search_path'), "
        "current_setting('app.user'), current_setting('work_mem'), current_setting('default_transaction_isolation'), "
        "pg_backend_pid()");
    REQUIRE_MESSAGE(r.ok, r.describe());
    CHECK(r.value(0, 0) == "1234ms");
    CHECK(r.value(0, 1) == "public, pg_catalog");
    CHECK(r.value(0, 2) == "O'Brien \\");
    CHECK(r.value(0, 3) == "4MB");
    CHECK(r.value(0, 4) == "repeatable read");
    backends.insert(r.value(0, 5));
    CHECK(one(other, "SHOW statement_timeout") == "0");
  }
  CHECK(backends.size() == 2);  // it did change servers

  // RESET: back to the server's default (this client gave none at startup), everywhere.
  one(a, "RESET statement_timeout");
  for (int i = 0; i < 4; ++i) {
    churn.next();
    CHECK(one(a, "SHOW statement_timeout") == "0");
  }
}

TEST_CASE("RESET and RESET ALL return to the client's startup value, in transaction and session mode") {
  Cluster& cluster = Cluster::shared();
  for (const char* mode : {"transaction", "session"}) {
    INFO("mode ", mode);
    ProxyProcess proxy;
    ProxyConfig config = two_servers();
    config.mode = mode;
    start_proxy(proxy, cluster, config);
    const std::string base = app_conninfo(proxy, cluster);
    Connection a = connect_ok(base + " options='-c statement_timeout=4321' application_name=startup-name");
    Churn churn{connect_ok(base)};
    one(a, "SET statement_timeout = 5");
    one(a, "SET application_name = 'changed'");
    one(a, "RESET statement_timeout");
    churn.next();
    CHECK(one(a, "SHOW statement_timeout") == "4321ms");
    one(a, "SET statement_timeout = 6");
    one(a, "RESET ALL");
    churn.next();
    CHECK(one(a, "SHOW statement_timeout") == "4321ms");
    CHECK(one(a, "SHOW application_name") == "startup-name");
    churn.next();
  }
}

TEST_CASE("a temporary table pins its client to its server until DISCARD TEMP") {
  PinProxy p;
  one(p.a, "CREATE TEMP TABLE pinned_t(a int)");
  p.stays_pinned([&](int i) {
    one(p.a, "INSERT INTO pinned_t VALUES (" + std::to_string(i) + ")");
    CHECK(one(p.a, "SELECT count(*) FROM pinned_t") == std::to_string(i + 1));
    }, 30, [&](int) {
    // Another client gets the other server and never sees the table.
    CHECK(p.other.exec("SELECT count(*) FROM pinned_t").sqlstate == "42P01");
  });
  one(p.a, "DISCARD TEMP");
  p.moves_again();  // released: its server goes back to the pool
}

TEST_CASE("session advisory locks pin until each is unlocked, or pg_advisory_unlock_all()") {
  PinProxy p;
  // Held by another session: another client's try fails (on a's own server it would not).
  auto held = [&](int key) { return one(p.other, "SELECT pg_try_advisory_xact_lock(" + std::to_string(key) + ")") == "f"; };
  SUBCASE("counted: two locks, two unlocks") {
    one(p.a, "SELECT pg_advisory_lock(71)");
    one(p.a, "SELECT pg_try_advisory_lock(71), pg_advisory_lock_shared(72)");
    p.stays_pinned([&](int) { one(p.a, "SELECT 1"); }, 30, [&](int) { CHECK(held(71)); });
    one(p.a, "SELECT pg_advisory_unlock(71)");
    one(p.a, "SELECT pg_advisory_unlock_shared(72)");
    p.stays_pinned([&](int) { one(p.a, "SELECT 1"); }, 4, [&](int) { CHECK(held(71)); });  // 71 was taken twice
    one(p.a, "SELECT pg_advisory_unlock(71)");
    CHECK_FALSE(held(71));
  }
  SUBCASE("pg_advisory_unlock_all()") {
    one(p.a, "SELECT pg_advisory_lock(73); SELECT pg_advisory_lock(74)");
    p.stays_pinned([&](int) { one(p.a, "SELECT 1"); }, 30, [&](int) { CHECK(held(74)); });
    one(p.a, "SELECT pg_advisory_unlock_all()");
    CHECK_FALSE(held(74));
  }
  SUBCASE("through the extended protocol") {
    const QueryResult locked = p.a.exec_params("SELECT pg_advisory_lock($1)", {"75"});
    REQUIRE_MESSAGE(locked.ok, locked.describe());
    p.stays_pinned([&](int) { one(p.a, "SELECT 1"); }, 30, [&](int) { CHECK(held(75)); });
    const QueryResult unlocked = p.a.exec_params("SELECT pg_advisory_unlock($1)", {"75"});
    REQUIRE_MESSAGE(unlocked.ok, unlocked.describe());
    CHECK(unlocked.value() == "t");
  }
  SUBCASE("DISCARD ALL") {
    one(p.a, "SELECT pg_advisory_lock(76)");
    p.stays_pinned([&](int) { one(p.a, "SELECT 1"); }, 4, [&](int) { CHECK(held(76)); });
    one(p.a, "DISCARD ALL");
    CHECK_FALSE(held(76));
  }
  p.moves_again();
}

TEST_CASE("a WITH HOLD cursor pins until CLOSE") {
  PinProxy p;
  SUBCASE("CLOSE name") {
    one(p.a, "DECLARE held_c CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 100) g");
    p.stays_pinned([&](int i) {
      CHECK(one(p.a, "FETCH 1 FROM held_c") == std::to_string(i + 1));
    }, 30, [&](int) { CHECK(p.other.exec("FETCH 1 FROM held_c").sqlstate == "34000"); });
    one(p.a, "CLOSE held_c");
  }
  SUBCASE("CLOSE ALL, declared inside a transaction") {
    one(p.a, "BEGIN; DECLARE held_c CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 100) g; COMMIT");
    p.stays_pinned([&](int i) { CHECK(one(p.a, "FETCH 1 FROM held_c") == std::to_string(i + 1)); }, 4);
    one(p.a, "CLOSE ALL");
  }
  p.moves_again();
}

TEST_CASE("LISTEN pins until UNLISTEN *, and every notification reaches the listener") {
  PinProxy p;
  one(p.a, "LISTEN pin_ch");
  std::vector<std::string> received;
  p.stays_pinned([&](int) {
    for (auto& n : notifications(p.a)) received.push_back(std::move(n));
  }, 30, [&](int i) {
    one(p.other, "NOTIFY pin_ch, '" + std::to_string(i) + "'");
    CHECK(notifications(p.other).empty());
  });
  for (auto& n : notifications(p.a)) received.push_back(std::move(n));  // the last one
  CHECK(received.size() == 30);
  one(p.a, "UNLISTEN *");
  p.moves_again();
}

TEST_CASE("an SQL PREPARE pins until DEALLOCATE") {
  PinProxy p;
  SUBCASE("DEALLOCATE name") {
    one(p.a, "PREPARE plus_one(int) AS SELECT $1 + 1");
    p.stays_pinned([&](int i) {
      CHECK(one(p.a, "EXECUTE plus_one(" + std::to_string(i) + ")") == std::to_string(i + 1));
    }, 30, [&](int) { CHECK(p.other.exec("EXECUTE plus_one(1)").sqlstate == "26000"); });
    one(p.a, "DEALLOCATE plus_one");
  }
  SUBCASE("DEALLOCATE ALL") {
    one(p.a, "PREPARE p1 AS SELECT 1; PREPARE p2 AS SELECT 2");
    p.stays_pinned([&](int) { CHECK(one(p.a, "EXECUTE p2") == "2"); }, 4);
    one(p.a, "DEALLOCATE ALL");
  }
  p.moves_again();
}

TEST_CASE("a session SET and a pin through the extended protocol") {
  PinProxy p;
  const QueryResult set = p.a.exec_params("SET statement_timeout = '2345ms'", {});
  REQUIRE_MESSAGE(set.ok, set.describe());
  std::set<std::string> backends;
  for (int i = 0; i < 10; ++i) {
    p.churn->next();
    const QueryResult r = p.a.exec_params("SELECT current_setting('statement_timeout'), pg_backend_pid()", {});
    REQUIRE_MESSAGE(r.ok, r.describe());
    CHECK(r.value(0, 0) == "2345ms");
    backends.insert(r.value(0, 1));
    CHECK(one(p.other, "SHOW statement_timeout") == "0");
  }
  CHECK(backends.size() == 2);  // followed, not pinned

  const QueryResult created = p.a.exec_params("CREATE TEMP TABLE ext_t(v int)", {});
  REQUIRE_MESSAGE(created.ok, created.describe());
  p.stays_pinned([&](int i) {
    const QueryResult r = p.a.exec_params("INSERT INTO ext_t VALUES ($1)", {std::to_string(i)});
    CHECK_MESSAGE(r.ok, r.describe());
  });
  CHECK(one(p.a, "SELECT count(*) FROM ext_t") == "30");
  REQUIRE(p.a.exec_params("DISCARD TEMP", {}).ok);
  p.moves_again();
}

TEST_CASE("set_config of Bind parameters follows its client across servers, unpinned; a rollback undoes it") {
  Cluster& cluster = Cluster::shared();
  PinProxy p(with_admin(two_servers(), cluster));
  Connection admin = connect_ok(app_conninfo(p.proxy, cluster, "pgsidecar"));
  // The setting as "a" sees it in its next transaction, while the churn holds a server
  // every other time (so that "a" keeps changing servers); checks that "other" never sees
  // it and that "a" is not pinned.
  std::set<std::string> backends;
  auto seen = [&](const char* name) {
    p.churn->next();
    const QueryResult r =
        p.a.exec(std::string("SELECT coalesce(current_setting('") + name + "', true), '(none)'), pg_backend_pid()");
    REQUIRE_MESSAGE(r.ok, r.describe());
    backends.insert(r.value(0, 1));
    REQUIRE(pinned_rows(admin).empty());  // (pinned, "a" would hold the server "other" waits for)
    CHECK(one(p.other, std::string("SELECT coalesce(current_setting('") + name + "', true), '')") == "");
    return r.value(0, 0);
  };
  auto set = [&](const char* sql, const std::vector<std::string>& params) {
    const QueryResult r = p.a.exec_params(sql, params);
    REQUIRE_MESSAGE(r.ok, sql, ": ", r.describe());
  };

  set("SELECT set_config('app.tenant', $1, false)", {"acme"});
  for (int i = 0; i < 30; ++i) CHECK(seen("app.tenant") == "acme");
  CHECK(backends.size() == 2);  // it did change servers

  set("SELECT set_config('app.tenant', $1::text, false)", {"O'Brien \\ \"x\" $1"});
  for (int i = 0; i < 4; ++i) CHECK(seen("app.tenant") == "O'Brien \\ \"x\" $1");
  const std::string long_value = std::string(10000, 'v') + "-end";  // a Bind longer than a first look at it
  set("SELECT set_config('app.tenant', $1, false)", {long_value});
  for (int i = 0; i < 4; ++i) CHECK(seen("app.tenant") == long_value);
  set("SELECT set_config($1, $2, false)", {"App.Region", "eu-west"});
  for (int i = 0; i < 4; ++i) CHECK(seen("app.region") == "eu-west");

  // One prepared statement, bound with a new value each time.
  REQUIRE(p.a.prepare("set_tenant", "SELECT set_config('app.tenant', $1, false)").ok);
  for (int i = 0; i < 6; ++i) {
    const std::string tenant = "tenant-" + std::to_string(i);
    const QueryResult r = p.a.exec_prepared("set_tenant", {tenant});
    REQUIRE_MESSAGE(r.ok, r.describe());
    CHECK(seen("app.tenant") == tenant);
  }

  // Inside a transaction: undone by ROLLBACK, kept by COMMIT.
  one(p.a, "BEGIN");
  set("SELECT set_config('app.tenant', $1, false)", {"rolled-back"});
  CHECK(one(p.a, "SELECT current_setting('app.tenant')") == "rolled-back");
  one(p.a, "ROLLBACK");
  for (int i = 0; i < 4; ++i) CHECK(seen("app.tenant") == "tenant-5");
  one(p.a, "BEGIN");
  set("SELECT set_config('app.tenant', $1, false)", {"committed"});
  one(p.a, "COMMIT");
  for (int i = 0; i < 4; ++i) CHECK(seen("app.tenant") == "committed");

  // A binary-format text parameter is the same text; a NULL value resets, as set_config does.
  CHECK(exec_raw(p.a, "SELECT set_config('app.tenant', $1, false)", {"binary"}, 1) == "binary");
  for (int i = 0; i < 4; ++i) CHECK(seen("app.tenant") == "binary");
  CHECK(exec_raw(p.a, "SELECT set_config('app.tenant', $1, false)", {std::nullopt}) == "");
  for (int i = 0; i < 4; ++i) {
    const std::string v = seen("app.tenant");
    CHECK((v == "" || v == "(none)"));
  }
  CHECK(seen("app.region") == "eu-west");
}

TEST_CASE("a Bind that sets a setting from its parameters is read whole, though it arrives in two parts") {
  Cluster& cluster = Cluster::shared();
  ProxyConfig config = two_servers();
  config.auth_method = "trust";  // the raw client logs in without a password exchange
  PinProxy p(config);
  RawClient raw(p.proxy, cluster);
  const std::string value = std::string(10000, 'v') + "-end";
  std::vector<std::byte> value_bytes;
  for (char c : value) value_bytes.push_back(static_cast<std::byte>(c));
  // Bind (F): portal, statement, Int16(0) format codes, Int16(1) parameter, Int16(0) result formats.
  const std::vector<std::byte> whole_bind = message(
      'B', Bytes{}.cstring("").cstring("").byte(0).byte(0).byte(0).byte(1)
               .int32(static_cast<std::uint32_t>(value.size())).raw(value_bytes).byte(0).byte(0).get());
  std::vector<std::byte> first =
      message('P', Bytes{}.cstring("").cstring("SELECT set_config('app.tenant', $1, false)").byte(0).byte(0).get());
  first.insert(first.end(), whole_bind.begin(), whole_bind.begin() + 5000);
  REQUIRE(send_all(raw.s.fd(), first));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::vector<std::byte> rest(whole_bind.begin() + 5000, whole_bind.end());
  for (const auto& m : {message('E', Bytes{}.cstring("").int32(0).get()), message('S', {})})
    rest.insert(rest.end(), m.begin(), m.end());
  REQUIRE(send_all(raw.s.fd(), rest));
  const Received r = raw.until_ready();
  REQUIRE_MESSAGE(!r.error(), r.describe());
  std::set<std::string> backends;
  for (int i = 0; i < 6; ++i) {
    p.churn->next();
    CHECK(raw.value("SELECT current_setting('app.tenant')") == value);
    backends.insert(raw.value("SELECT pg_backend_pid()::text"));
  }
  CHECK(backends.size() == 2);  // not pinned
}

TEST_CASE("pinned_idle_timeout closes a pinned client that sits idle, and only that one") {
  PinProxy p(two_servers("pinned_idle_timeout = \"300ms\""));
  one(p.a, "CREATE TEMP TABLE idle_t(a int)");
  one(p.other, "SET statement_timeout = '1s'");  // not pinned: kept as long as it likes
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const QueryResult r = p.a.exec("SELECT 1");
  CHECK(r.sqlstate == "57P05");
  CHECK(r.message.find("pinned_idle_timeout") != std::string::npos);
  CHECK(r.message.find("temp table") != std::string::npos);
  CHECK(one(p.other, "SELECT 1") == "1");
  // Its server went back to the pool reset: the table is gone for whoever gets it.
  for (int i = 0; i < 4; ++i) {
    p.churn->next();
    CHECK(p.other.exec("SELECT * FROM idle_t").sqlstate == "42P01");
  }
}

TEST_CASE("SHOW CLIENTS says which clients are pinned and why; pgsidecar_client_pins_total counts pins by reason") {
  Cluster& cluster = Cluster::shared();
  PinProxy p(with_admin(two_servers(), cluster, "\n[http]\naddress = \"127.0.0.1\"\nport = @HTTP_PORT@\n"));
  Connection admin = connect_ok(app_conninfo(p.proxy, cluster, "pgsidecar"));
  auto pinned_rows = [&admin] { return ::pinned_rows(admin); };
  const int port = p.proxy.http_port();
  auto pins = [port](const char* reason) {
    return metric_value(port, std::string("pgsidecar_client_pins_total{reason=\"") + reason + "\"}", 0);
  };
  CHECK(pinned_rows().empty());
  one(p.a, "CREATE TEMP TABLE shown_t(a int); SELECT pg_advisory_lock(77)");
  CHECK(pinned_rows() == std::vector<std::string>{"temp table, advisory lock"});
  CHECK(pins("temp table") == 1);
  CHECK(pins("advisory lock") == 1);
  CHECK(pins("LISTEN") == 0);
  one(p.a, "DISCARD ALL");
  CHECK(pinned_rows().empty());
  one(p.a, "LISTEN shown_ch");
  CHECK(pinned_rows() == std::vector<std::string>{"LISTEN"});
  CHECK(pins("LISTEN") == 1);
  CHECK(pins("temp table") == 1);  // a counter: what was released stays counted
}

TEST_CASE("session_state = refuse answers state that would pin with 0A000, and the connection goes on") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, two_servers("session_state = \"refuse\""));
  Connection a = connect_ok(app_conninfo(proxy, cluster));

  for (const char* sql : {"CREATE TEMP TABLE t(a int)", "SELECT pg_advisory_lock(7)", "LISTEN ch",
                          "PREPARE p AS SELECT 1", "SELECT 1; DECLARE c CURSOR WITH HOLD FOR SELECT 1"}) {
    INFO(sql);
    const QueryResult r = a.exec(sql);
    CHECK(r.sqlstate == "0A000");
    CHECK(one(a, "SELECT 2") == "2");
    // Inside a transaction the transaction is aborted, as by any error.
    one(a, "BEGIN");
    CHECK(a.exec(sql).sqlstate == "0A000");
    CHECK(a.exec("SELECT 3").sqlstate == "25P02");
    one(a, "ROLLBACK");
  }
  // What does not pin still works: a set_config of a parameter is kept, not refused.
  one(a, "BEGIN; CREATE TEMP TABLE t(a int) ON COMMIT DROP; SELECT pg_advisory_xact_lock(7); COMMIT");
  CHECK(one(a, "SELECT 4") == "4");
  const QueryResult set = a.exec_params("SELECT set_config('app.tenant', $1, false)", {"kept"});
  REQUIRE_MESSAGE(set.ok, set.describe());
  Churn churn{connect_ok(app_conninfo(proxy, cluster))};
  std::set<std::string> backends;
  for (int i = 0; i < 6; ++i) {
    churn.next();
    const QueryResult r = a.exec("SELECT current_setting('app.tenant'), pg_backend_pid()");
    REQUIRE_MESSAGE(r.ok, r.describe());
    CHECK(r.value(0, 0) == "kept");
    backends.insert(r.value(0, 1));
  }
  CHECK(backends.size() == 2);
}
