// Ordinary client traffic through the pool, with psql and libpq as the clients: simple
// and multi-statement queries, NULLs, UTF-8, notices, errors, \copy in and out, and
// transactions. Each test runs once per pool mode (transaction and session).
#include <doctest/doctest.h>

#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/proxy_fixture.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// The server's answer to one PQexec: the status and the first row of the result
// PQexec returned (which, for several statements, is the last one's, or the error).
struct ExecOutcome {
  bool finished = false;
  ExecStatusType status = PGRES_FATAL_ERROR;
  std::string sqlstate;
  std::vector<std::string> columns;
  std::vector<std::string> first_row;
  int rows = 0;
};

// PQexec (blocking, as most applications call it) bounded by a watchdog: when no answer
// comes in time the socket is shut down, which makes PQexec return.
ExecOutcome pqexec_bounded(Connection& c, const std::string& sql, std::chrono::milliseconds timeout = 10s) {
  PGconn* conn = c.raw();
  PQsetnonblocking(conn, 0);
  auto done = std::async(std::launch::async, [conn, sql] {
    ExecOutcome o;
    PGresult* res = PQexec(conn, sql.c_str());
    o.status = PQresultStatus(res);
    if (const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE)) o.sqlstate = s;
    o.rows = PQntuples(res);
    for (int i = 0; i < PQnfields(res); ++i) {
      o.columns.emplace_back(PQfname(res, i));
      if (o.rows > 0) o.first_row.emplace_back(PQgetisnull(res, 0, i) ? "<null>" : PQgetvalue(res, 0, i));
    }
    PQclear(res);
    o.finished = true;
    return o;
  });
  if (done.wait_for(timeout) != std::future_status::ready) {
    ::shutdown(PQsocket(conn), SHUT_RDWR);
    done.wait();
    return ExecOutcome{};
  }
  ExecOutcome o = done.get();
  PQsetnonblocking(conn, 1);
  return o;
}

std::string md5_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read ", path);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_md5(), nullptr);
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    EVP_DigestUpdate(ctx, buf, static_cast<std::size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  char two[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(two, sizeof two, "%02x", digest[i]);
    hex += two;
  }
  return hex;
}

// A table on the primary for one test, dropped when the test ends however it ends.
class ScratchTable {
 public:
  ScratchTable(const Cluster& cluster, std::string prefix, const std::string& columns)
      : cluster_(cluster), name_(std::move(prefix) + "_" + random_suffix()) {
    const QueryResult r = exec_once(cluster_.primary_conninfo(), "CREATE TABLE " + name_ + " (" + columns + ")");
    REQUIRE_MESSAGE(r.ok, r.describe());
  }
  ~ScratchTable() { exec_once(cluster_.primary_conninfo(), "DROP TABLE IF EXISTS " + name_, 10s); }
  ScratchTable(const ScratchTable&) = delete;
  ScratchTable& operator=(const ScratchTable&) = delete;
  const std::string& name() const { return name_; }

 private:
  const Cluster& cluster_;
  std::string name_;
};

const std::string kUnicode = "žluťoučký kůň 🐘";

}  // namespace

TEST_CASE("psql runs a single statement and a multi-statement command through the proxy") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config(mode));

  const ChildResult one = psql_via_proxy(cluster, proxy, {"-c", "select 1"});
  CHECK_MESSAGE(one.exit_code == 0, one.describe());
  CHECK(one.out == "1\n");

  // psql 15 prints the result of every statement of a multi-statement -c string.
  const ChildResult two = psql_via_proxy(cluster, proxy, {"-c", "select 1; select 2"});
  CHECK_MESSAGE(two.exit_code == 0, two.describe());
  CHECK(two.out == "1\n2\n");

  // Several -c options run one after another in the same session.
  const ChildResult three = psql_via_proxy(cluster, proxy, {"-c", "select 'a'", "-c", "select 'b' || 'c'"});
  CHECK_MESSAGE(three.exit_code == 0, three.describe());
  CHECK(three.out == "a\nbc\n");
}

