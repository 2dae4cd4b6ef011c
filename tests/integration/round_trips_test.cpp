// Round trips saved in transaction mode (docs/pooling.md, "Round trips saved"): a BEGIN
// answered at once and sent with the transaction's first statement, statements whose
// answer pgsidecar knows, and pings. Each answer is compared byte for byte with what
// PostgreSQL itself sends for the same input on a direct connection.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/proxy_fixture.h"
#include "tests/support/fault_relay.h"

namespace pgsidecar::testing {
namespace {

using namespace std::chrono_literals;

// Frontend messages for one statement, as libpq sends them.
std::vector<std::byte> query(std::string_view sql) {
  Bytes body;
  body.cstring(sql);
  return Bytes{}.byte('Q').int32(static_cast<std::uint32_t>(body.get().size() + 4)).raw(body.get()).get();
}

std::vector<std::byte> message(char tag, const Bytes& body) {
  return Bytes{}.byte(static_cast<std::uint8_t>(tag)).int32(static_cast<std::uint32_t>(body.get().size() + 4)).raw(body.get()).get();
}

// Bind, Describe portal, Execute, Sync of statement `name` ("" the unnamed one): libpq's
// PQsendQueryPrepared with no parameters.
std::vector<std::byte> run_prepared(std::string_view name) {
  Bytes out;
  Bytes bind;
  bind.cstring("").cstring(name).byte(0).byte(0).byte(0).byte(0).byte(0).byte(0);
  out.raw(message('B', bind));
  Bytes describe;
  describe.byte('P').cstring("");
  out.raw(message('D', describe));
  Bytes execute;
  execute.cstring("").int32(0);
  out.raw(message('E', execute));
  out.raw(message('S', Bytes{}));
  return out.get();
}

Bytes parse_message(std::string_view name, std::string_view sql) {
  Bytes parse;
  parse.cstring(name).cstring(sql).byte(0).byte(0);
  return parse;
}

// Parse (unnamed), Bind, Describe portal, Execute, Sync: PQexecParams with no parameters.
std::vector<std::byte> extended(std::string_view sql) {
  return Bytes{}.raw(message('P', parse_message("", sql))).raw(run_prepared("")).get();
}

// A named statement prepared: Parse, Sync (PQprepare).
std::vector<std::byte> prepare(std::string_view name, std::string_view sql) {
  return Bytes{}.raw(message('P', parse_message(name, sql))).raw(message('S', Bytes{})).get();
}

// The messages of one request's reply, up to its ReadyForQuery, as "tag:bytes" lines.
// Notices and errors lose their F, L and R fields (PostgreSQL's source file, line and
// routine): pgsidecar's own notices leave them out.
std::string reply_text(const Received& r) {
  std::string out;
  for (const auto& m : r.messages) {
    out += m.tag;
    out += ':';
    std::size_t i = 0;
    while (i < m.body.size()) {
      if ((m.tag == 'N' || m.tag == 'E') && m.body[i] != std::byte{0}) {
        const char code = static_cast<char>(m.body[i]);
        std::string field;
        while (i < m.body.size() && m.body[i] != std::byte{0}) field += static_cast<char>(m.body[i++]);
        ++i;
        if (code != 'F' && code != 'L' && code != 'R') out += field + '|';
        continue;
      }
      char hex[4];
      std::snprintf(hex, sizeof hex, "%02x", std::to_integer<unsigned>(m.body[i++]));
      out += hex;
    }
    out += '\n';
  }
  return out;
}

// Sends `bytes` on a logged-in libpq connection's socket, bypassing libpq, and returns
// the reply up to the `readies`-th ReadyForQuery.
std::string raw_exchange(Connection& c, const std::vector<std::byte>& bytes, int readies = 1) {
  const int fd = PQsocket(c.raw());
  REQUIRE(fd >= 0);
  REQUIRE(send_all(fd, bytes));
  const Received r = receive(fd, 10s, [readies](const Received& got) {
    int n = 0;
    for (const auto& m : got.messages) n += m.tag == 'Z' ? 1 : 0;
    return n >= readies;
  });
  REQUIRE_MESSAGE(!r.timed_out, r.describe());
  REQUIRE_MESSAGE(!r.closed, r.describe());
  return reply_text(r);
}

// total_server_writes of the app pool, from SHOW STATS.
long long server_writes(Connection& admin, std::string_view database = "app") {
  const QueryResult r = admin.exec("SHOW STATS");
  REQUIRE_MESSAGE(r.ok, r.describe());
  const auto db = std::find(r.columns.begin(), r.columns.end(), "database") - r.columns.begin();
  const auto col = std::find(r.columns.begin(), r.columns.end(), "total_server_writes") - r.columns.begin();
  REQUIRE(col < static_cast<std::ptrdiff_t>(r.columns.size()));
  long long total = 0;
  for (const auto& row : r.rows)
    if (row[static_cast<std::size_t>(db)] == database) total += std::stoll(row[static_cast<std::size_t>(col)]);
  return total;
}

// Waits (bounded) until the health monitor has seen the route's server up: a ping then
// costs no write to a server.
void wait_for_local_pings(Connection& app, Connection& admin, std::string_view database = "app") {
  const auto deadline = Clock::now() + 10s;
  for (;;) {
    const long long before = server_writes(admin, database);
    REQUIRE(app.exec("SELECT 1").ok);
    if (server_writes(admin, database) == before) return;
    REQUIRE_MESSAGE(Clock::now() < deadline, "pings still reach the server after 10 s");
    std::this_thread::sleep_for(50ms);
  }
}

ProxyConfig round_trip_config(const Cluster& cluster, std::string pool_extra = "answer_pings = true\n") {
  ProxyConfig config = pool_config("transaction", 2);
  config.pool_extra = std::move(pool_extra);
  config.extra = "[admin]\nusers = [" + toml_string(cluster.app_user()) + "]\n";
  return config;
}

}  // namespace

TEST_CASE("statements answered without a server get PostgreSQL's own bytes") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, round_trip_config(cluster));
  Connection direct = connect_ok(cluster.primary_conninfo());
  Connection proxied = connect_ok(app_conninfo(proxy, cluster));
  Connection admin = connect_ok(app_conninfo(proxy, cluster, "pgsidecar"));

  struct Step {
    std::string what;
    std::vector<std::byte> bytes;
    int readies = 1;
  };
  const std::vector<Step> steps = {
      {"BEGIN", query("BEGIN")},
      {"first statement", query("SELECT 1 AS one")},
      {"COMMIT", query("COMMIT")},
      {"BEGIN with modes", query("begin isolation level repeatable read, read only")},
      {"COMMIT right after BEGIN", query("COMMIT")},
      {"START TRANSACTION", query("START TRANSACTION")},
      {"ROLLBACK right after START TRANSACTION", query("ROLLBACK")},
      {"COMMIT outside a transaction", query("COMMIT")},
      {"ROLLBACK outside a transaction", query("ROLLBACK")},
      {"ABORT outside a transaction", query("ABORT")},
      {"END outside a transaction", query("end;")},
      {"DISCARD ALL", query("DISCARD ALL")},
      {"RESET ALL", query("RESET ALL")},
      {"DEALLOCATE ALL", query("DEALLOCATE ALL")},
      {"UNLISTEN *", query("UNLISTEN *")},
      {"CLOSE ALL", query("CLOSE ALL")},
      {"a statement prepared before DISCARD ALL", prepare("d1", "SELECT 5")},
      {"DISCARD ALL with a prepared statement", query("DISCARD ALL")},
      {"the statement is gone after DISCARD ALL", run_prepared("d1")},
      {"a statement prepared before DEALLOCATE ALL", prepare("d2", "SELECT 6")},
      {"DEALLOCATE ALL with a prepared statement", query("DEALLOCATE ALL")},
      {"the statement is gone after DEALLOCATE ALL", run_prepared("d2")},
      {"extended BEGIN", extended("BEGIN")},
      {"extended first statement", extended("SELECT 2")},
      {"extended COMMIT", extended("COMMIT")},
      {"extended BEGIN, extended ROLLBACK", [] {
         auto b = extended("BEGIN READ ONLY");
         const auto r = extended("ROLLBACK");
         b.insert(b.end(), r.begin(), r.end());
         return b;
       }(), 2},
      {"prepared BEGIN", prepare("begin_stmt", "BEGIN")},
      {"prepared BEGIN run", run_prepared("begin_stmt")},
      {"a statement prepared after BEGIN", prepare("select_stmt", "SELECT 3")},
      {"prepared first statement", run_prepared("select_stmt")},
      {"prepared COMMIT", extended("COMMIT")},
      {"a ping", query("SELECT 1")},
      {"an extended ping", extended("select 1;")},
      {"the empty query", query("")},
      {"a comment-only ping", query("-- ping")},
      {"an extended empty query", extended("")},
      {"a bad BEGIN fails on the BEGIN", query("BEGIN ISOLATION LEVEL SOMETIMES")},
      {"BEGIN after a bad BEGIN", query("BEGIN")},
      {"a failing first statement", query("SELECT 1/0")},
      {"COMMIT of the failed transaction", query("COMMIT")},
  };
  wait_for_local_pings(proxied, admin);
  const long long writes_before = server_writes(admin);
  for (const Step& step : steps) {
    CAPTURE(step.what);
    const std::string want = raw_exchange(direct, step.bytes, step.readies);
    const std::string got = raw_exchange(proxied, step.bytes, step.readies);
    CHECK(got == want);
  }
  // To a server went: the first statement of each of the three transactions that ran one
  // (each with its BEGIN) and their COMMITs, the bad BEGIN, and the failing statement
  // (with its BEGIN) and its COMMIT. Everything else was answered without one.
  const long long writes = server_writes(admin) - writes_before;
  CHECK(writes == 9);
}

