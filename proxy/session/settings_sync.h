// Client session settings in transaction mode. For reported settings pgsidecar knows the
// value on every server and the value each client expects, and restores the client's value
// on whichever server it lands on. Startup parameters that are not reported (a client's
// `options=-c statement_timeout=5s`, extra_float_digits, ...) are the client's session
// defaults: a server carries one client's set at a time, identified by a fingerprint.
#pragma once

#include "proxy/session/layer.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/pooling/parameters.h"

namespace pgsidecar::proxy {

// Fingerprint of a client's non-reported startup settings; 0 for none.
uint64_t defaults_fingerprint(const ParamList& defaults);

// `text` as an E'' string literal, safe whether standard_conforming_strings is on or off.
void append_string_literal(std::string& sql, std::string_view text);
// `SELECT pg_catalog.set_config(name, value, false);`: the session-level SET of `name`.
void append_set_statement(std::string& sql, std::string_view name, std::string_view value);

// The SQL that makes a server carrying `server_values` match a client, or nothing when it
// already does. `after_reset` when the server is first reset (RESET ALL, because it
// carries another client's session state: ServerConn::sync_settings): then the client's
// startup defaults and every reported value it has are set again.
std::optional<std::string> settings_sync_sql(const ParamMap& client_values, const ParamList& client_defaults,
                                             uint64_t client_fp, const ParamMap& server_values,
                                             bool after_reset);

}  // namespace pgsidecar::proxy
