// Identifiers that outlive the objects they name: a pool waiter or a mailbox task holds a
// SessionId, never a pointer, and looks the session up when it runs.
#pragma once

#include "proxy/core/layer.h"

#include <cstdint>

namespace pgsidecar::proxy {

// Unique within a worker, never reused: a sequence number above the session's virtual
// process id (BackendKeyData), so one index by that id finds a session by either.
using SessionId = uint64_t;
constexpr SessionId make_session_id(uint32_t sequence, int32_t virtual_pid) {
  return (static_cast<uint64_t>(sequence) << 32) | static_cast<uint32_t>(virtual_pid);
}
constexpr int32_t virtual_pid_of(SessionId id) { return static_cast<int32_t>(id & 0xffffffffu); }
using ServerId = uint64_t;   // unique in the process, never reused; 0 is none

}  // namespace pgsidecar::proxy