TEST_CASE("BEGIN ... COMMIT costs one round trip fewer with BEGIN deferred, and none when empty") {
  Cluster& cluster = Cluster::shared();
  for (const bool defer : {true, false}) {
    CAPTURE(defer);
    ProxyProcess proxy;
    start_proxy(proxy, cluster, round_trip_config(cluster, defer ? "" : "defer_begin = false\n"));
    Connection admin = connect_ok(app_conninfo(proxy, cluster, "pgsidecar"));
    Connection app = connect_ok(app_conninfo(proxy, cluster));
    REQUIRE(app.exec("SELECT 1").ok);  // the pool's first server is open
    long long before = server_writes(admin);
    for (const char* sql : {"BEGIN", "SELECT 1", "SELECT 2", "COMMIT"}) {
      const QueryResult r = app.exec(sql);
      REQUIRE_MESSAGE(r.ok, sql, ": ", r.describe());
    }
    CHECK(server_writes(admin) - before == (defer ? 3 : 4));
    before = server_writes(admin);
    REQUIRE(app.exec("BEGIN").ok);
    const QueryResult commit = app.exec("COMMIT");
    REQUIRE(commit.ok);
    CHECK(commit.command_tag == "COMMIT");
    CHECK(server_writes(admin) - before == (defer ? 0 : 2));
  }
}

