// Finding a request pgsidecar may answer itself at the head of a client's input, and the
// reply it builds (compared with PostgreSQL's own bytes in integration/round_trips_test).
#include <doctest/doctest.h>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "protocol/messages.h"
#include "proxy/session/client_statements.h"
#include "proxy/session/local_answers.h"

using namespace pgsidecar::proxy;
namespace protocol = pgsidecar::protocol;

namespace {

std::vector<std::byte> extended_request(std::string_view sql, std::string_view statement = {}) {
  std::vector<std::byte> out;
  if (statement.empty()) protocol::append_parse(out, "", sql, {});
  protocol::append_bind(out, "", statement, {});
  protocol::append_describe(out, 'P', "");
  protocol::append_execute(out, "");
  protocol::append_sync(out);
  return out;
}

std::string tags(const std::vector<std::byte>& bytes) {
  std::string out;
  for (std::size_t at = 0; at + 5 <= bytes.size();) {
    out += static_cast<char>(bytes[at]);
    const auto len = (std::to_integer<std::size_t>(bytes[at + 1]) << 24) | (std::to_integer<std::size_t>(bytes[at + 2]) << 16) |
                     (std::to_integer<std::size_t>(bytes[at + 3]) << 8) | std::to_integer<std::size_t>(bytes[at + 4]);
    at += 1 + len;
  }
  return out;
}

}  // namespace

TEST_CASE("an extended-protocol request is found only once whole, at every split") {
  const ClientStatements none(10);
  const auto bytes = extended_request("BEGIN");
  for (std::size_t cut = 5; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    LocalRequest r;
    CHECK(peek_local_request(std::span(bytes).first(cut), none, r) == PeekLocal::NeedMore);
  }
  LocalRequest r;
  REQUIRE(peek_local_request(bytes, none, r) == PeekLocal::Found);
  CHECK(r.sql == "BEGIN");
  CHECK(r.bytes == bytes.size());
  CHECK(r.parse);
  CHECK(r.describe);
}

TEST_CASE("requests of other shapes are left to a server") {
  const ClientStatements none(10);
  LocalRequest r;
  std::vector<std::byte> bound;  // a Bind of an unnamed statement parsed in an earlier request
  protocol::append_bind(bound, "", "", {});
  protocol::append_execute(bound, "");
  protocol::append_sync(bound);
  CHECK(peek_local_request(bound, none, r) == PeekLocal::No);
  CHECK(peek_local_request(extended_request("", "unknown"), none, r) == PeekLocal::No);
  std::vector<std::byte> named;  // a named Parse makes a statement
  protocol::append_parse(named, "s1", "BEGIN", {});
  protocol::append_sync(named);
  CHECK(peek_local_request(named, none, r) == PeekLocal::No);
  std::vector<std::byte> flush;
  protocol::append_parse(flush, "", "BEGIN", {});
  protocol::append_flush(flush);
  CHECK(peek_local_request(flush, none, r) == PeekLocal::No);
  std::vector<std::byte> big;
  protocol::append_query(big, std::string(kLocalRequestMaxBytes, ' '));
  CHECK(peek_local_request(big, none, r) == PeekLocal::No);
}

TEST_CASE("pings and the first words worth classifying") {
  CHECK(is_ping("SELECT 1"));
  CHECK(is_ping("  select 1 ; "));
  CHECK(!is_ping("SELECT 10"));
  CHECK(!is_ping("SELECT 1; SELECT 2"));
  CHECK(may_be_local(""));
  CHECK(may_be_local("-- ping"));
  CHECK(may_be_local("  Begin read only"));
  CHECK(may_be_local("end"));
  CHECK(!may_be_local("ending"));
  CHECK(!may_be_local("UPDATE t SET a = 1"));
}

TEST_CASE("replies follow the request's messages: ParseComplete, BindComplete, Describe's, Execute's, ReadyForQuery") {
  LocalRequest simple;
  std::vector<std::byte> out;
  append_local_reply(out, simple, LocalReply{"COMMIT", false, true, 'I', {}});
  CHECK(tags(out) == "NCZ");
  out.clear();
  append_local_reply(out, simple, LocalReply{"", true, false, 'I', {}});
  CHECK(tags(out) == "TDCZ");
  out.clear();
  append_local_reply(out, simple, LocalReply{"", false, false, 'I', {}});
  CHECK(tags(out) == "IZ");
  LocalRequest ext;
  ext.extended = true;
  ext.parse = true;
  ext.describe = true;
  out.clear();
  append_local_reply(out, ext, LocalReply{"BEGIN", false, false, 'T', {}});
  CHECK(tags(out) == "12nCZ");
  out.clear();
  append_local_reply(out, ext, LocalReply{"", true, false, 'I', {}});
  CHECK(tags(out) == "12TDCZ");
  out.clear();
  append_local_reply(out, simple, LocalReply{"RESET", false, false, 'I', {{"application_name", ""}, {"TimeZone", "UTC"}}});
  CHECK(tags(out) == "CSSZ");
}
