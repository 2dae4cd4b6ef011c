// The admin console: the virtual database `pgsidecar`, for users listed in [admin] users.
// Simple-query commands only (psql works): SHOW HEALTH | POOLS | DATABASES,
// PAUSE db, RESUME db, SWITCHOVER db TO 'postgres://...', SHUTDOWN.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

namespace pgsidecar::proxy {

class App;
class Worker;

// Runs `sql`; appends the reply (rows, CommandComplete or ErrorResponse, no
// ReadyForQuery) to `out`. Returns false when the command finishes later: `later` then
// gets the reply bytes on the worker's loop thread.
bool run_admin_command(Worker& worker, std::string_view sql, std::vector<std::byte>& out,
                       std::function<void(std::vector<std::byte>)> later);

// ParameterStatus values the console reports at login.
void append_admin_parameters(std::vector<std::byte>& out);

}  // namespace pgsidecar::proxy
