// The SQL that makes a server's session settings match a client's (settings_sync_sql,
// append_set_statement), the fingerprint of a client's startup defaults, and ParamMap /
// ParamSets, which hold those settings.
#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/session/settings_sync.h"

using namespace pgsidecar::proxy;

namespace {

ParamMap params(std::initializer_list<std::pair<const char*, const char*>> entries) {
  ParamMap m;
  for (const auto& [name, value] : entries) m.set(name, value);
  return m;
}

std::string set_statement(std::string_view name, std::string_view value) {
  std::string sql;
  append_set_statement(sql, name, value);
  return sql;
}

// What a client reported at login, as PostgreSQL spells the names.
ParamMap login_values() {
  return params({{"client_encoding", "UTF8"},
                 {"DateStyle", "ISO, MDY"},
                 {"TimeZone", "UTC"},
                 {"application_name", "psql"}});
}

constexpr uint64_t kNoDefaults = 0;

}  // namespace

// ---- append_set_statement ------------------------------------------------------------

TEST_CASE("append_set_statement calls set_config with the name and value as E'' literals") {
  CHECK(set_statement("application_name", "psql") == "SELECT pg_catalog.set_config(E'application_name', E'psql', false);");
  CHECK(set_statement("DateStyle", "ISO, MDY") == "SELECT pg_catalog.set_config(E'DateStyle', E'ISO, MDY', false);");
  CHECK(set_statement("search_path", "") == "SELECT pg_catalog.set_config(E'search_path', E'', false);");

  std::string sql = "RESET ALL;";
  append_set_statement(sql, "TimeZone", "UTC");
  CHECK(sql == "RESET ALL;SELECT pg_catalog.set_config(E'TimeZone', E'UTC', false);");  // appended, not replaced
}

TEST_CASE("append_set_statement doubles quotes and backslashes, whatever standard_conforming_strings is") {
  CHECK(set_statement("application_name", "it's") == "SELECT pg_catalog.set_config(E'application_name', E'it''s', false);");
  CHECK(set_statement("search_path", "\"$user\", public") ==
        "SELECT pg_catalog.set_config(E'search_path', E'\"$user\", public', false);");
  CHECK(set_statement("my.\"odd\"", "x") == "SELECT pg_catalog.set_config(E'my.\"odd\"', E'x', false);");
  // A value cannot end the statement early: the quote is doubled, the rest stays inside.
  CHECK(set_statement("application_name", "x'; DROP TABLE t; --") ==
        "SELECT pg_catalog.set_config(E'application_name', E'x''; DROP TABLE t; --', false);");
  CHECK(set_statement("application_name", "C:\\temp\\") ==
        "SELECT pg_catalog.set_config(E'application_name', E'C:\\\\temp\\\\', false);");
  CHECK(set_statement("application_name", "\\'") == "SELECT pg_catalog.set_config(E'application_name', E'\\\\''', false);");
}

// ---- settings_sync_sql ---------------------------------------------------------------

TEST_CASE("settings_sync_sql has nothing to do when the server has the client's values") {
  const ParamMap client = login_values();
  CHECK_FALSE(settings_sync_sql(client, {}, kNoDefaults, login_values(), false).has_value());
  // Names match in any case, and the server's order does not matter.
  const ParamMap server = params({{"timezone", "UTC"},
                                  {"APPLICATION_NAME", "psql"},
                                  {"datestyle", "ISO, MDY"},
                                  {"Client_Encoding", "UTF8"},
                                  {"server_version", "16.2"}});
  CHECK_FALSE(settings_sync_sql(client, {}, kNoDefaults, server, false).has_value());
  // A client without settings has nothing to restore.
  CHECK_FALSE(settings_sync_sql(ParamMap{}, {}, kNoDefaults, server, false).has_value());
}