TEST_CASE("PQexec of a multi-statement string returns the last statement's result") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config(mode));
  Connection c = connect_ok(app_conninfo(proxy, cluster));

  const ExecOutcome last =
      pqexec_bounded(c, "SELECT 1 AS first; SELECT 'two' AS second; SELECT 3 AS third, 4 AS fourth");
  REQUIRE(last.finished);
  CHECK(last.status == PGRES_TUPLES_OK);
  CHECK(last.columns == std::vector<std::string>{"third", "fourth"});
  CHECK(last.rows == 1);
  CHECK(last.first_row == std::vector<std::string>{"3", "4"});

  // A failing statement in the middle ends the string: PQexec returns its error.
  const ExecOutcome failed = pqexec_bounded(c, "SELECT 1; SELECT 1/0; SELECT 3");
  REQUIRE(failed.finished);
  CHECK(failed.status == PGRES_FATAL_ERROR);
  CHECK(failed.sqlstate == "22012");

  // The connection is usable after the error.
  const ExecOutcome after = pqexec_bounded(c, "SELECT 42");
  REQUIRE(after.finished);
  CHECK(after.first_row == std::vector<std::string>{"42"});
}

TEST_CASE("NULLs come back as NULLs in the simple and the extended protocol") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config(mode));
  Connection c = connect_ok(app_conninfo(proxy, cluster));

  const QueryResult simple = c.exec("SELECT NULL::int AS a, '' AS b, NULL::text AS c, 'x' AS d");
  REQUIRE_MESSAGE(simple.ok, simple.describe());
  REQUIRE(simple.rows.size() == 1);
  CHECK(simple.is_null(0, 0));
  CHECK_FALSE(simple.is_null(0, 1));  // the empty string is not NULL
  CHECK(simple.value(0, 1).empty());
  CHECK(simple.is_null(0, 2));
  CHECK(simple.value(0, 3) == "x");

  const QueryResult extended = c.exec_params("SELECT $1::text IS NULL, $1::text, $2::int + 1", {"", "41"});
  REQUIRE_MESSAGE(extended.ok, extended.describe());
  CHECK(extended.value(0, 0) == "f");
  CHECK_FALSE(extended.is_null(0, 1));
  CHECK(extended.value(0, 2) == "42");

  // A NULL parameter goes through as NULL (PQexecParams with a null pointer).
  const char* values[] = {nullptr};
  PQsetnonblocking(c.raw(), 0);
  PGresult* res = PQexecParams(c.raw(), "SELECT $1::int IS NULL, coalesce($1::int, -1)", 1, nullptr, values,
                               nullptr, nullptr, 0);
  REQUIRE(PQresultStatus(res) == PGRES_TUPLES_OK);
  CHECK(std::string(PQgetvalue(res, 0, 0)) == "t");
  CHECK(std::string(PQgetvalue(res, 0, 1)) == "-1");
  PQclear(res);
  PQsetnonblocking(c.raw(), 1);

  const ChildResult psql = psql_via_proxy(cluster, proxy, {"-P", "null=<NULL>", "-c", "SELECT NULL, 1, NULL::text"});
  CHECK_MESSAGE(psql.exit_code == 0, psql.describe());
  CHECK(psql.out == "<NULL>|1|<NULL>\n");
}

TEST_CASE("UTF-8 text round-trips unchanged through the proxy") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config(mode));
  ScratchTable table(cluster, "itest_unicode", "id int PRIMARY KEY, t text");
  Connection c = connect_ok(app_conninfo(proxy, cluster));
  CHECK(c.parameter("client_encoding") == "UTF8");
  CHECK(c.parameter("server_encoding") == "UTF8");

  const QueryResult literal = c.exec("SELECT '" + kUnicode + "', char_length('" + kUnicode + "'), octet_length('" +
                                     kUnicode + "')");
  REQUIRE_MESSAGE(literal.ok, literal.describe());
  CHECK(literal.value(0, 0) == kUnicode);
  CHECK(literal.value(0, 1) == "15");
  CHECK(literal.value(0, 2) == std::to_string(kUnicode.size()));

  const QueryResult insert = c.exec_params("INSERT INTO " + table.name() + " VALUES (1, $1)", {kUnicode});
  REQUIRE_MESSAGE(insert.ok, insert.describe());
  const QueryResult back = c.exec_params("SELECT t, t = $1 FROM " + table.name() + " WHERE id = 1", {kUnicode});
  REQUIRE_MESSAGE(back.ok, back.describe());
  CHECK(back.value(0, 0) == kUnicode);
  CHECK(back.value(0, 1) == "t");
  // The server stored what we sent, as read directly from the primary.
  CHECK(exec_once(cluster.primary_conninfo(), "SELECT t FROM " + table.name()).value() == kUnicode);

  const ChildResult psql = psql_via_proxy(cluster, proxy, {"-c", "SELECT t FROM " + table.name()});
  CHECK_MESSAGE(psql.exit_code == 0, psql.describe());
  CHECK(psql.out == kUnicode + "\n");
}

