// Included first by every header of proxy/pooling/: only libraries that link pgsidecar_pooling (the
// layers above it) may include them. An upward include fails here, at compile time.
#pragma once

#ifndef PGSIDECAR_LAYER_POOLING
#error "proxy/pooling/ is a layer above this library: link pgsidecar_pooling, or move the code down (docs/architecture.md)"
#endif