TEST_CASE("settings_sync_sql sets the reported values that differ, in the client's order") {
  ParamMap client = login_values();
  ParamMap server = login_values();
  CHECK(server.set("TimeZone", "Europe/Paris"));
  CHECK(server.set("DateStyle", "SQL, DMY"));
  const auto sql = settings_sync_sql(client, {}, kNoDefaults, server, false);
  REQUIRE(sql.has_value());
  CHECK(*sql == "SELECT pg_catalog.set_config(E'DateStyle', E'ISO, MDY', false);SELECT pg_catalog.set_config(E'TimeZone', E'UTC', false);");
}

TEST_CASE("settings_sync_sql quotes a changed value") {
  ParamMap client = login_values();
  CHECK(client.set("application_name", "O'Brien \\ report"));
  const auto sql = settings_sync_sql(client, {}, kNoDefaults, login_values(), false);
  REQUIRE(sql.has_value());
  CHECK(*sql == "SELECT pg_catalog.set_config(E'application_name', E'O''Brien \\\\ report', false);");
}

TEST_CASE("settings_sync_sql sets a reported value the server has not reported") {
  const ParamMap client = params({{"client_encoding", "UTF8"}, {"IntervalStyle", "iso_8601"}});
  const ParamMap server = params({{"client_encoding", "UTF8"}});
  const auto sql = settings_sync_sql(client, {}, kNoDefaults, server, false);
  REQUIRE(sql.has_value());
  CHECK(*sql == "SELECT pg_catalog.set_config(E'IntervalStyle', E'iso_8601', false);");
}

TEST_CASE("settings_sync_sql leaves settings alone that PostgreSQL does not report or a client cannot set") {
  // server_version and is_superuser are reported but read-only; search_path is settable
  // but not reported, so pgsidecar does not know the server's value.
  const ParamMap client = params({{"server_version", "16.2"}, {"is_superuser", "on"}, {"search_path", "app"}});
  const ParamMap server = params({{"server_version", "15.6"}, {"is_superuser", "off"}, {"search_path", "public"}});
  CHECK_FALSE(settings_sync_sql(client, {}, kNoDefaults, server, false).has_value());
  CHECK(is_tracked_parameter("datestyle"));
  CHECK(is_tracked_parameter("DEFAULT_TRANSACTION_READ_ONLY"));
  CHECK_FALSE(is_tracked_parameter("server_version"));
  CHECK_FALSE(is_tracked_parameter("search_path"));
}

TEST_CASE("after_reset gives the client's defaults, then every reported value") {
  const ParamMap client = params({{"client_encoding", "UTF8"}, {"TimeZone", "UTC"}, {"search_path", "app"}});
  const ParamList defaults = {{"statement_timeout", "5s"}, {"search_path", "\"$user\", public"}};
  // The server already has both reported values: after RESET ALL they are set again anyway.
  const ParamMap server = params({{"client_encoding", "UTF8"}, {"TimeZone", "UTC"}});
  const auto sql = settings_sync_sql(client, defaults, defaults_fingerprint(defaults), server, true);
  REQUIRE(sql.has_value());
  CHECK(*sql ==
        "SELECT pg_catalog.set_config(E'statement_timeout', E'5s', false);"
        "SELECT pg_catalog.set_config(E'search_path', E'\"$user\", public', false);"
        "SELECT pg_catalog.set_config(E'client_encoding', E'UTF8', false);"
        "SELECT pg_catalog.set_config(E'TimeZone', E'UTC', false);");
}

TEST_CASE("after_reset a client with no settings at all has nothing to set (the reset is the server's)") {
  CHECK_FALSE(settings_sync_sql(ParamMap{}, {}, kNoDefaults, login_values(), true).has_value());
}

