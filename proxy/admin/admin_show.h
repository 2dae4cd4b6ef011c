// The admin console's views of the running proxy, built from a gathered RuntimeStats:
// SHOW STATS | SERVERS | CLIENTS | LISTS | LATENCY. PgBouncer's column names where it has
// the same thing; docs/operations.md shows sample output.
#pragma once

#include "proxy/admin/layer.h"

#include <cstddef>
#include <string_view>
#include <vector>

#include "config/schema.h"
#include "proxy/admin/runtime_stats.h"

namespace pgsidecar::proxy {

// True when `what` (upper case) is one of the views above.
bool is_gathered_view(std::string_view what);
// Appends the view's rows; `what` is upper case.
void append_gathered_view(std::string_view what, const RuntimeStats& stats, const config::Config& config,
                          std::vector<std::byte>& out);

// SHOW CONFIG: the snapshot the asking session logged in with.
void append_config_view(const config::Config& config, std::vector<std::byte>& out);

}  // namespace pgsidecar::proxy
