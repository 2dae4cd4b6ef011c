// Before a health probe gives libpq the password: what authentication the server asks
// for on a connection that will not be encrypted. libpq 16 refuses a cleartext password
// request itself when told require_auth; libpq 15 (Debian 12's) has no such setting and
// would answer it, in clear, on the probe's connection. So on an unencrypted probe
// connection pgsidecar first asks the server itself, on a socket of its own, and the probe
// does not log in when the answer is a cleartext password request (the rule pgsidecar's
// own server logins follow: docs/tls.md).
#pragma once

#include "proxy/routing/layer.h"

#include <chrono>
#include <string>

#include "config/schema.h"

namespace pgsidecar::proxy {

// True when the probe may log in with its password: the URL makes the connection TLS
// (sslmode=require and above), the server accepts TLS (sslmode=prefer and an 'S' answer),
// or the server asks for something other than a cleartext password. False, with `error`,
// when it asks for a cleartext password on a connection that would not be encrypted.
// Blocking, bounded by `deadline`: for the health monitor's threads only. Failing to ask
// (the server is down) is not a refusal: libpq's own attempt then reports why.
bool probe_may_send_password(const config::ServerAddress& address, const std::string& user,
                             const std::string& dbname, std::chrono::steady_clock::time_point deadline,
                             std::string& error);

}  // namespace pgsidecar::proxy
