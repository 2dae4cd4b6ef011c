#include "protocol/md5.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>

namespace pgsidecar::protocol {
namespace {

constexpr std::string_view kPrefix = "md5";
constexpr std::size_t kHexLength = 32;

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

// Empty if the digest is unavailable (an OpenSSL build without MD5): every response then
// fails to match, which refuses the login instead of accepting it.
std::string md5_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_md5(), nullptr) != 1 ||
      size * 2 != kHexLength) {
    return {};
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(kHexLength, '0');
  for (unsigned int i = 0; i < size; ++i) {
    out[2 * i] = kDigits[digest[i] >> 4];
    out[2 * i + 1] = kDigits[digest[i] & 0x0f];
  }
  return out;
}

std::string md5_password_hash(std::string_view user, std::string_view password) {
  std::string input(password);
  input += user;
  return std::string(kPrefix) + md5_hex(input);
}

// Same test as PostgreSQL's get_password_type(): "md5" and 32 lowercase hex digits.
bool is_md5_password_hash(std::string_view text) {
  if (text.size() != kPrefix.size() + kHexLength || !text.starts_with(kPrefix)) return false;
  for (char c : text.substr(kPrefix.size())) {
    if (!is_lower_hex(c)) return false;
  }
  return true;
}

std::string md5_salted_response(std::string_view stored_or_plain, std::string_view user,
                                std::span<const std::byte, 4> salt) {
  std::string input = is_md5_password_hash(stored_or_plain)
                          ? std::string(stored_or_plain.substr(kPrefix.size()))
                          : md5_password_hash(user, stored_or_plain).substr(kPrefix.size());
  if (input.size() != kHexLength) return {};  // md5_hex failed
  input.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  const std::string digest = md5_hex(input);
  if (digest.empty()) return {};
  return std::string(kPrefix) + digest;
}

bool md5_response_matches(std::string_view stored_or_plain, std::string_view user,
                          std::span<const std::byte, 4> salt, std::string_view response) {
  const std::string expected = md5_salted_response(stored_or_plain, user, salt);
  // The length is public (always 35); only the contents are compared in constant time.
  if (expected.empty() || response.size() != expected.size()) return false;
  return CRYPTO_memcmp(expected.data(), response.data(), expected.size()) == 0;
}

}  // namespace pgsidecar::protocol
