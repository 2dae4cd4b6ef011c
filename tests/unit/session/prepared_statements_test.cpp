// A client's named statements (ClientStatements), what a server has prepared
// (ServerStatements: by text and types, not by fingerprint alone), statement
// fingerprints, and the name a DEALLOCATE query frees.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/wire.h"
#include "proxy/session/client_statements.h"

using namespace pgsidecar::proxy;
namespace protocol = pgsidecar::protocol;

namespace {

constexpr int32_t kInt4 = 23;
constexpr int32_t kText = 25;
constexpr int32_t kInt8 = 20;

// Parse's parameter type oids as on the wire: Int32 each, big-endian.
std::vector<std::byte> oids(std::initializer_list<int32_t> types) {
  std::vector<std::byte> raw;
  for (int32_t t : types) protocol::put_i32(raw, t);
  return raw;
}

int16_t count(const std::vector<std::byte>& raw) { return static_cast<int16_t>(raw.size() / 4); }

ClientStatements::AddResult add(ClientStatements& s, std::string_view name, std::string_view query,
                                const std::vector<std::byte>& raw = {}) {
  return s.add(name, query, raw, count(raw));
}

// The decoded parameter types of the statement named `name`, which must exist.
std::vector<int32_t> param_types(const ClientStatements& s, std::string_view name) {
  const PreparedStatement* p = s.find(name);
  REQUIRE(p != nullptr);
  return p->statement->param_types;
}

}  // namespace

// ---- ClientStatements ----------------------------------------------------------------

TEST_CASE("a new ClientStatements holds nothing") {
  ClientStatements s(10);
  CHECK(s.size() == 0);
  CHECK(s.limit() == 10);
  CHECK(s.find("s1") == nullptr);
  s.erase("s1");  // nothing to erase is fine
  s.clear();
  CHECK(s.size() == 0);
}

TEST_CASE("ClientStatements keeps a Parse's text, parameter types and fingerprint by name") {
  ClientStatements s(10);
  const std::vector<std::byte> raw = oids({kInt4, kText});
  CHECK(add(s, "s1", "SELECT $1::int4, $2", raw) == ClientStatements::AddResult::Added);
  CHECK(s.size() == 1);
  const PreparedStatement* p = s.find("s1");
  REQUIRE(p != nullptr);
  CHECK(p->statement->query == "SELECT $1::int4, $2");
  CHECK(p->statement->param_types == std::vector<int32_t>{kInt4, kText});
  CHECK(p->statement->fingerprint == statement_fingerprint("SELECT $1::int4, $2", raw));
  // Names are exact: the protocol does not fold them.
  CHECK(s.find("S1") == nullptr);
  CHECK(s.find("s") == nullptr);
}

TEST_CASE("ClientStatements decodes the parameter types the count and the bytes both cover") {
  ClientStatements s(10);
  const std::vector<std::byte> raw = oids({kInt4, kText, -1});
  SUBCASE("count below the bytes") {
    REQUIRE(s.add("s", "q", raw, 2) == ClientStatements::AddResult::Added);
    CHECK(param_types(s, "s") == std::vector<int32_t>{kInt4, kText});
  }
  SUBCASE("count above the bytes") {
    REQUIRE(s.add("s", "q", std::span(raw).first(6), 3) == ClientStatements::AddResult::Added);
    CHECK(param_types(s, "s") == std::vector<int32_t>{kInt4});
  }
  SUBCASE("a negative oid stays negative") {
    REQUIRE(s.add("s", "q", raw, 3) == ClientStatements::AddResult::Added);
    CHECK(param_types(s, "s") == std::vector<int32_t>{kInt4, kText, -1});
  }
  SUBCASE("no parameters") {
    REQUIRE(s.add("s", "q", {}, 0) == ClientStatements::AddResult::Added);
    CHECK(param_types(s, "s").empty());
  }
}

