// Sends a CancelRequest to a server on a connection of its own, as PostgreSQL requires,
// and forgets about it: the server closes the connection without a reply.
#pragma once

#include <cstdint>

#include "proxy/server_address.h"

namespace pgsidecar::proxy {

class Worker;

void send_cancel_request(Worker& worker, const ServerTarget& target, int32_t backend_pid, int32_t backend_secret);

}  // namespace pgsidecar::proxy
