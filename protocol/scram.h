#pragma once

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it inside SASL messages:
// AuthenticationSASL / SASLInitialResponse / AuthenticationSASLContinue / SASLResponse /
// AuthenticationSASLFinal. Pure code: strings in, strings out; no I/O.
//
// PostgreSQL differences from plain RFC 5802, kept here on purpose:
// - the user name in "n=" is ignored (the user comes from the StartupMessage), so the
//   client sends it empty, as libpq does;
// - no SASLprep: the password is used as raw UTF-8 bytes. PostgreSQL applies SASLprep
//   first, which leaves ASCII (and most passwords) unchanged; a non-ASCII password that
//   SASLprep would rewrite gives a different verifier here than PostgreSQL computes;
// - channel binding (SCRAM-SHA-256-PLUS) is tls-server-end-point only (RFC 5929), as in
//   PostgreSQL.

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pgsidecar::protocol {

// What a server keeps instead of the password (RFC 5802 section 3).
struct ScramVerifier {
  int iterations = 4096;
  std::vector<std::byte> salt;
  std::array<unsigned char, 32> stored_key{};  // H(HMAC(SaltedPassword, "Client Key"))
  std::array<unsigned char, 32> server_key{};  // HMAC(SaltedPassword, "Server Key")
};

// PostgreSQL's rolpassword format:
//   SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
// false (and `out` unspecified) on anything else.
bool parse_scram_verifier(std::string_view text, ScramVerifier& out);
// Starts like a verifier (well-formed or not): never plain text to send to a server.
bool looks_like_scram_verifier(std::string_view text);

// Derives a verifier from a password (used as raw bytes; see the note above).
ScramVerifier make_scram_verifier(std::string_view password, std::span<const std::byte> salt,
                                  int iterations);

// Inverse of parse_scram_verifier.
std::string format_scram_verifier(const ScramVerifier& verifier);

// A deterministic fake verifier for a user that does not exist, derived from the user name
// and a server secret, so that the exchange for an unknown user looks exactly like one for
// a known user (same salt every time, same iteration count, same messages) and fails only
// at the proof, as PostgreSQL's mock authentication does. It has PostgreSQL's defaults
// (16-byte salt, 4096 iterations); real verifiers with other counts would stand out.
// No password matches it whatever the secret; the secret (random, kept per installation)
// only stops an outsider from predicting the salt and so telling fake users from real ones.
ScramVerifier mock_scram_verifier(std::string_view user, std::span<const std::byte> server_secret);

// Returns a printable nonce without ',' (RFC 5802: printable ASCII except ',').
// The default source is 18 random bytes from RAND_bytes, base64-encoded.
using NonceSource = std::function<std::string()>;

// Authenticates a client that sent SASLInitialResponse for mechanism "SCRAM-SHA-256" or,
// after set_channel_binding(..., true), "SCRAM-SHA-256-PLUS".
// Call handle_client_first, then handle_client_final, once each, in that order.
class ScramServer {
 public:
  explicit ScramServer(ScramVerifier verifier, NonceSource nonce = {});

  // client-first-message (e.g. "n,,n=,r=<nonce>") -> server-first-message
  // ("r=<client nonce><server nonce>,s=<salt>,i=<iterations>").
  // false + error on malformed input or a channel-binding flag that does not fit what was
  // offered and chosen: "p=tls-server-end-point" only under SCRAM-SHA-256-PLUS; "y" only
  // when PLUS was not offered (RFC 5802: the client believes the server cannot bind, so a
  // man in the middle may have removed it); "n" only without PLUS. The user name in n= is
  // ignored.
  bool handle_client_first(std::string_view client_first, std::string& server_first,
                           std::string& error);

  // client-final-message -> server-final-message "v=<ServerSignature>".
  // false when malformed (error says what) or when the proof is wrong (then proof_failed()
  // is true and error is "password authentication failed"). Checks that c= carries the
  // GS2 header of the client-first-message and that r= is the combined nonce.
  bool handle_client_final(std::string_view client_final, std::string& server_final,
                           std::string& error);

  // True once handle_client_final rejected a well-formed message because of its proof.
  bool proof_failed() const;

  // Before handle_client_first, on a TLS connection: SCRAM-SHA-256-PLUS was offered, with
  // this side's tls-server-end-point `end_point`; `selected`: the client chose it (then c=
  // must carry the GS2 header followed by `end_point`).
  void set_channel_binding(std::vector<unsigned char> end_point, bool selected);

 private:
  enum class Step {
    ExpectClientFirst,  // nothing received yet
    ExpectClientFinal,  // server-first-message sent; nonce and messages remembered
    Done,               // final message handled (accepted or rejected); no more input
  };

  bool binding_agrees(char flag, std::string& error) const;

  ScramVerifier verifier_;
  NonceSource nonce_;
  Step step_ = Step::ExpectClientFirst;
  bool plus_offered_ = false;   // the connection is TLS: SCRAM-SHA-256-PLUS was offered
  bool plus_selected_ = false;  // and the client chose it
  std::vector<unsigned char> end_point_;   // tls-server-end-point of this side's certificate
  std::string gs2_header_;                 // e.g. "n,,", echoed base64 in c=
  std::string client_first_message_bare_;  // "n=,r=..." for AuthMessage
  std::string server_first_message_;
  std::string combined_nonce_;
  bool proof_failed_ = false;
};

// The costly part of logging in with SCRAM: SaltedPassword = Hi(password, salt, i), that is
// PBKDF2 with i HMACs (milliseconds at PostgreSQL's 4096, seconds at a few million), and
// the keys from it. A plain value touching nothing else, so that the caller can run
// derive() on another thread and keep its event loop serving others meanwhile.
struct ScramKeyDerivation {
  ScramKeyDerivation() = default;
  ScramKeyDerivation(const ScramKeyDerivation&) = delete;
  ScramKeyDerivation& operator=(const ScramKeyDerivation&) = delete;
  ~ScramKeyDerivation();  // wipes the password and the keys

  void derive();  // any thread; sets `derived`

  std::string password;
  std::vector<unsigned char> salt;
  int iterations = 0;
  bool derived = false;
  std::array<unsigned char, 32> client_key{};
  std::array<unsigned char, 32> stored_key{};
  std::array<unsigned char, 32> server_key{};
};

// The most iterations a server-first-message may ask for, whatever the caller allows.
inline constexpr int kScramIterationsCeiling = 10'000'000;

// Logs into a PostgreSQL server with SCRAM-SHA-256.
// Call client_first, read_server_first (then derive the keys unless they came from the
// cache) and client_final, then verify_server_final; handle_server_first does the middle
// steps at once, on the calling thread.
class ScramClient {
 public:
  // `user` goes into n= (escaped as RFC 5802 says); PostgreSQL ignores it, so it is
  // normally left empty, as libpq does. A server asking for more than `max_iterations`
  // (capped at kScramIterationsCeiling) is refused before any key derivation.
  explicit ScramClient(std::string password, NonceSource nonce = {}, std::string user = {},
                       int max_iterations = kScramIterationsCeiling);

  // Before client_first (RFC 5802 section 6, RFC 5929): "p" binds the exchange to the TLS
  // session with tls-server-end-point `data` (the mechanism is SCRAM-SHA-256-PLUS); "y"
  // says the client could bind but the server offered no PLUS. Without a call: "n".
  void set_channel_binding(char flag, std::string data = {});

  // The SASLInitialResponse payload: "n,,n=<user>,r=<nonce>", normally "n,,n=,r=<nonce>".
  std::string client_first();

  enum class ServerFirst {
    Ok,                 // `keys` holds the derivation: derived already, or to derive()
    Invalid,            // malformed, or the nonce does not extend ours: `error` says what
    TooManyIterations,  // well-formed, but i= is above max_iterations: requested_iterations()
  };
  // Checks server-first-message: the server nonce extends ours, the salt decodes, the
  // iteration count is 1 to max_iterations. On Ok, `keys` is already derived when this
  // thread derived them for the same password, salt and count before (a pooler logs into
  // the same role again and again, and the server answers with the same salt each time).
  ServerFirst read_server_first(std::string_view server_first, std::unique_ptr<ScramKeyDerivation>& keys,
                                std::string& error);
  int requested_iterations() const { return requested_iterations_; }

  // The client-final-message "c=biws,r=<nonce>,p=<ClientProof>" from the derived keys,
  // which join this thread's cache. Call once, after read_server_first returned Ok.
  std::string client_final(const ScramKeyDerivation& keys);

  // read_server_first, derive() and client_final in one call, on this thread.
  bool handle_server_first(std::string_view server_first, std::string& client_final_message,
                           std::string& error);

  // Checks "v=<ServerSignature>" from AuthenticationSASLFinal. "e=<server-error-value>"
  // -> false with error "SCRAM authentication failed on the server: <server-error-value>".
  bool verify_server_final(std::string_view server_final, std::string& error);

 private:
  enum class Step {
    Start,              // nothing sent
    ExpectServerFirst,  // client-first-message sent
    DerivingKeys,       // server-first-message accepted; waiting for client_final()
    ExpectServerFinal,  // client-final-message sent; expected signature computed
    Done,               // server-final-message checked
  };

  std::string password_;  // wiped once handed to the key derivation
  NonceSource nonce_;
  std::string user_;
  int max_iterations_;
  int requested_iterations_ = 0;
  Step step_ = Step::Start;
  std::string client_nonce_;
  std::string client_first_message_bare_;
  std::string gs2_header_ = "n,,";
  std::string binding_data_;
  std::string server_first_message_;
  std::string combined_nonce_;
  std::array<unsigned char, 32> expected_server_signature_{};
};

}  // namespace pgsidecar::protocol
