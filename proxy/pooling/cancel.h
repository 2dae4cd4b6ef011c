// Sends a CancelRequest to a server on a connection of its own, as PostgreSQL requires.
// The server closes the connection without a reply once it has signalled the backend;
// `done` runs then (or on failure, or after kCancelTimeout), on the loop's thread. It goes
// over TLS as the server's logins do (`tls`, which must outlive it: the pool's).
#pragma once

#include "proxy/pooling/layer.h"

#include <chrono>
#include <cstdint>
#include <functional>

#include "proxy/io/loop.h"
#include "proxy/pooling/server_address.h"
#include "proxy/pooling/server_tls.h"

namespace pgsidecar::proxy {

// A cancel connection that has not finished by then is dropped: it never lingers.
inline constexpr std::chrono::milliseconds kCancelTimeout{5000};

void send_cancel_request(io::Loop& loop, const ResolvedAddress& address, const ServerTls& tls, int32_t backend_pid,
                         int32_t backend_secret, std::function<void()> done);

}  // namespace pgsidecar::proxy