TEST_CASE("a Parse under a known name replaces the statement") {
  ClientStatements s(10);
  REQUIRE(add(s, "s1", "SELECT 1") == ClientStatements::AddResult::Added);
  const std::vector<std::byte> raw = oids({kInt8});
  CHECK(add(s, "s1", "SELECT $1", raw) == ClientStatements::AddResult::Replaced);
  CHECK(s.size() == 1);
  REQUIRE(s.find("s1") != nullptr);
  CHECK(s.find("s1")->statement->query == "SELECT $1");
  CHECK(param_types(s, "s1") == std::vector<int32_t>{kInt8});
  CHECK(s.find("s1")->statement->fingerprint == statement_fingerprint("SELECT $1", raw));
}

TEST_CASE("ClientStatements refuses a new name at its limit but still replaces a known one") {
  ClientStatements s(2);
  CHECK(add(s, "a", "SELECT 1") == ClientStatements::AddResult::Added);
  CHECK(add(s, "b", "SELECT 2") == ClientStatements::AddResult::Added);
  CHECK(add(s, "c", "SELECT 3") == ClientStatements::AddResult::LimitReached);
  CHECK(s.size() == 2);
  CHECK(s.find("c") == nullptr);
  CHECK(add(s, "b", "SELECT 22") == ClientStatements::AddResult::Replaced);
  REQUIRE(s.find("b") != nullptr);
  CHECK(s.find("b")->statement->query == "SELECT 22");

  // Erasing one makes room for one.
  s.erase("a");
  CHECK(s.size() == 1);
  CHECK(s.find("a") == nullptr);
  CHECK(add(s, "c", "SELECT 3") == ClientStatements::AddResult::Added);
  CHECK(add(s, "d", "SELECT 4") == ClientStatements::AddResult::LimitReached);

  // Clearing makes room for all.
  s.clear();
  CHECK(s.size() == 0);
  CHECK(s.find("b") == nullptr);
  CHECK(add(s, "d", "SELECT 4") == ClientStatements::AddResult::Added);
  CHECK(add(s, "e", "SELECT 5") == ClientStatements::AddResult::Added);
  CHECK(s.size() == 2);
}

TEST_CASE("a ClientStatements limit of 0 refuses every statement") {
  ClientStatements s(0);
  CHECK(add(s, "a", "SELECT 1") == ClientStatements::AddResult::LimitReached);
  CHECK(s.size() == 0);
  CHECK(s.find("a") == nullptr);
}

TEST_CASE("ClientStatements counts name and text bytes and refuses a Parse past its byte limit") {
  ClientStatements s(100, 40);
  CHECK(add(s, "a", "SELECT 1234567890") == ClientStatements::AddResult::Added);  // 1 + 17
  CHECK(s.bytes() == 18);
  CHECK(s.bytes_with("b", "SELECT 12345678901234") == 40);
  CHECK(add(s, "b", "SELECT 123456789012345") == ClientStatements::AddResult::BytesLimitReached);
  CHECK(s.find("b") == nullptr);
  CHECK(s.bytes() == 18);
  CHECK(add(s, "b", "SELECT 12345678901234") == ClientStatements::AddResult::Added);  // exactly 40
  // Replacing counts the new text instead of the old one.
  CHECK(add(s, "a", "SELECT 1") == ClientStatements::AddResult::Replaced);
  CHECK(s.bytes() == 31);
  s.erase("b");
  CHECK(s.bytes() == 9);
  s.clear();
  CHECK(s.bytes() == 0);
}

TEST_CASE("a statement keeps the route it was classified with") {
  ClientStatements s(10);
  CHECK(s.add("a", "WITH x AS (SELECT 1) SELECT * FROM x", {}, 0, false, TextRoute::Read) ==
        ClientStatements::AddResult::Added);
  CHECK(s.find("a")->route == TextRoute::Read);
  add(s, "b", "SELECT 1");
  PreparedStatement* b = s.find("b");
  REQUIRE(b != nullptr);
  CHECK(b->route == TextRoute::Unknown);
  b->route = TextRoute::Write;
  CHECK(std::as_const(s).find("b")->route == TextRoute::Write);
}

// ---- ServerStatements ----------------------------------------------------------------

