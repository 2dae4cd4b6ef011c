// Included first by every header of proxy/routing/: only libraries that link pgsidecar_routing (the
// layers above it) may include them. An upward include fails here, at compile time.
#pragma once

#ifndef PGSIDECAR_LAYER_ROUTING
#error "proxy/routing/ is a layer above this library: link pgsidecar_routing, or move the code down (docs/architecture.md)"
#endif
