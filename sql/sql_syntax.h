// Syntax checks with PostgreSQL's own parser (libpg_query), for decisions the proxy makes
// without a server.
#pragma once

#include "sql/layer.h"

#include <string_view>

namespace pgsidecar::sql {

// True when PostgreSQL's grammar accepts `sql` (names and types are not checked).
bool sql_syntax_ok(std::string_view sql);

}  // namespace pgsidecar::sql
