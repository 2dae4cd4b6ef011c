// What becomes of a server connection its session lets go of (PoolShard::release).
#pragma once

#include "proxy/pooling/layer.h"

namespace pgsidecar::proxy {

enum class ReleaseKind {
  Reusable,  // at ReadyForQuery 'I' with nothing outstanding: straight back to idle
  Reset,     // session mode: DISCARD ALL first
  Close,     // state unknown (client left mid-transaction, error): close it
};

}  // namespace pgsidecar::proxy