TEST_CASE("settings and prepared statements re-created on another server travel with the client's message") {
  Cluster& cluster = Cluster::shared();
  ProxyConfig config = round_trip_config(cluster, "");
  config.size = 2;
  config.workers = 1;  // one pool: the two servers below are the only ones
  ProxyProcess proxy;
  start_proxy(proxy, cluster, config);
  Connection admin = connect_ok(app_conninfo(proxy, cluster, "pgsidecar"));
  Connection a = connect_ok(app_conninfo(proxy, cluster));
  Connection b = connect_ok(app_conninfo(proxy, cluster));
  REQUIRE(a.exec("SET application_name = 'round_trips_a'").ok);
  REQUIRE(a.prepare("s_pid", "SELECT pg_backend_pid()").ok);
  const QueryResult first = a.exec_prepared("s_pid", {});
  REQUIRE_MESSAGE(first.ok, first.describe());
  // b takes the pool's one open server (a's) into a transaction: a's next request lands
  // on a new one, which lacks a's application_name and statement.
  const QueryResult held = b.exec("BEGIN; SELECT pg_backend_pid()");
  REQUIRE_MESSAGE(held.ok, held.describe());
  REQUIRE(held.value() == first.value());
  const long long before = server_writes(admin);
  const QueryResult second = a.exec_prepared("s_pid", {});
  REQUIRE_MESSAGE(second.ok, second.describe());
  CHECK(second.value() != first.value());
  const QueryResult name = a.exec("SHOW application_name");
  REQUIRE(name.ok);
  CHECK(name.value() == "round_trips_a");
  // Two requests, two writes: the Parse and the SET went with the Bind.
  CHECK(server_writes(admin) - before == 2);
  REQUIRE(b.exec("COMMIT").ok);
}