TEST_CASE("a NOTICE raised in a DO block reaches the client") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config(mode));
  const std::string token = random_suffix();
  const std::string sql = "DO $$ BEGIN RAISE NOTICE 'hello from plpgsql %', '" + token + "'; END $$";

  Connection c = connect_ok(app_conninfo(proxy, cluster));
  const QueryResult r = c.exec(sql);
  REQUIRE_MESSAGE(r.ok, r.describe());
  CHECK(r.command_tag == "DO");
  REQUIRE(c.notices().size() == 1);
  CHECK(c.notices()[0] == "NOTICE:  hello from plpgsql " + token);
  // The connection carries on; a statement without notices adds none.
  CHECK(c.exec("SELECT 1").value() == "1");
  CHECK(c.notices().size() == 1);

  const ChildResult psql = psql_via_proxy(cluster, proxy, {"-c", sql});
  CHECK_MESSAGE(psql.exit_code == 0, psql.describe());
  CHECK(psql.err.find("NOTICE:  hello from plpgsql " + token) != std::string::npos);
}

TEST_CASE("an error leaves the connection usable") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config(mode));
  Connection c = connect_ok(app_conninfo(proxy, cluster));

  const QueryResult div = c.exec("SELECT 1/0");
  CHECK(div.sqlstate == "22012");
  CHECK(div.message == "division by zero");
  CHECK(c.exec("SELECT 1").value() == "1");

  const QueryResult missing = c.exec_params("SELECT * FROM no_such_table_here WHERE x = $1", {"1"});
  CHECK(missing.sqlstate == "42P01");
  CHECK(c.exec_params("SELECT $1::int * 2", {"21"}).value() == "42");

  // Inside a transaction the error aborts it until ROLLBACK, as on the server itself.
  REQUIRE(c.exec("BEGIN").ok);
  CHECK(c.exec("SELECT 1/0").sqlstate == "22012");
  CHECK(c.exec("SELECT 1").sqlstate == "25P02");
  CHECK(c.exec("ROLLBACK").command_tag == "ROLLBACK");
  CHECK(c.exec("SELECT 2").value() == "2");

  const ChildResult psql = psql_via_proxy(cluster, proxy, {"-c", "SELECT 1/0"});
  CHECK(psql.exit_code != 0);
  CHECK_MESSAGE(psql.err.find("division by zero") != std::string::npos, psql.describe());
}

TEST_CASE("\\copy moves 100,000 rows in and out of a table unchanged") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config(mode));
  ScratchTable table(cluster, "itest_copy", "id int PRIMARY KEY, label text, note text");

  constexpr long long kRows = 100000;
  long long nulls = 0;
  const std::string in_path = proxy.dir() + "/copy_in.tsv";
  const std::string out_path = proxy.dir() + "/copy_out.tsv";
  {
    std::ofstream out(in_path, std::ios::binary);
    for (long long i = 1; i <= kRows; ++i) {
      out << i << "\trow " << i << " " << kUnicode << "\t";
      if (i % 7 == 0) {
        out << "\\N";
        ++nulls;
      } else {
        out << "tab\\there " << i * 31 % 1000;
      }
      out << "\n";
    }
    REQUIRE(out.flush());
  }

  const ChildResult in = psql_via_proxy(cluster, proxy, {"-c", "\\copy " + table.name() + " FROM '" + in_path + "'"},
                                        120s);
  REQUIRE_MESSAGE(in.exit_code == 0, in.describe());

  const QueryResult stats = exec_once(app_conninfo(proxy, cluster),
                                      "SELECT count(*), sum(id), count(*) FILTER (WHERE note IS NULL), "
                                      "count(*) FILTER (WHERE label LIKE '%" + kUnicode + "') FROM " + table.name());
  REQUIRE_MESSAGE(stats.ok, stats.describe());
  CHECK(stats.value(0, 0) == std::to_string(kRows));
  CHECK(stats.value(0, 1) == std::to_string(kRows * (kRows + 1) / 2));
  CHECK(stats.value(0, 2) == std::to_string(nulls));
  CHECK(stats.value(0, 3) == std::to_string(kRows));

  const ChildResult out = psql_via_proxy(
      cluster, proxy, {"-c", "\\copy (SELECT * FROM " + table.name() + " ORDER BY id) TO '" + out_path + "'"}, 120s);
  REQUIRE_MESSAGE(out.exit_code == 0, out.describe());
  CHECK(md5_of_file(out_path) == md5_of_file(in_path));

  // The proxy still serves the next statement on a fresh psql after both directions.
  const ChildResult after = psql_via_proxy(cluster, proxy, {"-c", "SELECT count(*) FROM " + table.name()});
  CHECK_MESSAGE(after.out == std::to_string(kRows) + "\n", after.describe());
}

