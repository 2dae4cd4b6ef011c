// The admin console: the virtual database `pgsidecar`, for users listed in [admin] users.
// Simple-query commands only (psql works): SHOW HEALTH | POOLS | DATABASES | STATS |
// SERVERS | CLIENTS | CONFIG | LISTS | VERSION | LATENCY, PAUSE db, RESUME db, RELOAD,
// KILL db, SWITCHOVER db TO 'postgres://...', SHUTDOWN.
#pragma once

#include "proxy/admin/layer.h"

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include "config/schema.h"
#include "proxy/admin/runtime_stats.h"
#include "proxy/io/loop.h"
#include "proxy/pooling/runtime_services.h"
#include "proxy/routing/topology.h"

namespace pgsidecar::proxy {

// What a command may look at: the process's services, the configuration snapshot of the
// session that asks, the latest topology, and the loop on which a late reply is delivered.
struct AdminContext {
  RuntimeServices& runtime;
  AdminServices& admin;
  const config::Config& config;
  const TopologySnapshot& topology;
  io::Loop& loop;
};

// Runs `sql`; appends the reply (rows, CommandComplete or ErrorResponse, no
// ReadyForQuery) to `out`. Returns false when the command finishes later: `later` then
// gets the reply bytes on `context.loop`'s thread.
bool run_admin_command(AdminContext& context, std::string_view sql, std::vector<std::byte>& out,
                       std::function<void(std::vector<std::byte>)> later);

// ParameterStatus values the console reports at login.
void append_admin_parameters(std::vector<std::byte>& out);

}  // namespace pgsidecar::proxy
