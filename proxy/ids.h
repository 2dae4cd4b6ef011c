// Identifiers that outlive the objects they name: a pool waiter or a mailbox task holds a
// SessionId, never a pointer, and looks the session up when it runs.
#pragma once

#include <cstdint>

namespace pgsidecar::proxy {

using SessionId = uint64_t;  // unique within a worker, never reused
using ServerId = uint64_t;   // unique within a worker, never reused

}  // namespace pgsidecar::proxy
