// Included first by every header of proxy/io/: only libraries that link pgsidecar_io (the
// layers above it) may include them. An upward include fails here, at compile time.
#pragma once

#ifndef PGSIDECAR_LAYER_IO
#error "proxy/io/ is a layer above this library: link pgsidecar_io, or move the code down (docs/architecture.md)"
#endif
