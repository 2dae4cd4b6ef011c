#include "proxy/admin/admin_table.h"

#include "protocol/messages.h"

namespace pgsidecar::proxy {

void append_table(std::vector<std::byte>& out, std::initializer_list<std::string_view> columns,
                  const std::vector<AdminRow>& rows) {
  std::vector<std::string_view> names(columns);
  protocol::append_row_description(out, names);
  for (const AdminRow& row : rows) {
    std::vector<std::optional<std::string_view>> values;
    for (const auto& v : row) values.push_back(v ? std::optional<std::string_view>(*v) : std::nullopt);
    protocol::append_data_row(out, values);
  }
  protocol::append_command_complete(out, "SHOW " + std::to_string(rows.size()));
}

}  // namespace pgsidecar::proxy
