#include "proxy/session/session_resources.h"

#include <openssl/rand.h>

namespace pgsidecar::proxy {

namespace {
constexpr std::size_t kMockSecretLength = 32;
constexpr std::size_t kVerifierSaltLength = 16;  // PostgreSQL's SCRAM_DEFAULT_SALT_LEN
}  // namespace

void random_bytes(std::span<std::byte> out) {
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
}

Credentials::Credentials(const config::Config& config) : mock_secret_(kMockSecretLength) {
  random_bytes(mock_secret_);
  for (const auto& user : config.users) scram_verifier_for(user);
}

const protocol::ScramVerifier& Credentials::scram_verifier_for(const config::User& user) {
  // Keyed by name and password: a reload that changes a password takes effect at once.
  std::string key = user.name + '\n' + user.password;
  auto it = verifiers_.find(key);
  if (it != verifiers_.end()) return it->second;
  protocol::ScramVerifier v;
  if (!protocol::parse_scram_verifier(user.password, v)) {
    std::vector<std::byte> salt(kVerifierSaltLength);
    random_bytes(salt);
    v = protocol::make_scram_verifier(user.password, salt, kScramIterations);
  }
  return verifiers_.emplace(std::move(key), std::move(v)).first->second;
}

}  // namespace pgsidecar::proxy