TEST_CASE("BEGIN/COMMIT makes rows visible to others and ROLLBACK discards them") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  start_proxy(proxy, cluster, pool_config(mode));
  ScratchTable table(cluster, "itest_tx", "v text");
  Connection writer = connect_ok(app_conninfo(proxy, cluster));
  Connection reader = connect_ok(app_conninfo(proxy, cluster));
  const std::string count = "SELECT count(*) FROM " + table.name();

  REQUIRE(writer.exec("BEGIN").ok);
  REQUIRE(writer.exec("INSERT INTO " + table.name() + " VALUES ('rolled back')").ok);
  CHECK(writer.exec(count).value() == "1");  // the writer sees its own row
  CHECK(reader.exec(count).value() == "0");  // nobody else does before commit
  CHECK(writer.exec("ROLLBACK").command_tag == "ROLLBACK");
  CHECK(writer.exec(count).value() == "0");
  CHECK(reader.exec(count).value() == "0");

  REQUIRE(writer.exec("BEGIN").ok);
  REQUIRE(writer.exec("INSERT INTO " + table.name() + " VALUES ('committed')").ok);
  CHECK(reader.exec(count).value() == "0");
  CHECK(writer.exec("COMMIT").command_tag == "COMMIT");
  CHECK(reader.exec(count).value() == "1");
  CHECK(exec_once(cluster.primary_conninfo(), "SELECT v FROM " + table.name()).value() == "committed");

  // A failed transaction's COMMIT is a rollback.
  REQUIRE(writer.exec("BEGIN").ok);
  REQUIRE(writer.exec("INSERT INTO " + table.name() + " VALUES ('lost')").ok);
  CHECK(writer.exec("SELECT 1/0").sqlstate == "22012");
  CHECK(writer.exec("COMMIT").command_tag == "ROLLBACK");
  CHECK(reader.exec(count).value() == "1");

  // psql: one session, several -c commands.
  const ChildResult psql = psql_via_proxy(
      cluster, proxy,
      {"-c", "BEGIN", "-c", "INSERT INTO " + table.name() + " VALUES ('psql')", "-c", "ROLLBACK", "-c", count});
  CHECK_MESSAGE(psql.exit_code == 0, psql.describe());
  CHECK(psql.out == "1\n");
}

TEST_CASE("a pool smaller than the number of workers serves clients on every worker") {
  const std::string mode = each_pool_mode();
  Cluster& cluster = Cluster::shared();
  ProxyProcess proxy;
  // One server for two event loops: whichever loop accepts a client must be able to
  // use it once it is free.
  ProxyConfig config = pool_config(mode, 1);
  config.workers = 2;
  config.pool_extra = "query_wait_timeout = \"2s\"\n";
  start_proxy(proxy, cluster, config);

  // Sequential clients: the server is always free when the next one asks. The kernel
  // spreads the connections over both workers' listening sockets.
  for (int i = 0; i < 12; ++i) {
    CAPTURE(i);
    const auto started = Clock::now();
    const QueryResult r = exec_once(app_conninfo(proxy, cluster), "SELECT " + std::to_string(i), 10s);
    CHECK_MESSAGE(r.ok, r.describe());
    if (r.ok) CHECK(r.value() == std::to_string(i));
    CHECK(seconds_since(started) < 1.5);
  }
}