TEST_CASE("a session SET of a value the pool's servers accepted before is answered without a server and travels with the next statement") {
  Cluster& cluster = Cluster::shared();
  ProxyConfig config = round_trip_config(cluster, "");
  config.workers = 1;  // one pool, so what one client's SET taught applies to the others
  ProxyProcess proxy;
  start_proxy(proxy, cluster, config);
  Connection admin = connect_ok(app_conninfo(proxy, cluster, "pgsidecar"));
  Connection a = connect_ok(app_conninfo(proxy, cluster));
  Connection b = connect_ok(app_conninfo(proxy, cluster));
  Connection direct = connect_ok(cluster.primary_conninfo());
  REQUIRE(b.exec("SELECT 1").ok);

  // A value never seen goes to a server: a bad one fails on its SET, as it does directly.
  long long before = server_writes(admin);
  const QueryResult bad = b.exec("SET statement_timeout = 'soon'");
  CHECK(bad.sqlstate == "22023");
  CHECK(server_writes(admin) - before == 1);
  CHECK(raw_exchange(b, query("SET statement_timeout = 'soon'")) ==
        raw_exchange(direct, query("SET statement_timeout = 'soon'")));

  before = server_writes(admin);
  REQUIRE(a.exec("SET statement_timeout = '7s'").ok);
  REQUIRE(a.exec("SET work_mem = '5MB'").ok);
  CHECK(server_writes(admin) - before == 2);

  // The same values from another client: answered here, byte for byte as PostgreSQL
  // answers them (simple and extended), no write to a server.
  before = server_writes(admin);
  CHECK(raw_exchange(b, query("SET statement_timeout = '7s'")) == raw_exchange(direct, query("SET statement_timeout = '7s'")));
  CHECK(raw_exchange(b, extended("SET work_mem = '5MB'")) == raw_exchange(direct, extended("SET work_mem = '5MB'")));
  CHECK(raw_exchange(b, query("SET statement_timeout TO DEFAULT")) ==
        raw_exchange(direct, query("SET statement_timeout TO DEFAULT")));
  CHECK(raw_exchange(b, query("RESET work_mem")) == raw_exchange(direct, query("RESET work_mem")));
  CHECK(raw_exchange(b, query("SET statement_timeout = '7s'")) == raw_exchange(direct, query("SET statement_timeout = '7s'")));
  CHECK(server_writes(admin) - before == 0);

  // They hold on the next statement, sent in the same write.
  before = server_writes(admin);
  const QueryResult shown = b.exec("SELECT current_setting('statement_timeout'), current_setting('work_mem')");
  REQUIRE_MESSAGE(shown.ok, shown.describe());
  CHECK(shown.rows.at(0).at(0) == "7s");
  CHECK(shown.rows.at(0).at(1) == direct.exec("SHOW work_mem").value());
  CHECK(server_writes(admin) - before == 1);
  // A client that did not set them never sees them.
  Connection c = connect_ok(app_conninfo(proxy, cluster));
  CHECK(c.exec("SHOW statement_timeout").value() == "0");

  // application_name is reported back (ParameterStatus) when it changed, as PostgreSQL does;
  // RESET ALL reports it back to its startup value and drops the other settings.
  before = server_writes(admin);
  for (const char* sql : {"SET application_name = 'rt'", "SET application_name = 'rt'", "RESET application_name",
                          "SET application_name = 'rt2'", "SET statement_timeout = '7s'", "RESET ALL"}) {
    CAPTURE(sql);
    CHECK(raw_exchange(b, query(sql)) == raw_exchange(direct, query(sql)));
  }
  CHECK(server_writes(admin) - before == 0);
  const QueryResult after_reset = b.exec("SELECT current_setting('application_name'), current_setting('statement_timeout')");
  REQUIRE_MESSAGE(after_reset.ok, after_reset.describe());
  CHECK(after_reset.rows.at(0).at(0) == "");
  CHECK(after_reset.rows.at(0).at(1) == "0");
  REQUIRE(b.exec("SET statement_timeout = '7s'").ok);
  REQUIRE(b.exec("DISCARD ALL").ok);
  CHECK(b.exec("SHOW statement_timeout").value() == "0");

  // Other reported settings (the server reports its own spelling of the value back) and
  // roles still go to a server, every time.
  for (const char* sql : {"SET TimeZone = 'UTC'", "SET TimeZone = 'UTC'", "SET ROLE NONE", "SET ROLE NONE"}) {
    before = server_writes(admin);
    REQUIRE(b.exec(sql).ok);
    CHECK_MESSAGE(server_writes(admin) - before == 1, sql);
  }
}