TEST_CASE("client defaults are applied when the server carries another client's fingerprint") {
  const ParamList defaults = {{"statement_timeout", "5s"}, {"lock_timeout", "1s"}};
  const uint64_t client_fp = defaults_fingerprint(defaults);
  const ParamMap client = login_values();
  const ParamMap server = login_values();

  // A server last used by a client with other defaults (ServerConn::leftovers_for).
  const ParamList other_defaults = {{"statement_timeout", "30s"}};
  REQUIRE(defaults_fingerprint(other_defaults) != client_fp);
  const auto sql = settings_sync_sql(client, defaults, client_fp, server, true);
  REQUIRE(sql.has_value());
  CHECK(sql->starts_with("SELECT pg_catalog.set_config(E'statement_timeout', E'5s', false);SELECT pg_catalog.set_config(E'lock_timeout', E'1s', false);"));

  // A server that already carries this client's defaults: nothing to repeat.
  CHECK_FALSE(settings_sync_sql(client, defaults, client_fp, server, false).has_value());
  // The fingerprint argument does not change the SQL: after_reset alone decides.
  CHECK(settings_sync_sql(client, defaults, client_fp + 1, server, true) == sql);
  CHECK_FALSE(settings_sync_sql(client, defaults, client_fp + 1, server, false).has_value());
}

// ---- defaults_fingerprint ------------------------------------------------------------

TEST_CASE("no defaults fingerprint as 0, any defaults as something else") {
  CHECK(defaults_fingerprint({}) == 0);
  CHECK(defaults_fingerprint({{"", ""}}) != 0);
  CHECK(defaults_fingerprint({{"statement_timeout", "5s"}}) != 0);
}

TEST_CASE("equal defaults fingerprint equally; another name or value changes the fingerprint") {
  const ParamList a = {{"statement_timeout", "5s"}, {"extra_float_digits", "3"}};
  const ParamList same = {{"statement_timeout", "5s"}, {"extra_float_digits", "3"}};
  CHECK(defaults_fingerprint(a) == defaults_fingerprint(same));
  CHECK(defaults_fingerprint(a) != defaults_fingerprint({{"statement_timeout", "6s"}, {"extra_float_digits", "3"}}));
  CHECK(defaults_fingerprint(a) != defaults_fingerprint({{"lock_timeout", "5s"}, {"extra_float_digits", "3"}}));
  CHECK(defaults_fingerprint(a) != defaults_fingerprint({{"statement_timeout", "5s"}}));
  CHECK(defaults_fingerprint(a) !=
        defaults_fingerprint({{"statement_timeout", "5s"}, {"extra_float_digits", "3"}, {"x", ""}}));
}

TEST_CASE("the fingerprint keeps names and values apart") {
  CHECK(defaults_fingerprint({{"ab", "c"}}) != defaults_fingerprint({{"a", "bc"}}));
  CHECK(defaults_fingerprint({{"a", "b"}, {"c", "d"}}) != defaults_fingerprint({{"a", "bc"}, {"", "d"}}));
  CHECK(defaults_fingerprint({{"a", ""}}) != defaults_fingerprint({{"", "a"}}));
}

TEST_CASE("the same defaults in another order or spelling fingerprint differently") {
  // The fingerprint is of the list as the client sent it: a server switching between
  // two such clients is reset, which costs a RESET ALL but is never wrong.
  CHECK(defaults_fingerprint({{"a", "1"}, {"b", "2"}}) != defaults_fingerprint({{"b", "2"}, {"a", "1"}}));
  CHECK(defaults_fingerprint({{"TimeZone", "UTC"}}) != defaults_fingerprint({{"timezone", "UTC"}}));
}

// ---- ParamMap and ParamSets ----------------------------------------------------------

