#pragma once

// MD5 password authentication as PostgreSQL does it (AuthenticationMD5Password):
// the server stores "md5" + md5_hex(password + user) and sends a 4-byte salt; the client
// answers with a PasswordMessage holding "md5" + md5_hex(md5_hex(password + user) + salt).
// Pure code, no I/O.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace pgsidecar::protocol {

// 32 lowercase hex digits.
std::string md5_hex(std::string_view data);

// PostgreSQL's stored format: "md5" + md5_hex(password + user).
std::string md5_password_hash(std::string_view user, std::string_view password);

// True when `text` has the shape of a stored hash: "md5" followed by 32 hex digits.
bool is_md5_password_hash(std::string_view text);

// The PasswordMessage content answering AuthenticationMD5Password:
// "md5" + md5_hex(md5_hex(password + user) + salt). `stored_or_plain` is either the
// plain password or, if it has the shape of a stored hash, the stored hash itself.
std::string md5_salted_response(std::string_view stored_or_plain, std::string_view user,
                                std::span<const std::byte, 4> salt);

// Whether a client's PasswordMessage content is the right answer; the comparison does not
// depend on where the bytes differ (CRYPTO_memcmp).
bool md5_response_matches(std::string_view stored_or_plain, std::string_view user,
                          std::span<const std::byte, 4> salt, std::string_view response);

}  // namespace pgsidecar::protocol