TEST_CASE("ServerStatements names the least recently used statement; a use or a Parse renews one") {
  ServerStatements s;
  CHECK(s.least_recently_used().empty());
  const StatementRef one = make_statement("SELECT 1", {}, 0);
  const StatementRef two = make_statement("SELECT 2", {}, 0);
  s.set("s1", one);
  s.set("s2", two);
  s.set_unknown("s3");
  CHECK(s.least_recently_used() == "s1");
  CHECK(s.use("s1", *one));
  CHECK(s.least_recently_used() == "s2");
  CHECK_FALSE(s.use("s2", *one));  // another statement: not a use
  CHECK_FALSE(s.use("s3", *one));  // unknown: never anyone's
  CHECK(s.least_recently_used() == "s2");
  s.set("s2", two);
  CHECK(s.least_recently_used() == "s3");
  s.erase("s3");
  CHECK(s.least_recently_used() == "s1");
}

TEST_CASE("ServerStatements maps a name to the statement prepared under it, nullptr when none") {
  ServerStatements s;
  CHECK(s.find("s1") == nullptr);
  CHECK(s.size() == 0);
  const StatementRef one = make_statement("SELECT 1", {}, 0);
  const StatementRef two = make_statement("SELECT 2", {}, 0);
  s.set("s1", one);
  s.set("s2", two);
  CHECK(s.find("s1") == one.get());
  CHECK(s.holds("s1", *one));
  CHECK(s.holds("s2", *two));
  CHECK_FALSE(s.holds("s1", *two));
  CHECK(s.find("S1") == nullptr);
  CHECK(s.size() == 2);
  s.set("s1", two);  // prepared again with other text
  CHECK(s.holds("s1", *two));
  CHECK(s.size() == 2);
  s.erase("s1");
  s.erase("unknown");
  CHECK(s.find("s1") == nullptr);
  CHECK_FALSE(s.holds("s1", *two));
  CHECK(s.size() == 1);
  s.clear();
  CHECK(s.find("s2") == nullptr);
  CHECK(s.size() == 0);
}

TEST_CASE("a server holds a client's statement only with the same text and parameter types") {
  ServerStatements s;
  s.set("s", make_statement("SELECT $1", oids({kInt4}), 1));
  // Another Parse of the same statement (another client's copy) matches.
  CHECK(s.holds("s", *make_statement("SELECT $1", oids({kInt4}), 1)));
  CHECK_FALSE(s.holds("s", *make_statement("SELECT $1", oids({kInt8}), 1)));
  CHECK_FALSE(s.holds("s", *make_statement("SELECT $1 ", oids({kInt4}), 1)));
}

TEST_CASE("equal fingerprints are not enough: the text and types decide") {
  ServerStatements s;
  const StatementRef theirs = make_statement("SELECT 'A secret'", {}, 0);
  s.set("s", theirs);
  // A statement whose fingerprint collides with theirs (made by hand: a 64-bit collision).
  StatementText mine = *make_statement("SELECT 'B row'", {}, 0);
  mine.fingerprint = theirs->fingerprint;
  CHECK_FALSE(s.holds("s", mine));
  StatementText typed = *theirs;
  typed.param_types = {kInt4};
  CHECK_FALSE(s.holds("s", typed));
  CHECK(s.holds("s", StatementText(*theirs)));
}

TEST_CASE("make_statement decodes the parameter types the count and the bytes both cover") {
  const std::vector<std::byte> raw = oids({kInt4, kText});
  CHECK(make_statement("q", raw, 2)->param_types == std::vector<int32_t>{kInt4, kText});
  CHECK(make_statement("q", raw, 1)->param_types == std::vector<int32_t>{kInt4});
  CHECK(make_statement("q", std::span(raw).first(6), 2)->param_types == std::vector<int32_t>{kInt4});
  CHECK(make_statement("q", raw, -1)->param_types.empty());
  CHECK(make_statement("q", raw, 2)->fingerprint == statement_fingerprint("q", raw));
}

// ---- statement_fingerprint -----------------------------------------------------------

TEST_CASE("the same text and types give the same fingerprint") {
  const std::vector<std::byte> a = oids({kInt4, kText});
  const std::vector<std::byte> b = oids({kInt4, kText});
  CHECK(statement_fingerprint("SELECT $1, $2", a) == statement_fingerprint("SELECT $1, $2", b));
  CHECK(statement_fingerprint("SELECT 1", {}) == statement_fingerprint("SELECT 1", {}));
}

