// Included first by every header of proxy/http/: only libraries that link pgsidecar_http
// (the runtime) may include them. An upward include fails here, at compile time.
#pragma once

#ifndef PGSIDECAR_LAYER_HTTP
#error "proxy/http/ is a layer above this library: link pgsidecar_http, or move the code down (docs/architecture.md)"
#endif
