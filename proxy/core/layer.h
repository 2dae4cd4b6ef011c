// Included first by every header of proxy/core/: only libraries that link pgsidecar_core (the
// layers above it) may include them. An upward include fails here, at compile time.
#pragma once

#ifndef PGSIDECAR_LAYER_CORE
#error "proxy/core/ is a layer above this library: link pgsidecar_core, or move the code down (docs/architecture.md)"
#endif
