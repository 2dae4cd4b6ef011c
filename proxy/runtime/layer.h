// Included first by every header of proxy/runtime/: only libraries that link pgsidecar_runtime (the
// layers above it) may include them. An upward include fails here, at compile time.
#pragma once

#ifndef PGSIDECAR_LAYER_RUNTIME
#error "proxy/runtime/ is a layer above this library: link pgsidecar_runtime, or move the code down (docs/architecture.md)"
#endif
