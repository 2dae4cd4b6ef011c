// Server addresses written as postgres:// URLs, parsed by libpq's own conninfo parser so
// that every URL libpq accepts means the same thing here.
#pragma once

#include <string>
#include <string_view>

#include "config/schema.h"

namespace pgsidecar::config {

// Accepts one postgres:// or postgresql:// URL naming exactly one host (in the authority,
// or as ?host= or ?hostaddr=); port defaults to 5432. Multi-host URLs are refused: each
// server is its own entry (primary, replicas). On failure `out` is untouched and `error`
// says why.
bool parse_server_url(std::string_view url, ServerAddress& out, std::string& error);

// The address as a URL with the password and every other secret option (sslpassword)
// replaced by "***", for logs and SHOW output.
std::string redacted_url(const ServerAddress& address);

}  // namespace pgsidecar::config
