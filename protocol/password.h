// What a configured password is: plain text, an md5 hash ("md5" + 32 hex digits, as in
// pg_authid) or a SCRAM-SHA-256 verifier. Decides which authentication exchanges it can
// answer: a hash or a verifier cannot answer a server's password request.
#pragma once

#include <string_view>

namespace pgsidecar::protocol {

enum class PasswordKind { Plain, Md5Hash, ScramVerifier };

PasswordKind password_kind(std::string_view stored);

}  // namespace pgsidecar::protocol
