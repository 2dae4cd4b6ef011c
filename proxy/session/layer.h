// Included first by every header of proxy/session/: only libraries that link pgsidecar_session (the
// layers above it) may include them. An upward include fails here, at compile time.
#pragma once

#ifndef PGSIDECAR_LAYER_SESSION
#error "proxy/session/ is a layer above this library: link pgsidecar_session, or move the code down (docs/architecture.md)"
#endif
