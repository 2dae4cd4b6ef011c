#include "sql/sql_syntax.h"

#include <pg_query.h>

#include <string>

namespace pgsidecar::sql {

bool sql_syntax_ok(std::string_view sql) {
  const std::string text(sql);  // libpg_query wants a NUL-terminated string
  PgQuerySplitResult result = pg_query_split_with_parser(text.c_str());
  const bool ok = result.error == nullptr;
  pg_query_free_split_result(result);
  return ok;
}

}  // namespace pgsidecar::sql
