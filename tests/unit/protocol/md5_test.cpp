#include "protocol/md5.h"

#include <doctest/doctest.h>

#include <array>
#include <string>

using namespace pgsidecar::protocol;

namespace {

std::array<std::byte, 4> salt_of(int a, int b, int c, int d) {
  return {static_cast<std::byte>(a), static_cast<std::byte>(b), static_cast<std::byte>(c),
          static_cast<std::byte>(d)};
}

}  // namespace

TEST_CASE("md5_hex matches the RFC 1321 test suite") {
  CHECK(md5_hex("") == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(md5_hex("abc") == "900150983cd24fb0d6963f7d28e17f72");
  CHECK(md5_hex("message digest") == "f96b697d7cb7938d525a2f31aaf161d0");
  CHECK(md5_hex(std::string_view("a\0b", 3)) != md5_hex("a"));
}

TEST_CASE("md5_password_hash matches what PostgreSQL 15 stores") {
  // SET password_encryption='md5'; CREATE ROLE x PASSWORD 'secret'; (and role y)
  CHECK(md5_password_hash("x", "secret") == "md5ac2b10d9871b8fe9d086b7652279ff79");
  CHECK(md5_password_hash("y", "secret") == "md5d18bf5f8eddaae3aed1d69b23a252748");
}

TEST_CASE("is_md5_password_hash accepts only PostgreSQL's stored shape") {
  CHECK(is_md5_password_hash("md5ac2b10d9871b8fe9d086b7652279ff79"));
  CHECK_FALSE(is_md5_password_hash("md5AC2B10D9871B8FE9D086B7652279FF79"));  // uppercase
  CHECK_FALSE(is_md5_password_hash("md5ac2b10d9871b8fe9d086b7652279ff7"));   // 34 chars
  CHECK_FALSE(is_md5_password_hash("md5ac2b10d9871b8fe9d086b7652279ff790"));
  CHECK_FALSE(is_md5_password_hash("md5ac2b10d9871b8fe9d086b7652279ffzz"));
  CHECK_FALSE(is_md5_password_hash("MD5ac2b10d9871b8fe9d086b7652279ff79"));
  CHECK_FALSE(is_md5_password_hash("secret"));
  CHECK_FALSE(is_md5_password_hash(""));
}

TEST_CASE("the salted response is md5(md5(password + user) + salt)") {
  // Computed independently: "md5" + md5(md5hex("secretx") + salt).
  CHECK(md5_salted_response("secret", "x", salt_of(1, 2, 3, 4)) ==
        "md5d487e53300f279b1b8736a3fd0b38d12");
  // Salt bytes are appended raw, including zero and high bytes.
  CHECK(md5_salted_response("secret", "x", salt_of(0xff, 0x00, 0x80, 0x7f)) ==
        "md5556af3abe2c7c1f09c26dddc5c56cee8");
}

TEST_CASE("a stored hash and its plain password give the same response") {
  const auto salt = salt_of(9, 8, 7, 6);
  CHECK(md5_salted_response("md5ac2b10d9871b8fe9d086b7652279ff79", "x", salt) ==
        md5_salted_response("secret", "x", salt));
  // A plain password that only looks like a hash (uppercase) is treated as plain.
  const std::string lookalike = "md5AC2B10D9871B8FE9D086B7652279FF79";
  CHECK(md5_salted_response(lookalike, "x", salt) !=
        md5_salted_response("md5ac2b10d9871b8fe9d086b7652279ff79", "x", salt));
}

TEST_CASE("md5_response_matches accepts only the exact response") {
  const auto salt = salt_of(1, 2, 3, 4);
  const std::string good = "md5d487e53300f279b1b8736a3fd0b38d12";
  CHECK(md5_response_matches("secret", "x", salt, good));
  CHECK(md5_response_matches("md5ac2b10d9871b8fe9d086b7652279ff79", "x", salt, good));
  CHECK_FALSE(md5_response_matches("Secret", "x", salt, good));
  CHECK_FALSE(md5_response_matches("secret", "y", salt, good));
  CHECK_FALSE(md5_response_matches("secret", "x", salt_of(1, 2, 3, 5), good));
  CHECK_FALSE(md5_response_matches("secret", "x", salt, ""));
  CHECK_FALSE(md5_response_matches("secret", "x", salt, "md5"));
  CHECK_FALSE(md5_response_matches("secret", "x", salt, good.substr(0, 34)));
  CHECK_FALSE(md5_response_matches("secret", "x", salt, good + "0"));
  CHECK_FALSE(md5_response_matches("secret", "x", salt, std::string(good) + '\0'));
  CHECK_FALSE(md5_response_matches("secret", "x", salt, "MD5D487E53300F279B1B8736A3FD0B38D12"));
  CHECK_FALSE(md5_response_matches("secret", "x", salt, "md5ac2b10d9871b8fe9d086b7652279ff79"));
  std::string flipped = good;
  flipped.back() = '3';
  CHECK_FALSE(md5_response_matches("secret", "x", salt, flipped));
}
