// SCRAM-SHA-256 messages from arbitrary bytes, as an unauthenticated client sends them:
// ScramServer::handle_client_first, then handle_client_final, and, on the other side,
// ScramClient::read_server_first (what a server, or a SWITCHOVER target, sends).
// Input: client-first-message NUL client-final-message NUL server-first-message; a part
// that is missing is empty.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/scram.h"

using namespace pgsidecar::protocol;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr std::string_view kServerNonce = "SERVERNONCE";
constexpr std::string_view kClientNonce = "fuzznonce";
constexpr int kMaxIterations = 4096;
// Deriving keys costs an HMAC per iteration: only small counts are derived here.
constexpr int kDeriveUpTo = 64;

// No PBKDF2 per input: a verifier from a fixed secret, as for an unknown user.
const ScramVerifier& verifier() {
  static const ScramVerifier v = [] {
    const std::byte secret[4] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
    return mock_scram_verifier("fuzz", secret);
  }();
  return v;
}

std::string_view next_part(std::string_view& rest) {
  const std::size_t nul = rest.find('\0');
  const std::string_view part = rest.substr(0, nul);
  rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  return part;
}

void fuzz_server(std::string_view client_first, std::string_view client_final) {
  ScramServer server(verifier(), [] { return std::string(kServerNonce); });
  std::string server_first, server_final, error;
  if (!server.handle_client_first(client_first, server_first, error)) {
    check(!error.empty());
    check(!server.proof_failed());
    // A second message after a failure is refused, never read.
    check(!server.handle_client_final(client_final, server_final, error));
    return;
  }
  check(server_first.starts_with("r="));
  check(server_first.find(std::string(kServerNonce) + ",s=") != std::string::npos);
  error.clear();
  const bool ok = server.handle_client_final(client_final, server_final, error);
  if (ok) {
    check(server_final.starts_with("v="));  // a proof for the mock verifier: not expected, but well-formed
  } else {
    check(!error.empty());
    if (server.proof_failed()) check(error == "password authentication failed");
  }
  // The exchange is over either way.
  check(!server.handle_client_final(client_final, server_final, error));
}

void fuzz_client(std::string_view server_first) {
  ScramClient client("pencil", [] { return std::string(kClientNonce); }, {}, kMaxIterations);
  check(client.client_first() == "n,,n=,r=" + std::string(kClientNonce));
  std::unique_ptr<ScramKeyDerivation> keys;
  std::string error;
  switch (client.read_server_first(server_first, keys, error)) {
    case ScramClient::ServerFirst::Invalid:
      check(!error.empty() && keys == nullptr);
      return;
    case ScramClient::ServerFirst::TooManyIterations:
      check(client.requested_iterations() > kMaxIterations && keys == nullptr);
      return;
    case ScramClient::ServerFirst::Ok:
      break;
  }
  check(keys != nullptr && keys->iterations >= 1 && keys->iterations <= kMaxIterations && !keys->salt.empty());
  if (keys->iterations > kDeriveUpTo) return;
  if (!keys->derived) keys->derive();
  const std::string final_message = client.client_final(*keys);
  check(final_message.starts_with("c=biws,r=" + std::string(kClientNonce)));
  check(final_message.find(",p=") != std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const std::string_view client_first = next_part(rest);
  const std::string_view client_final = next_part(rest);
  const std::string_view server_first = next_part(rest);
  fuzz_server(client_first, client_final);
  fuzz_client(server_first);
  return 0;
}
