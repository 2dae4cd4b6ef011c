// A result set for the admin console: RowDescription, DataRows (all text) and
// CommandComplete "SHOW n", as psql displays them.
#pragma once

#include "proxy/admin/layer.h"

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgsidecar::proxy {

using AdminRow = std::vector<std::optional<std::string>>;

void append_table(std::vector<std::byte>& out, std::initializer_list<std::string_view> columns,
                  const std::vector<AdminRow>& rows);

}  // namespace pgsidecar::proxy
