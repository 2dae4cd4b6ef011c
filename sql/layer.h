// Included first by every header of sql/: only libraries that link pgsidecar_sql (the
// layers above it) may include them. An upward include fails here, at compile time.
#pragma once

#ifndef PGSIDECAR_LAYER_SQL
#error "sql/ is a layer above this library: link pgsidecar_sql, or move the code down (docs/architecture.md)"
#endif