TEST_CASE("other types or other text give another fingerprint") {
  const uint64_t base = statement_fingerprint("SELECT $1", oids({kInt4}));
  CHECK(statement_fingerprint("SELECT $1", oids({kInt8})) != base);
  CHECK(statement_fingerprint("SELECT $1", oids({kInt4, kInt4})) != base);
  CHECK(statement_fingerprint("SELECT $1", {}) != base);  // types left to the server
  CHECK(statement_fingerprint("SELECT $1", oids({0})) != statement_fingerprint("SELECT $1", {}));
  CHECK(statement_fingerprint("select $1", oids({kInt4})) != base);
  CHECK(statement_fingerprint("SELECT $1 ", oids({kInt4})) != base);
}

TEST_CASE("the fingerprint keeps text and types apart") {
  const std::vector<std::byte> b = {std::byte{'b'}};
  CHECK(statement_fingerprint("ab", {}) != statement_fingerprint("a", b));
}

// ---- deallocate_target ---------------------------------------------------------------

TEST_CASE("deallocate_target names the statement DEALLOCATE frees") {
  struct Case {
    std::string sql;
    std::string name;
  };
  const std::vector<Case> cases = {
      {"DEALLOCATE s1", "s1"},
      {"DEALLOCATE PREPARE s1", "s1"},
      {"deallocate prepare s1", "s1"},
      {"DeAlLoCaTe PrEpArE s1", "s1"},
      {"DEALLOCATE S1", "s1"},  // unquoted names fold to lower case
      {"DEALLOCATE stmt_2$x", "stmt_2$x"},
      {"DEALLOCATE s1;", "s1"},
      {"DEALLOCATE s1 ; SELECT 1", "s1"},
      {"DEALLOCATE\ts1\n", "s1"},
      {"  \n\t DEALLOCATE   s1", "s1"},
      {"DEALLOCATE \"My Stmt\"", "My Stmt"},  // quoted names keep their case
      {"DEALLOCATE PREPARE \"S1\"", "S1"},
      {"DEALLOCATE \"a\"\"b\"", "a\"b"},
      {"DEALLOCATE\"s1\"", "s1"},
      {"DEALLOCATE \"all\"", "all"},  // a statement named all, not DEALLOCATE ALL
  };
  for (const Case& c : cases) {
    CAPTURE(c.sql);
    CHECK(deallocate_target(c.sql) == c.name);
  }
}

TEST_CASE("deallocate_target gives \"\" for DEALLOCATE ALL and for other SQL") {
  const std::vector<std::string> none = {
      "DEALLOCATE ALL",
      "deallocate all",
      "DEALLOCATE PREPARE ALL",
      "DEALLOCATE All;",
      "DEALLOCATE",
      "DEALLOCATE ;",
      "DEALLOCATE \"unterminated",
      "DEALLOCATEs1",  // not the keyword
      "deallocate_all",
      "",
      "   ",
      "SELECT 1",
      "PREPARE s1 AS SELECT 1",
      "SELECT 1; DEALLOCATE s1",  // only the first statement is looked at
  };
  for (const std::string& sql : none) {
    CAPTURE(sql);
    CHECK(deallocate_target(sql).empty());
  }
}

TEST_CASE("deallocate_target skips leading whitespace but not comments") {
  CHECK(deallocate_target("\r\n\f\v DEALLOCATE s1") == "s1");
  CHECK(deallocate_target("/* tidy up */ DEALLOCATE s1").empty());
  CHECK(deallocate_target("-- tidy up\nDEALLOCATE s1").empty());
}

TEST_CASE("deallocate_target reads two names differently from PostgreSQL") {
  // PostgreSQL frees a statement named "prepare" here; the keyword is taken instead.
  CHECK(deallocate_target("DEALLOCATE prepare").empty());
  // Identifiers may hold non-ASCII letters; the name stops at the first such byte.
  CHECK(deallocate_target("DEALLOCATE caf\xc3\xa9") == "caf");
}
