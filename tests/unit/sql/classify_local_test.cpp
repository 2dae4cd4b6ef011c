#include <doctest/doctest.h>

#include <string_view>

#include "sql/classify.h"

using pgsidecar::sql::classify_sql;
using pgsidecar::sql::LocalStatement;

namespace {

struct LocalCase {
  std::string_view sql;
  LocalStatement local;
};

constexpr LocalCase kLocalCases[] = {
    {"", LocalStatement::Empty},
    {"  -- ping", LocalStatement::Empty},
    {";", LocalStatement::Empty},
    {"BEGIN", LocalStatement::Begin},
    {"begin read only;", LocalStatement::Begin},
    {"BEGIN ISOLATION LEVEL SERIALIZABLE, READ WRITE DEFERRABLE", LocalStatement::Begin},
    {"START TRANSACTION READ ONLY", LocalStatement::StartTransaction},
    {"COMMIT", LocalStatement::Commit},
    {"end", LocalStatement::Commit},
    {"ROLLBACK", LocalStatement::Rollback},
    {"abort", LocalStatement::Rollback},
    {"DISCARD ALL", LocalStatement::DiscardAll},
    {"RESET ALL", LocalStatement::ResetAll},
    {"DEALLOCATE ALL", LocalStatement::DeallocateAll},
    {"DEALLOCATE PREPARE ALL", LocalStatement::DeallocateAll},
    {"UNLISTEN *", LocalStatement::UnlistenAll},
    {"CLOSE ALL", LocalStatement::CloseAll},
    {"SET statement_timeout = '5s'", LocalStatement::Set},
    {"set search_path to a, b", LocalStatement::Set},
    {"SET SESSION work_mem TO DEFAULT", LocalStatement::Set},
    {"RESET work_mem", LocalStatement::Reset},
    // Not answerable without a server.
    {"COMMIT AND CHAIN", LocalStatement::None},
    {"ROLLBACK AND CHAIN", LocalStatement::None},
    {"ROLLBACK TO SAVEPOINT a", LocalStatement::None},
    {"BEGIN; SELECT 1", LocalStatement::None},
    {"BEGIN; BEGIN", LocalStatement::None},
    {"DISCARD PLANS", LocalStatement::None},
    {"SET LOCAL work_mem = '1MB'", LocalStatement::None},
    {"SET statement_timeout = 0; SELECT 1", LocalStatement::None},
    {"SET TRANSACTION READ ONLY", LocalStatement::None},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", LocalStatement::None},
    {"DEALLOCATE s1", LocalStatement::None},
    {"UNLISTEN chan", LocalStatement::None},
    {"CLOSE c1", LocalStatement::None},
    {"BEGIN ISOLATION LEVEL bogus", LocalStatement::None},
    {"PREPARE TRANSACTION 'x'", LocalStatement::None},
    {"SELECT 1", LocalStatement::None},
};

}  // namespace

TEST_CASE("statements the proxy can answer alone are recognised, one statement at a time") {
  for (const LocalCase& c : kLocalCases) {
    CAPTURE(c.sql);
    CHECK(classify_sql(c.sql).local == c.local);
  }
}
