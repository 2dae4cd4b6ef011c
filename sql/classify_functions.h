// What a call to a built-in function does, by name, for the read-only classifier.
#pragma once

#include "sql/layer.h"

#include <string_view>

namespace pgsidecar::sql {

enum class FunctionKind {
  ReadOnly,     // on the list of built-ins that write nothing and run on a standby
  Writes,       // known to write, lock or change session state
  PrimaryOnly,  // writes nothing, but fails or means nothing on a standby
  Unknown,      // not a known built-in: user code, which may write
};

// `name` as the function is called, unqualified or after "pg_catalog.". Case-sensitive:
// PostgreSQL folds unquoted names to lower case, and "NOW"() is another function.
FunctionKind builtin_function_kind(std::string_view name);

}  // namespace pgsidecar::sql
