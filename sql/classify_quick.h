// A lexical pre-check in front of the parser-based classifier: most statements an
// application sends are decided by their first keyword (INSERT, UPDATE, ...) or are plain
// SELECTs without parentheses, locking clauses or INTO, which are reads. Only the rest
// (function calls, subqueries, CTEs, BEGIN variants, ...) needs PostgreSQL's parser.
// Literal values differ per execution in simple-protocol queries, so this keeps the
// parser off the hot path where a cache by text cannot.
#pragma once

#include "sql/layer.h"

#include <optional>
#include <string_view>

namespace pgsidecar::sql {

enum class QuickVerdict { Read, Write, Unsure };

QuickVerdict quick_classify(std::string_view sql);

// False when `sql` cannot call set_config(): it names it nowhere, in any case, and has no
// U&"..." identifier that could spell it. Only text this accepts needs the parser to find
// a session-level set_config() (Classification::sets_session_config).
// A DO statement (whose body may SET anything) counts as one that can.
bool may_set_session_config(std::string_view sql);

// Whether a PL/pgSQL body (a DO block's) may change a session setting: it names
// set_config, or a SET or RESET starts one of its statements or a string (EXECUTE 'SET
// ...'). UPDATE ... SET and ALTER ... SET do not count: a word precedes them.
bool plpgsql_may_set(std::string_view body);

}  // namespace pgsidecar::sql
