// What the sessions of one worker share: settings lists (so idle clients with equal
// settings hold one copy), the classifier's cache, and login secrets. Owned by the
// worker, used on its loop thread only.
#pragma once

#include "proxy/session/layer.h"

#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "config/schema.h"
#include "protocol/scram.h"
#include "proxy/pooling/parameters.h"
#include "proxy/pooling/pool_metrics.h"
#include "proxy/session/accepted_settings.h"
#include "sql/classify_cache.h"

namespace pgsidecar::proxy {

// PostgreSQL's default scram_iterations: the cost of a verifier made from a plain-text
// password in the config.
inline constexpr int kScramIterations = 4096;

// Fills `out` from the operating system's CSPRNG (OpenSSL RAND_bytes).
void random_bytes(std::span<std::byte> out);

class Credentials {
 public:
  // Verifiers of the users with plain-text passwords are derived now: a PBKDF2 on a
  // user's first login would make known users slower to answer than unknown ones (whose
  // mock verifier is cheap).
  explicit Credentials(const config::Config& config);

  // The SCRAM verifier for `user` (derived once per worker from a plain-text password).
  const protocol::ScramVerifier& scram_verifier_for(const config::User& user);
  // The secret that makes an unknown user's mock SCRAM exchange look like a real one.
  const std::vector<std::byte>& mock_secret() const { return mock_secret_; }

 private:
  std::map<std::string, protocol::ScramVerifier> verifiers_;
  std::vector<std::byte> mock_secret_;
};

struct SessionResources {
  explicit SessionResources(const config::Config& config) : credentials(config) {}

  ParamSets param_sets;
  SessionCounters counters;
  sql::ClassificationCache classifier;
  Credentials credentials;
  // Per pool: its database's name, a NUL, the user's name.
  std::map<std::string, AcceptedSettings, std::less<>> accepted_settings;
};

}  // namespace pgsidecar::proxy
