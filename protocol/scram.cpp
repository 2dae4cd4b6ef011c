#include "protocol/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstring>
#include <utility>

namespace pgsidecar::protocol {
namespace {

using Key = std::array<unsigned char, 32>;

constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";
constexpr std::size_t kRawNonceLength = 18;  // PostgreSQL's SCRAM_RAW_NONCE_LEN
constexpr std::size_t kMockSaltLength = 16;  // PostgreSQL's SCRAM_DEFAULT_SALT_LEN
constexpr int kMockIterations = 4096;        // PostgreSQL's default scram_iterations
constexpr std::string_view kProofFailed = "password authentication failed";

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

const unsigned char* bytes_of(std::span<const std::byte> s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// --- base64 (RFC 4648 with padding, as PostgreSQL's pg_b64_* use) ---

std::string base64_encode(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');  // EVP_EncodeBlock writes a NUL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                                static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/';
}

// Strict: EVP_DecodeBlock alone would skip surrounding whitespace and count the padding
// as zero bytes, so the shape is checked here and the padding subtracted.
bool base64_decode(std::string_view text, std::vector<unsigned char>& out) {
  if (text.size() % 4 != 0 || text.size() > INT_MAX) return false;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  for (std::size_t i = 0; i < text.size() - padding; ++i) {
    if (!is_base64_char(text[i])) return false;
  }
  out.assign(text.size() / 4 * 3, 0);
  if (text.empty()) return true;
  const int n = EVP_DecodeBlock(out.data(), bytes_of(text), static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return false;
  out.resize(out.size() - padding);
  return true;
}

bool base64_decode_key(std::string_view text, Key& out) {
  std::vector<unsigned char> raw;
  if (!base64_decode(text, raw) || raw.size() != out.size()) return false;
  std::memcpy(out.data(), raw.data(), out.size());
  return true;
}

// --- SCRAM primitives (RFC 5802 section 3) ---

Key hmac_sha256(const unsigned char* key, std::size_t key_size, std::string_view data) {
  static const unsigned char kEmpty = 0;  // HMAC() wants a non-null key even when empty
  Key out{};
  unsigned int out_size = 0;
  HMAC(EVP_sha256(), key_size == 0 ? &kEmpty : key, static_cast<int>(key_size),
       bytes_of(data), data.size(), out.data(), &out_size);
  return out;
}

Key hmac_sha256(const Key& key, std::string_view data) {
  return hmac_sha256(key.data(), key.size(), data);
}

Key sha256(const Key& data) {
  Key out{};
  unsigned int out_size = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &out_size, EVP_sha256(), nullptr);
  return out;
}

Key salted_password(std::string_view password, std::span<const unsigned char> salt,
                    int iterations) {
  static const char kEmpty = 0;
  Key out{};
  PKCS5_PBKDF2_HMAC(password.empty() ? &kEmpty : password.data(),
                    static_cast<int>(password.size()), salt.empty() ? bytes_of("") : salt.data(),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(),
                    static_cast<int>(out.size()), out.data());
  return out;
}

struct DerivedKeys {
  Key client_key;
  Key stored_key;
  Key server_key;
};

DerivedKeys derive_keys(std::string_view password, std::span<const unsigned char> salt,
                        int iterations) {
  Key salted = salted_password(password, salt, iterations);
  DerivedKeys keys{};
  keys.client_key = hmac_sha256(salted, "Client Key");
  keys.stored_key = sha256(keys.client_key);
  keys.server_key = hmac_sha256(salted, "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  return keys;
}

// A pooler logs into the same server role again and again, and the server answers with
// the same salt and iteration count each time: each thread remembers the keys it was
// handed instead of paying PBKDF2's thousands of HMACs per server connection.
struct CachedKeys {
  std::string password;
  std::vector<unsigned char> salt;
  int iterations;
  DerivedKeys keys;
};
constexpr std::size_t kCachedKeys = 16;
thread_local std::vector<CachedKeys> key_cache;

bool find_cached_keys(ScramKeyDerivation& d) {
  for (const CachedKeys& e : key_cache) {
    if (e.iterations == d.iterations && e.password == d.password && e.salt == d.salt) {
      d.client_key = e.keys.client_key;
      d.stored_key = e.keys.stored_key;
      d.server_key = e.keys.server_key;
      d.derived = true;
      return true;
    }
  }
  return false;
}

void remember_keys(const ScramKeyDerivation& d) {
  CachedKeys entry{d.password, d.salt, d.iterations, DerivedKeys{d.client_key, d.stored_key, d.server_key}};
  for (CachedKeys& e : key_cache) {
    if (e.iterations == d.iterations && e.password == d.password && e.salt == d.salt) return;
  }
  if (key_cache.size() >= kCachedKeys) key_cache.erase(key_cache.begin());
  key_cache.push_back(std::move(entry));
}

Key xor_keys(const Key& a, const Key& b) {
  Key out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
  return out;
}

// --- message syntax ---

// RFC 5802: printable = %x21-2B / %x2D-7E (printable ASCII except ',').
bool is_valid_nonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

std::string default_nonce() {
  std::array<unsigned char, kRawNonceLength> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) return {};  // caught as invalid
  return base64_encode(raw.data(), raw.size());
}

std::string next_nonce(const NonceSource& source) {
  return source ? source() : default_nonce();
}

// Whole decimal numbers only: no sign, no spaces, no trailing bytes.
bool parse_positive_int(std::string_view text, int max, int& out) {
  if (text.empty() || text.front() < '0' || text.front() > '9') return false;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return false;
  if (value < 1 || value > max) return false;
  out = value;
  return true;
}

// Reads a comma-separated list of attribute=value pairs (RFC 5802 section 5.1).
class AttributeReader {
 public:
  explicit AttributeReader(std::string_view message) : message_(message) {}

  bool at_end() const { return pos_ == message_.size() && !trailing_comma_; }
  std::size_t position() const { return pos_; }

  // Next attribute, whatever its name: a letter, '=', then a value up to ',' or the end.
  bool next(char& name, std::string_view& value) {
    if (at_end()) return false;
    const std::string_view rest = message_.substr(pos_);
    if (rest.size() < 2 || rest[1] != '=') return false;
    if (!((rest[0] >= 'a' && rest[0] <= 'z') || (rest[0] >= 'A' && rest[0] <= 'Z'))) return false;
    const std::size_t comma = rest.find(',');
    name = rest[0];
    value = rest.substr(2, comma == std::string_view::npos ? std::string_view::npos : comma - 2);
    trailing_comma_ = comma != std::string_view::npos;
    pos_ += comma == std::string_view::npos ? rest.size() : comma + 1;
    return true;
  }

  // The next attribute, which must be called `name`.
  bool expect(char name, std::string_view& value) {
    char got = 0;
    return next(got, value) && got == name;
  }

 private:
  std::string_view message_;
  std::size_t pos_ = 0;
  bool trailing_comma_ = false;  // "x=1," must not read as complete
};

// RFC 5802 saslname: ',' and '=' are written as "=2C" and "=3D".
std::string escape_saslname(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

std::string malformed(std::string_view what) {
  return "malformed SCRAM message: " + std::string(what);
}

// Optional extensions after the known attributes: ignored, but they must be attributes.
bool skip_extensions(AttributeReader& reader) {
  char name = 0;
  std::string_view value;
  while (!reader.at_end()) {
    if (!reader.next(name, value)) return false;
  }
  return true;
}

struct ClientFirstMessage {
  char flag = 'n';              // gs2-cbind-flag: 'n', 'y' or 'p'
  std::string_view gs2_header;  // "n,,", "y,," or "p=tls-server-end-point,,"
  std::string_view bare;        // client-first-message-bare
  std::string_view nonce;
};

// client-first-message = gs2-cbind-flag "," [authzid] "," [reserved-mext ","]
//                        username "," nonce ["," extensions]
bool parse_client_first(std::string_view message, ClientFirstMessage& out, std::string& error) {
  if (message.empty()) {
    error = malformed("empty client-first-message");
    return false;
  }
  out.flag = message.front();
  std::size_t flag_end = 1;
  if (out.flag == 'p') {
    // "p=" cb-name: the only type PostgreSQL (and pgsidecar) supports.
    flag_end = message.find(',');
    if (message.substr(0, flag_end) != "p=tls-server-end-point") {
      error = malformed("unsupported SCRAM channel-binding type (only tls-server-end-point is supported)");
      return false;
    }
  } else if (out.flag != 'n' && out.flag != 'y') {
    error = malformed("unexpected channel-binding flag in client-first-message");
    return false;
  }
  if (flag_end >= message.size() || message[flag_end] != ',') {
    error = malformed("unexpected channel-binding flag in client-first-message");
    return false;
  }
  const std::size_t authzid_end = message.find(',', flag_end + 1);
  if (authzid_end == std::string_view::npos) {
    error = malformed("incomplete GS2 header in client-first-message");
    return false;
  }
  if (authzid_end != flag_end + 1) {
    error = malformed("authorization identity is not supported");
    return false;
  }
  out.gs2_header = message.substr(0, authzid_end + 1);
  out.bare = message.substr(authzid_end + 1);
  if (out.bare.starts_with("m=")) {
    error = malformed("client requires an unsupported SCRAM extension");
    return false;
  }
  AttributeReader reader(out.bare);
  std::string_view user;  // ignored: PostgreSQL takes the user from the StartupMessage
  if (!reader.expect('n', user)) {
    error = malformed("expected attribute \"n\" in client-first-message");
    return false;
  }
  if (!reader.expect('r', out.nonce) || !is_valid_nonce(out.nonce)) {
    error = malformed("expected a printable nonce in attribute \"r\" of client-first-message");
    return false;
  }
  if (!skip_extensions(reader)) {
    error = malformed("garbage at end of client-first-message");
    return false;
  }
  return true;
}

struct ClientFinalMessage {
  std::vector<unsigned char> channel_binding;  // decoded c=
  std::string_view nonce;
  std::string_view without_proof;  // client-final-message-without-proof, for AuthMessage
  Key proof{};
};

// client-final-message = channel-binding "," nonce ["," extensions] "," proof
bool parse_client_final(std::string_view message, ClientFinalMessage& out, std::string& error) {
  AttributeReader reader(message);
  std::string_view channel_binding;
  if (!reader.expect('c', channel_binding) || !base64_decode(channel_binding, out.channel_binding)) {
    error = malformed("expected base64 attribute \"c\" in client-final-message");
    return false;
  }
  if (!reader.expect('r', out.nonce)) {
    error = malformed("expected attribute \"r\" in client-final-message");
    return false;
  }
  char name = 0;
  std::string_view proof_text;
  std::size_t proof_start = 0;
  do {
    proof_start = reader.position();
    if (!reader.next(name, proof_text)) {
      error = malformed("could not find proof in client-final-message");
      return false;
    }
  } while (name != 'p');
  if (!reader.at_end()) {
    error = malformed("garbage at end of client-final-message");
    return false;
  }
  if (!base64_decode_key(proof_text, out.proof)) {
    error = malformed("malformed proof in client-final-message");
    return false;
  }
  out.without_proof = message.substr(0, proof_start - 1);  // drop the ',' before "p="
  return true;
}

struct ServerFirstMessage {
  std::string_view nonce;
  std::vector<unsigned char> salt;
  int iterations = 0;
};

// server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count
//                        ["," extensions]
bool parse_server_first(std::string_view message, std::string_view client_nonce,
                        ServerFirstMessage& out, std::string& error) {
  if (message.starts_with("m=")) {
    error = malformed("server requires an unsupported SCRAM extension");
    return false;
  }
  AttributeReader reader(message);
  if (!reader.expect('r', out.nonce) || !is_valid_nonce(out.nonce)) {
    error = malformed("expected a printable nonce in attribute \"r\" of server-first-message");
    return false;
  }
  // The server must extend our nonce; otherwise this could be a replayed exchange.
  if (!out.nonce.starts_with(client_nonce) || out.nonce.size() == client_nonce.size()) {
    error = "invalid SCRAM response (nonce mismatch)";
    return false;
  }
  std::string_view salt_text;
  if (!reader.expect('s', salt_text) || !base64_decode(salt_text, out.salt) || out.salt.empty()) {
    error = malformed("expected a base64 salt in attribute \"s\" of server-first-message");
    return false;
  }
  std::string_view iterations_text;
  if (!reader.expect('i', iterations_text) || !parse_positive_int(iterations_text, INT_MAX, out.iterations)) {
    error = malformed("invalid iteration count in server-first-message");
    return false;
  }
  if (!skip_extensions(reader)) {
    error = malformed("garbage at end of server-first-message");
    return false;
  }
  return true;
}

std::string make_auth_message(std::string_view client_first_bare, std::string_view server_first,
                              std::string_view client_final_without_proof) {
  std::string out(client_first_bare);
  out += ',';
  out += server_first;
  out += ',';
  out += client_final_without_proof;
  return out;
}

}  // namespace

// --- verifiers ---

bool looks_like_scram_verifier(std::string_view text) { return text.starts_with(kVerifierPrefix); }

bool parse_scram_verifier(std::string_view text, ScramVerifier& out) {
  if (!text.starts_with(kVerifierPrefix)) return false;
  text.remove_prefix(kVerifierPrefix.size());
  // Base64 never contains ':' or '$', so the separators are unambiguous.
  const std::size_t colon1 = text.find(':');
  const std::size_t dollar = text.find('$');
  if (colon1 == std::string_view::npos || dollar == std::string_view::npos || dollar < colon1) {
    return false;
  }
  const std::size_t colon2 = text.find(':', dollar);
  if (colon2 == std::string_view::npos) return false;

  ScramVerifier v;
  std::vector<unsigned char> salt;
  if (!parse_positive_int(text.substr(0, colon1), INT_MAX, v.iterations)) return false;
  if (!base64_decode(text.substr(colon1 + 1, dollar - colon1 - 1), salt) || salt.empty()) {
    return false;
  }
  if (!base64_decode_key(text.substr(dollar + 1, colon2 - dollar - 1), v.stored_key)) return false;
  if (!base64_decode_key(text.substr(colon2 + 1), v.server_key)) return false;
  v.salt.resize(salt.size());
  std::memcpy(v.salt.data(), salt.data(), salt.size());
  out = std::move(v);
  return true;
}

ScramVerifier make_scram_verifier(std::string_view password, std::span<const std::byte> salt,
                                  int iterations) {
  ScramVerifier v;
  v.iterations = iterations;
  v.salt.assign(salt.begin(), salt.end());
  DerivedKeys keys = derive_keys(password, {bytes_of(salt), salt.size()}, iterations);
  v.stored_key = keys.stored_key;
  v.server_key = keys.server_key;
  OPENSSL_cleanse(keys.client_key.data(), keys.client_key.size());
  return v;
}

std::string format_scram_verifier(const ScramVerifier& verifier) {
  std::string out(kVerifierPrefix);
  out += std::to_string(verifier.iterations);
  out += ':';
  out += base64_encode(bytes_of(verifier.salt), verifier.salt.size());
  out += '$';
  out += base64_encode(verifier.stored_key.data(), verifier.stored_key.size());
  out += ':';
  out += base64_encode(verifier.server_key.data(), verifier.server_key.size());
  return out;
}

ScramVerifier mock_scram_verifier(std::string_view user, std::span<const std::byte> server_secret) {
  // Each part is an HMAC keyed by the secret over a label and the user, so the salt is
  // stable per user (a second try must not reveal that the user is fake) and the keys
  // belong to no password: passing would need a preimage of stored_key under SHA-256.
  const auto part = [&](std::string_view label) {
    std::string data(label);
    data += '\0';
    data += user;
    return hmac_sha256(bytes_of(server_secret), server_secret.size(), data);
  };
  ScramVerifier v;
  v.iterations = kMockIterations;
  const Key salt = part("salt");
  v.salt.resize(kMockSaltLength);
  std::memcpy(v.salt.data(), salt.data(), kMockSaltLength);
  v.stored_key = part("stored_key");
  v.server_key = part("server_key");
  return v;
}

// --- server ---

ScramServer::ScramServer(ScramVerifier verifier, NonceSource nonce)
    : verifier_(std::move(verifier)), nonce_(std::move(nonce)) {}

bool ScramServer::proof_failed() const { return proof_failed_; }

void ScramServer::set_channel_binding(std::vector<unsigned char> end_point, bool selected) {
  plus_offered_ = true;
  plus_selected_ = selected;
  end_point_ = std::move(end_point);
}

// RFC 5802 section 6 and PostgreSQL's read_client_first_message: the flag must match what
// was offered and chosen.
bool ScramServer::binding_agrees(char flag, std::string& error) const {
  if (flag == 'p' && !plus_selected_) {
    error = malformed(plus_offered_ ? "the client selected SCRAM-SHA-256 without channel binding, but the SCRAM "
                                      "message includes channel binding data"
                                    : "the client requested channel binding (SCRAM-SHA-256-PLUS), which is not "
                                      "offered on a connection without TLS");
    return false;
  }
  if (flag != 'p' && plus_selected_) {
    error = malformed("the client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel "
                      "binding data");
    return false;
  }
  if (flag == 'y' && plus_offered_) {
    // A man in the middle may have removed SCRAM-SHA-256-PLUS from the offer.
    error = "SCRAM channel binding negotiation error: the client supports SCRAM channel binding but thinks the "
            "server does not; however, this server does support channel binding";
    return false;
  }
  return true;
}

bool ScramServer::handle_client_first(std::string_view client_first, std::string& server_first,
                                      std::string& error) {
  if (step_ != Step::ExpectClientFirst) {
    error = "unexpected SCRAM client-first-message";
    step_ = Step::Done;
    return false;
  }
  step_ = Step::Done;  // any failure ends the exchange

  ClientFirstMessage message;
  if (!parse_client_first(client_first, message, error)) return false;
  if (!binding_agrees(message.flag, error)) return false;
  const std::string server_nonce = next_nonce(nonce_);
  if (!is_valid_nonce(server_nonce)) {
    error = "could not generate a SCRAM nonce";
    return false;
  }
  gs2_header_ = std::string(message.gs2_header);
  client_first_message_bare_ = std::string(message.bare);
  combined_nonce_ = std::string(message.nonce) + server_nonce;
  server_first_message_ = "r=" + combined_nonce_ + ",s=" +
                          base64_encode(bytes_of(verifier_.salt), verifier_.salt.size()) +
                          ",i=" + std::to_string(verifier_.iterations);
  server_first = server_first_message_;
  step_ = Step::ExpectClientFinal;
  return true;
}

bool ScramServer::handle_client_final(std::string_view client_final, std::string& server_final,
                                      std::string& error) {
  if (step_ != Step::ExpectClientFinal) {
    error = "unexpected SCRAM client-final-message";
    step_ = Step::Done;
    return false;
  }
  step_ = Step::Done;

  ClientFinalMessage message;
  if (!parse_client_final(client_final, message, error)) return false;
  // c= is the GS2 header echoed back, followed under SCRAM-SHA-256-PLUS by the TLS
  // session's tls-server-end-point: a different one means something between us rewrote the
  // client-first-message, or the client's TLS session is not ours (a man in the middle).
  std::string expected = gs2_header_;
  if (plus_selected_) expected.append(reinterpret_cast<const char*>(end_point_.data()), end_point_.size());
  const std::string_view echoed(reinterpret_cast<const char*>(message.channel_binding.data()),
                                message.channel_binding.size());
  if (echoed.size() != expected.size() ||
      CRYPTO_memcmp(echoed.data(), expected.data(), expected.size()) != 0) {
    error = "SCRAM channel binding check failed";
    return false;
  }
  if (message.nonce != combined_nonce_) {
    error = "SCRAM nonce mismatch";
    return false;
  }

  // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); valid iff H(ClientKey) is
  // StoredKey. The same work runs for a mock verifier, so timing does not tell them apart.
  const std::string auth_message =
      make_auth_message(client_first_message_bare_, server_first_message_, message.without_proof);
  Key client_key = xor_keys(message.proof, hmac_sha256(verifier_.stored_key, auth_message));
  const Key computed_stored_key = sha256(client_key);
  OPENSSL_cleanse(client_key.data(), client_key.size());
  if (CRYPTO_memcmp(computed_stored_key.data(), verifier_.stored_key.data(),
                    computed_stored_key.size()) != 0) {
    proof_failed_ = true;
    error = std::string(kProofFailed);
    return false;
  }
  const Key server_signature = hmac_sha256(verifier_.server_key, auth_message);
  server_final = "v=" + base64_encode(server_signature.data(), server_signature.size());
  return true;
}

// --- client ---

ScramKeyDerivation::~ScramKeyDerivation() {
  OPENSSL_cleanse(password.data(), password.size());
  OPENSSL_cleanse(client_key.data(), client_key.size());
  OPENSSL_cleanse(stored_key.data(), stored_key.size());
  OPENSSL_cleanse(server_key.data(), server_key.size());
}

void ScramKeyDerivation::derive() {
  DerivedKeys keys = derive_keys(password, salt, iterations);
  client_key = keys.client_key;
  stored_key = keys.stored_key;
  server_key = keys.server_key;
  OPENSSL_cleanse(&keys, sizeof keys);
  derived = true;
}

ScramClient::ScramClient(std::string password, NonceSource nonce, std::string user, int max_iterations)
    : password_(std::move(password)),
      nonce_(std::move(nonce)),
      user_(std::move(user)),
      max_iterations_(std::clamp(max_iterations, 1, kScramIterationsCeiling)) {}

void ScramClient::set_channel_binding(char flag, std::string data) {
  gs2_header_ = flag == 'p' ? "p=tls-server-end-point,," : flag == 'y' ? "y,," : "n,,";
  binding_data_ = flag == 'p' ? std::move(data) : std::string();
}

std::string ScramClient::client_first() {
  client_nonce_ = next_nonce(nonce_);
  if (!is_valid_nonce(client_nonce_)) client_nonce_.clear();  // reported by read_server_first
  client_first_message_bare_ = "n=" + escape_saslname(user_) + ",r=" + client_nonce_;
  step_ = Step::ExpectServerFirst;
  return gs2_header_ + client_first_message_bare_;
}

ScramClient::ServerFirst ScramClient::read_server_first(std::string_view server_first,
                                                        std::unique_ptr<ScramKeyDerivation>& keys,
                                                        std::string& error) {
  if (step_ != Step::ExpectServerFirst) {
    error = "unexpected SCRAM server-first-message";
    step_ = Step::Done;
    return ServerFirst::Invalid;
  }
  step_ = Step::Done;
  if (client_nonce_.empty()) {
    error = "could not generate a SCRAM nonce";
    return ServerFirst::Invalid;
  }
  ServerFirstMessage message;
  if (!parse_server_first(server_first, client_nonce_, message, error)) return ServerFirst::Invalid;
  requested_iterations_ = message.iterations;
  if (message.iterations > max_iterations_) {
    error = "server asked for " + std::to_string(message.iterations) + " SCRAM iterations, more than the " +
            std::to_string(max_iterations_) + " allowed";
    return ServerFirst::TooManyIterations;
  }
  keys = std::make_unique<ScramKeyDerivation>();
  keys->password = password_;
  OPENSSL_cleanse(password_.data(), password_.size());
  password_.clear();
  keys->salt = std::move(message.salt);
  keys->iterations = message.iterations;
  find_cached_keys(*keys);
  server_first_message_ = std::string(server_first);
  combined_nonce_ = std::string(message.nonce);
  step_ = Step::DerivingKeys;
  return ServerFirst::Ok;
}

std::string ScramClient::client_final(const ScramKeyDerivation& keys) {
  if (step_ != Step::DerivingKeys || !keys.derived) {
    step_ = Step::Done;
    return {};
  }
  remember_keys(keys);
  // c= carries the GS2 header and, under SCRAM-SHA-256-PLUS, the channel binding data.
  const std::string binding = gs2_header_ + binding_data_;
  const std::string without_proof =
      "c=" + base64_encode(reinterpret_cast<const unsigned char*>(binding.data()), binding.size()) +
      ",r=" + combined_nonce_;
  const std::string auth_message =
      make_auth_message(client_first_message_bare_, server_first_message_, without_proof);
  const Key proof = xor_keys(keys.client_key, hmac_sha256(keys.stored_key, auth_message));
  expected_server_signature_ = hmac_sha256(keys.server_key, auth_message);
  step_ = Step::ExpectServerFinal;
  return without_proof + ",p=" + base64_encode(proof.data(), proof.size());
}

bool ScramClient::handle_server_first(std::string_view server_first, std::string& client_final_message,
                                      std::string& error) {
  std::unique_ptr<ScramKeyDerivation> keys;
  if (read_server_first(server_first, keys, error) != ServerFirst::Ok) return false;
  if (!keys->derived) keys->derive();
  client_final_message = client_final(*keys);
  return true;
}

bool ScramClient::verify_server_final(std::string_view server_final, std::string& error) {
  if (step_ != Step::ExpectServerFinal) {
    error = "unexpected SCRAM server-final-message";
    step_ = Step::Done;
    return false;
  }
  step_ = Step::Done;

  // server-final-message = (server-error / verifier) ["," extensions]
  AttributeReader reader(server_final);
  char name = 0;
  std::string_view value;
  if (!reader.next(name, value) || (name != 'v' && name != 'e')) {
    error = malformed("expected attribute \"v\" or \"e\" in server-final-message");
    return false;
  }
  if (name == 'e') {
    error = "SCRAM authentication failed on the server: " + std::string(value);
    return false;
  }
  Key signature{};
  if (!base64_decode_key(value, signature)) {
    error = malformed("malformed server signature in server-final-message");
    return false;
  }
  if (!skip_extensions(reader)) {
    error = malformed("garbage at end of server-final-message");
    return false;
  }
  // A wrong signature means the server does not hold our verifier: it is not the server
  // we meant to log into.
  if (CRYPTO_memcmp(signature.data(), expected_server_signature_.data(), signature.size()) != 0) {
    error = "incorrect server signature";
    return false;
  }
  return true;
}

}  // namespace pgsidecar::protocol