TEST_CASE("ParamMap finds a name in any case and keeps the spelling it was first set with") {
  ParamMap m;
  CHECK(m.empty());
  CHECK(m.find("DateStyle") == nullptr);
  CHECK(m.set("DateStyle", "ISO, MDY"));
  REQUIRE(m.find("datestyle") != nullptr);
  CHECK(*m.find("DATESTYLE") == "ISO, MDY");
  CHECK_FALSE(m.set("datestyle", "ISO, MDY"));  // same value: no change
  CHECK(m.set("DATESTYLE", "SQL, DMY"));
  REQUIRE(m.entries().size() == 1);
  CHECK(m.entries()[0].first == "DateStyle");
  CHECK(m.entries()[0].second == "SQL, DMY");
  CHECK(m.set("TimeZone", ""));  // an empty value is a value
  CHECK(m.entries().size() == 2);
  REQUIRE(m.find("timezone") != nullptr);
  CHECK(m.find("timezone")->empty());
  m.clear();
  CHECK(m.empty());
  CHECK(m.find("DateStyle") == nullptr);
}

TEST_CASE("a copied ParamMap shares its list until one of them writes") {
  ParamMap a = login_values();
  ParamMap b = a;
  CHECK(a.shared_entries() == b.shared_entries());
  CHECK_FALSE(b.set("timezone", "UTC"));  // no change, no copy
  CHECK(a.shared_entries() == b.shared_entries());
  CHECK(b.set("TimeZone", "Asia/Tokyo"));
  CHECK(a.shared_entries() != b.shared_entries());
  CHECK(*a.find("TimeZone") == "UTC");
  CHECK(*b.find("TimeZone") == "Asia/Tokyo");

  // A list held elsewhere (a server's last synced settings) never changes under its holder.
  const std::shared_ptr<const ParamList> held = b.shared_entries();
  CHECK(b.set("TimeZone", "UTC"));
  CHECK(held != b.shared_entries());
  CHECK(held->at(2).second == "Asia/Tokyo");
}

TEST_CASE("ParamMap equality compares the lists entry by entry, in order") {
  CHECK(params({{"a", "1"}, {"b", "2"}}) == params({{"a", "1"}, {"b", "2"}}));
  CHECK_FALSE(params({{"a", "1"}, {"b", "2"}}) == params({{"b", "2"}, {"a", "1"}}));
  CHECK_FALSE(params({{"a", "1"}}) == params({{"A", "1"}}));
  CHECK(ParamMap{} == params({}));
}

TEST_CASE("ParamSets::share gives equal maps one list") {
  ParamSets sets;
  ParamMap first = login_values();
  ParamMap second = login_values();
  ParamMap other = params({{"client_encoding", "LATIN1"}});
  CHECK(first.shared_entries() != second.shared_entries());
  sets.share(first);
  sets.share(other);
  sets.share(second);
  CHECK(first.shared_entries() == second.shared_entries());
  CHECK(other.shared_entries() != first.shared_entries());
  CHECK(second == login_values());

  // Sharing again is harmless; an empty map stays empty.
  sets.share(second);
  CHECK(first.shared_entries() == second.shared_entries());
  ParamMap empty;
  sets.share(empty);
  CHECK(empty.empty());
  CHECK(empty.shared_entries() == nullptr);
}

TEST_CASE("ParamSets remembers the 16 latest lists and forgets older ones") {
  ParamSets sets;
  auto numbered = [](int i) { return params({{"application_name", std::to_string(i).c_str()}}); };
  std::vector<ParamMap> seen;
  for (int i = 0; i < 17; ++i) {
    seen.push_back(numbered(i));
    sets.share(seen.back());
  }
  // Seventeen lists seen: the first is forgotten, the sixteen after it are known.
  ParamMap again1 = numbered(1);
  sets.share(again1);
  CHECK(again1.shared_entries() == seen[1].shared_entries());
  ParamMap again0 = numbered(0);
  sets.share(again0);
  CHECK(again0.shared_entries() != seen[0].shared_entries());
  // Remembering 0 again pushed out the oldest known list, 1's.
  ParamMap later1 = numbered(1);
  sets.share(later1);
  CHECK(later1.shared_entries() != seen[1].shared_entries());
  ParamMap again16 = numbered(16);
  sets.share(again16);
  CHECK(again16.shared_entries() == seen[16].shared_entries());
}
