// Included first by every header of proxy/admin/: only libraries that link pgsidecar_admin (the
// layers above it) may include them. An upward include fails here, at compile time.
#pragma once

#ifndef PGSIDECAR_LAYER_ADMIN
#error "proxy/admin/ is a layer above this library: link pgsidecar_admin, or move the code down (docs/architecture.md)"
#endif
