// A write of bytes the proxy made itself (login messages, errors, admin results): the
// buffer travels with the request and is freed in the callback. Not for forwarding.
#pragma once

#include "proxy/io/layer.h"

#include <uv.h>

#include <cstddef>
#include <functional>
#include <vector>

#include "proxy/io/tls_stream.h"

namespace pgsidecar::proxy {

// done(status) runs exactly once, also when the write fails or is cancelled.
void write_owned(io::Sink dest, std::vector<std::byte> bytes, std::function<void(int)> done);

}  // namespace pgsidecar::proxy