TEST_CASE("a transaction that failed before reaching a server ends with a ROLLBACK prepared by name, as on PostgreSQL") {
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, round_trip_config(cluster, "session_state = \"refuse\"\n"));
  Connection direct = connect_ok(cluster.primary_conninfo());
  Connection proxied = connect_ok(app_conninfo(proxy, cluster));
  // The held BEGIN's first statement is refused here (0A000), directly one fails on the
  // server: both transactions are failed.
  raw_exchange(direct, query("BEGIN"));
  raw_exchange(proxied, query("BEGIN"));
  CHECK(raw_exchange(direct, query("SELECT 1/0")).find("22012") != std::string::npos);
  CHECK(raw_exchange(proxied, query("CREATE TEMP TABLE t (x int)")).find("0A000") != std::string::npos);
  struct Step {
    std::string what;
    std::vector<std::byte> bytes;
  };
  const std::vector<Step> steps = {
      {"a SELECT prepared in the failed transaction", prepare("s1", "SELECT 1")},
      {"ROLLBACK prepared in the failed transaction", prepare("r1", "ROLLBACK")},
      {"COMMIT prepared in the failed transaction", prepare("c1", "COMMIT")},
      {"the prepared ROLLBACK run", run_prepared("r1")},
      {"the prepared COMMIT run outside a transaction", run_prepared("c1")},
  };
  for (const Step& step : steps) {
    CAPTURE(step.what);
    CHECK(raw_exchange(proxied, step.bytes) == raw_exchange(direct, step.bytes));
  }
  CHECK(proxied.exec("SELECT 2").value() == "2");
}

TEST_CASE("with BEGIN deferred, now() is the time of the transaction's first statement") {
  Cluster& cluster = Cluster::shared();
  for (const bool defer : {true, false}) {
    CAPTURE(defer);
    ProxyProcess proxy;
    start_proxy(proxy, cluster, round_trip_config(cluster, defer ? "" : "defer_begin = false\n"));
    Connection app = connect_ok(app_conninfo(proxy, cluster));
    REQUIRE(app.exec("BEGIN").ok);
    std::this_thread::sleep_for(300ms);
    const QueryResult r = app.exec("SELECT statement_timestamp() - now() < interval '250 ms'");
    REQUIRE_MESSAGE(r.ok, r.describe());
    CHECK(r.value() == (defer ? "t" : "f"));
    REQUIRE(app.exec("COMMIT").ok);
  }
}

TEST_CASE("a deferred BEGIN's modes and its first statement route the transaction") {
  Cluster& cluster = Cluster::shared();
  ProxyConfig config = round_trip_config(cluster, "");
  config.extra += "[[databases]]\nname = \"reads\"\nprimary = " + toml_string(cluster.primary_url()) +
                  "\nreplicas = [" + toml_string(cluster.replica_url()) + "]\nreads = \"replicas\"\n";
  ProxyProcess proxy;
  start_proxy(proxy, cluster, config);
  Connection app = connect_ok(app_conninfo(proxy, cluster, "reads"));
  auto in_recovery = [&app](std::vector<std::string> statements) {
    std::string last;
    for (const auto& sql : statements) {
      const QueryResult r = app.exec(sql);
      REQUIRE_MESSAGE(r.ok, sql, ": ", r.describe());
      if (!r.rows.empty()) last = r.value();
    }
    return last;
  };
  // Reads reach the replica once the health monitor has seen it up.
  const auto deadline = Clock::now() + 10s;
  while (in_recovery({"SELECT pg_is_in_recovery()"}) != "t" && Clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  REQUIRE(in_recovery({"SELECT pg_is_in_recovery()"}) == "t");
  CHECK(in_recovery({"BEGIN READ ONLY", "SELECT pg_is_in_recovery()", "COMMIT"}) == "t");
  CHECK(in_recovery({"START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", "SELECT pg_is_in_recovery()",
                     "COMMIT"}) == "t");
  CHECK(in_recovery({"BEGIN", "SET TRANSACTION READ ONLY", "SELECT pg_is_in_recovery()", "COMMIT"}) == "t");
  // A plain BEGIN may write later, whatever its first statement.
  CHECK(in_recovery({"BEGIN", "SELECT pg_is_in_recovery()", "COMMIT"}) == "f");
  CHECK(in_recovery({"BEGIN READ WRITE", "SELECT pg_is_in_recovery()", "COMMIT"}) == "f");
  // A read-only transaction refuses writes, as PostgreSQL does.
  REQUIRE(app.exec("BEGIN READ ONLY").ok);
  const QueryResult write = app.exec("CREATE TEMP TABLE t_never (a int)");
  CHECK(write.sqlstate == "25006");
  REQUIRE(app.exec("ROLLBACK").ok);
}

TEST_CASE("pings are answered without a server while it is up, and fail with the route's error while it is down; so does a deferred BEGIN's first statement") {
  Cluster& cluster = Cluster::shared();
  FaultRelay relay("127.0.0.1", cluster.primary_port());
  ProxyConfig config = round_trip_config(cluster);
  config.primary_port = relay.port();
  config.extra += "[health]\ninterval = \"100ms\"\ntimeout = \"300ms\"\nfailures_before_down = 1\n\n";
  config.extra += "[[databases]]\nname = \"pings\"\nprimary = " + toml_string(cluster.url(relay.port())) +
                  "\non_primary_down = \"fail\"\n";
  ProxyProcess proxy;
  start_proxy(proxy, cluster, config);
  Connection app = connect_ok(app_conninfo(proxy, cluster, "pings"));
  REQUIRE(app.exec("SELECT 2").ok);

  // Up: a ping crosses no link (the health monitor's probes do: compare the pool's writes).
  Connection admin = connect_ok(app_conninfo(proxy, cluster, "pgsidecar"));
  wait_for_local_pings(app, admin, "pings");
  const long long before = server_writes(admin, "pings");
  for (int i = 0; i < 5; ++i) {
    const QueryResult ping = app.exec("SELECT 1");
    REQUIRE_MESSAGE(ping.ok, ping.describe());
    CHECK(ping.value() == "1");
    CHECK(ping.columns == std::vector<std::string>{"?column?"});
    CHECK(app.exec("").ok);
  }
  CHECK(server_writes(admin, "pings") == before);

  // Down: once the health monitor sees it, a ping gets what any read gets.
  relay.reset();
  std::string ping_state;
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    const QueryResult ping = app.exec("SELECT 1", 5s);
    if (!ping.ok) {
      ping_state = ping.sqlstate;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  const QueryResult read = app.exec("SELECT 2", 5s);
  CHECK(!read.ok);
  CHECK(!ping_state.empty());
  CHECK(ping_state == read.sqlstate);
  const QueryResult empty = app.exec("", 5s);
  CHECK(!empty.ok);
  CHECK(empty.sqlstate == read.sqlstate);

  // A BEGIN is still answered; its first statement gets the route's error and the
  // transaction is failed, as when a first statement fails on the server.
  REQUIRE(app.exec("BEGIN", 5s).ok);
  const QueryResult first = app.exec("SELECT 2", 5s);
  CHECK(first.sqlstate == read.sqlstate);
  CHECK(PQtransactionStatus(app.raw()) == PQTRANS_INERROR);
  CHECK(app.exec("SELECT 3", 5s).sqlstate == "25P02");
  const QueryResult rollback = app.exec("COMMIT", 5s);
  CHECK(rollback.ok);
  CHECK(rollback.command_tag == "ROLLBACK");
  CHECK(PQtransactionStatus(app.raw()) == PQTRANS_IDLE);

  relay.pass();
}

}  // namespace pgsidecar::testing
