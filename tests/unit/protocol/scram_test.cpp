#include "protocol/scram.h"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <string>
#include <thread>
#include <string_view>
#include <vector>

using namespace pgsidecar::protocol;

namespace {

// RFC 7677 section 3.
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// PostgreSQL 15.20: SET password_encryption='scram-sha-256'; CREATE ROLE x PASSWORD 'secret';
// SELECT rolpassword FROM pg_authid WHERE rolname='x';
constexpr std::string_view kPostgresVerifier =
    "SCRAM-SHA-256$4096:hA70IFfozjGSEgSr2fhJ9A==$98lNvidfDP4b3xx3TGoJVnUMFxX74fqJHpzhsKZVBXY=:"
    "lkzF4hf+33nVRVyldIcR0tg3cM/0D+b8JmWnQ3WJAIY=";

std::vector<std::byte> bytes(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

std::vector<std::byte> rfc_salt() {
  return bytes({91, 109, 153, 104, 157, 18, 53, 142, 236, 160, 75, 20, 18, 54, 250, 129});
}

NonceSource fixed(std::string_view nonce) {
  return [n = std::string(nonce)] { return n; };
}

ScramVerifier rfc_verifier() { return make_scram_verifier("pencil", rfc_salt(), 4096); }

struct Exchange {
  bool ok = false;
  bool proof_failed = false;
  std::string server_first;
  std::string error;  // first error, from either side
};

// Runs a whole exchange between a client and a server, stopping at the first failure.
Exchange run_exchange(ScramClient& client, ScramServer& server) {
  Exchange x;
  std::string client_final;
  std::string server_final;
  x.ok = server.handle_client_first(client.client_first(), x.server_first, x.error) &&
         client.handle_server_first(x.server_first, client_final, x.error) &&
         server.handle_client_final(client_final, server_final, x.error) &&
         client.verify_server_final(server_final, x.error);
  x.proof_failed = server.proof_failed();
  return x;
}

// An independent RFC 5802 client proof, so the server can be fed messages ScramClient
// never writes (a "y,," header).
std::string proof_for(std::string_view password, std::span<const std::byte> salt,
                      int iterations, const std::string& auth_message) {
  unsigned char salted[32];
  unsigned char client_key[32];
  unsigned char stored_key[32];
  unsigned char signature[32];
  unsigned int n = 0;
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(), 32, salted);
  HMAC(EVP_sha256(), salted, 32, reinterpret_cast<const unsigned char*>("Client Key"), 10,
       client_key, &n);
  EVP_Digest(client_key, 32, stored_key, &n, EVP_sha256(), nullptr);
  HMAC(EVP_sha256(), stored_key, 32,
       reinterpret_cast<const unsigned char*>(auth_message.data()), auth_message.size(),
       signature, &n);
  unsigned char proof[32];
  for (int i = 0; i < 32; ++i) proof[i] = client_key[i] ^ signature[i];
  std::string out(45, '\0');
  out.resize(static_cast<std::size_t>(
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), proof, 32)));
  return out;
}

// A server that has accepted the RFC client-first-message and waits for the final one.
ScramServer rfc_server_after_first() {
  ScramServer server(rfc_verifier(), fixed(kRfcServerNonce));
  std::string server_first;
  std::string error;
  REQUIRE(server.handle_client_first(kRfcClientFirst, server_first, error));
  return server;
}

// A client that has sent the RFC client-first-message and waits for the server's.
ScramClient rfc_client_after_first() {
  ScramClient client("pencil", fixed(kRfcClientNonce), "user");
  REQUIRE(client.client_first() == kRfcClientFirst);
  return client;
}

ScramClient rfc_client_after_final() {
  ScramClient client = rfc_client_after_first();
  std::string client_final;
  std::string error;
  REQUIRE(client.handle_server_first(kRfcServerFirst, client_final, error));
  return client;
}

}  // namespace

TEST_CASE("ScramClient reproduces the RFC 7677 exchange") {
  ScramClient client("pencil", fixed(kRfcClientNonce), "user");
  CHECK(client.client_first() == kRfcClientFirst);
  std::string client_final;
  std::string error;
  REQUIRE(client.handle_server_first(kRfcServerFirst, client_final, error));
  CHECK(client_final == kRfcClientFinal);
  CHECK(client.verify_server_final(kRfcServerFinal, error));
}

TEST_CASE("ScramClient's key derivation can run on another thread and gives the RFC 7677 proof") {
  // Derived on another thread, unless an earlier case on this thread left the keys cached.
  ScramClient client = rfc_client_after_first();
  std::unique_ptr<ScramKeyDerivation> keys;
  std::string error;
  REQUIRE(client.read_server_first(kRfcServerFirst, keys, error) == ScramClient::ServerFirst::Ok);
  REQUIRE(keys != nullptr);
  CHECK(keys->iterations == 4096);
  if (!keys->derived) std::thread([&] { keys->derive(); }).join();
  CHECK(client.client_final(*keys) == kRfcClientFinal);
  CHECK(client.verify_server_final(kRfcServerFinal, error));

  // The same password, salt and count again on this thread: the keys come from the cache.
  ScramClient again = rfc_client_after_first();
  std::unique_ptr<ScramKeyDerivation> cached;
  REQUIRE(again.read_server_first(kRfcServerFirst, cached, error) == ScramClient::ServerFirst::Ok);
  CHECK(cached->derived);
  CHECK(again.client_final(*cached) == kRfcClientFinal);
}

TEST_CASE("ScramClient refuses a server asking for more iterations than allowed, before deriving anything") {
  ScramClient client("pencil", fixed(kRfcClientNonce), "user", 4095);
  client.client_first();
  std::unique_ptr<ScramKeyDerivation> keys;
  std::string error;
  CHECK(client.read_server_first(kRfcServerFirst, keys, error) == ScramClient::ServerFirst::TooManyIterations);
  CHECK(keys == nullptr);
  CHECK(client.requested_iterations() == 4096);
  CHECK(error.find("4096 SCRAM iterations, more than the 4095 allowed") != std::string::npos);

  // Above the ceiling, whatever the caller allows; past INT_MAX it is malformed.
  ScramClient ceiling("pw", fixed("n"), {}, 2'000'000'000);
  ceiling.client_first();
  CHECK(ceiling.read_server_first("r=nX,s=QUJD,i=10000001", keys, error) ==
        ScramClient::ServerFirst::TooManyIterations);
  ScramClient huge("pw", fixed("n"));
  huge.client_first();
  CHECK(huge.read_server_first("r=nX,s=QUJD,i=99999999999", keys, error) == ScramClient::ServerFirst::Invalid);
}

TEST_CASE("ScramServer reproduces the RFC 7677 exchange") {
  ScramServer server(rfc_verifier(), fixed(kRfcServerNonce));
  std::string server_first;
  std::string server_final;
  std::string error;
  REQUIRE(server.handle_client_first(kRfcClientFirst, server_first, error));
  CHECK(server_first == kRfcServerFirst);
  REQUIRE(server.handle_client_final(kRfcClientFinal, server_final, error));
  CHECK(server_final == kRfcServerFinal);
  CHECK_FALSE(server.proof_failed());
}

TEST_CASE("a client and a server with random nonces agree on the right password") {
  const ScramVerifier verifier = make_scram_verifier("correct horse", bytes({1, 2, 3, 4, 5}), 4096);
  for (int round = 0; round < 3; ++round) {
    ScramClient client("correct horse");
    ScramServer server(verifier);
    const Exchange x = run_exchange(client, server);
    CHECK_MESSAGE(x.ok, x.error);
    CHECK_FALSE(x.proof_failed);
  }
}

TEST_CASE("the default client sends an empty user name and a fresh 24-character nonce") {
  ScramClient a("pw");
  ScramClient b("pw");
  const std::string first_a = a.client_first();
  const std::string first_b = b.client_first();
  REQUIRE(first_a.starts_with("n,,n=,r="));
  CHECK(first_a.size() == std::string_view("n,,n=,r=").size() + 24);
  CHECK(first_a != first_b);
}

TEST_CASE("the default server nonce extends the client's with 24 fresh characters") {
  ScramServer a(rfc_verifier());
  ScramServer b(rfc_verifier());
  std::string first_a;
  std::string first_b;
  std::string error;
  REQUIRE(a.handle_client_first("n,,n=,r=abc", first_a, error));
  REQUIRE(b.handle_client_first("n,,n=,r=abc", first_b, error));
  CHECK(first_a.starts_with("r=abc"));
  CHECK(first_a.find(",s=") == std::string_view("r=abc").size() + 24);
  CHECK(first_a != first_b);
}

TEST_CASE("a user name with ',' and '=' is escaped in client-first-message") {
  ScramClient client("pw", fixed("nonce"), "a,b=c");
  CHECK(client.client_first() == "n,,n=a=2Cb=3Dc,r=nonce");
}

TEST_CASE("a wrong password fails at the proof") {
  ScramClient client("pencil2");
  ScramServer server(rfc_verifier());
  const Exchange x = run_exchange(client, server);
  CHECK_FALSE(x.ok);
  CHECK(x.proof_failed);
  CHECK(x.error == "password authentication failed");
}

TEST_CASE("the user name in n= does not matter to the server") {
  ScramClient client("pencil", {}, "somebody-else");
  ScramServer server(rfc_verifier());
  CHECK(run_exchange(client, server).ok);
}

TEST_CASE("a verifier made by PostgreSQL 15 accepts its password") {
  ScramVerifier verifier;
  REQUIRE(parse_scram_verifier(kPostgresVerifier, verifier));
  CHECK(verifier.iterations == 4096);
  CHECK(verifier.salt.size() == 16);
  CHECK(make_scram_verifier("secret", verifier.salt, verifier.iterations).stored_key ==
        verifier.stored_key);

  ScramClient good("secret");
  ScramServer server(verifier);
  const Exchange x = run_exchange(good, server);
  CHECK_MESSAGE(x.ok, x.error);

  ScramClient bad("Secret");
  ScramServer server2(verifier);
  CHECK(run_exchange(bad, server2).proof_failed);
}

TEST_CASE("a verifier made here matches PostgreSQL's for the same salt") {
  ScramVerifier theirs;
  REQUIRE(parse_scram_verifier(kPostgresVerifier, theirs));
  CHECK(format_scram_verifier(make_scram_verifier("secret", theirs.salt, 4096)) ==
        kPostgresVerifier);
}

TEST_CASE("a verifier survives format and parse") {
  const ScramVerifier made = make_scram_verifier("pw", bytes({0xff, 0, 0x80, 7, 9}), 12345);
  const std::string text = format_scram_verifier(made);
  CHECK(text.starts_with("SCRAM-SHA-256$12345:/wCABwk=$"));
  ScramVerifier parsed;
  REQUIRE(parse_scram_verifier(text, parsed));
  CHECK(parsed.iterations == made.iterations);
  CHECK(parsed.salt == made.salt);
  CHECK(parsed.stored_key == made.stored_key);
  CHECK(parsed.server_key == made.server_key);
  CHECK(format_scram_verifier(parsed) == text);
}

TEST_CASE("malformed verifiers are rejected") {
  const std::string key = "98lNvidfDP4b3xx3TGoJVnUMFxX74fqJHpzhsKZVBXY=";
  const std::string salt = "hA70IFfozjGSEgSr2fhJ9A==";
  const std::vector<std::string> bad = {
      "",
      "md5ac2b10d9871b8fe9d086b7652279ff79",
      "secret",
      "SCRAM-SHA-1$4096:" + salt + "$" + key + ":" + key,
      "scram-sha-256$4096:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$",
      "SCRAM-SHA-256$4096:" + salt,
      "SCRAM-SHA-256$4096:" + salt + "$" + key,
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":",
      "SCRAM-SHA-256$0:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$-1:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$+4096:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$4096x:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$99999999999:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$4096:$" + key + ":" + key,                        // empty salt
      "SCRAM-SHA-256$4096:hA70IFfozjGSEgSr2fhJ9A=$" + key + ":" + key,  // bad padding
      "SCRAM-SHA-256$4096:hA70IFfozjGSEgSr2fh!9A==$" + key + ":" + key,
      "SCRAM-SHA-256$4096: " + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$4096:" + salt + "$" + salt + ":" + key,  // 16-byte StoredKey
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + key + "AAAA",
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + key + "$",
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + key + ":" + key,
      "SCRAM-SHA-256$4096$" + salt + ":" + key + ":" + key,
  };
  for (const std::string& text : bad) {
    CAPTURE(text);
    ScramVerifier v;
    CHECK_FALSE(parse_scram_verifier(text, v));
  }
  const std::string good(kPostgresVerifier);
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    CAPTURE(cut);
    ScramVerifier v;
    CHECK_FALSE(parse_scram_verifier(std::string_view(good).substr(0, cut), v));
  }
}

TEST_CASE("a mock verifier is stable per user and secret, and shaped like a real one") {
  const auto secret = bytes({1, 2, 3, 4, 5, 6, 7, 8});
  const ScramVerifier a = mock_scram_verifier("alice", secret);
  const ScramVerifier a2 = mock_scram_verifier("alice", secret);
  const ScramVerifier b = mock_scram_verifier("bob", secret);
  const ScramVerifier a_other = mock_scram_verifier("alice", bytes({9}));
  CHECK(format_scram_verifier(a) == format_scram_verifier(a2));
  CHECK(a.salt != b.salt);
  CHECK(a.stored_key != b.stored_key);
  CHECK(a.salt != a_other.salt);
  CHECK(a.iterations == 4096);
  CHECK(a.salt.size() == 16);
  CHECK(a.stored_key != a.server_key);
  ScramVerifier parsed;
  CHECK(parse_scram_verifier(format_scram_verifier(a), parsed));
  CHECK(mock_scram_verifier("alice", {}).salt.size() == 16);  // an empty secret still works
}

TEST_CASE("an unknown user goes through the same exchange and fails at the proof") {
  const ScramVerifier real = make_scram_verifier("pw", bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                              12, 13, 14, 15, 16}), 4096);
  const ScramVerifier mock = mock_scram_verifier("ghost", bytes({42, 43}));

  ScramClient to_real("wrong", fixed("cnonce"));
  ScramServer real_server(real, fixed("snonce"));
  ScramClient to_mock("pw", fixed("cnonce"));
  ScramServer mock_server(mock, fixed("snonce"));
  const Exchange real_x = run_exchange(to_real, real_server);
  const Exchange mock_x = run_exchange(to_mock, mock_server);

  // Same message shape: only the salt's bytes differ, not its length or the iterations.
  CHECK(real_x.server_first.size() == mock_x.server_first.size());
  CHECK(mock_x.server_first.starts_with("r=cnoncesnonce,s="));
  CHECK(mock_x.server_first.ends_with(",i=4096"));
  // Same failure, at the same step.
  CHECK_FALSE(mock_x.ok);
  CHECK(mock_x.proof_failed);
  CHECK(real_x.proof_failed);
  CHECK(mock_x.error == real_x.error);
}

TEST_CASE("the server accepts a 'y,,' GS2 header echoed as c=eSws") {
  ScramServer server(rfc_verifier(), fixed("srv"));
  std::string server_first;
  std::string server_final;
  std::string error;
  REQUIRE(server.handle_client_first("y,,n=,r=cli", server_first, error));
  const std::string without_proof = "c=eSws,r=clisrv";
  const std::string proof =
      proof_for("pencil", rfc_salt(), 4096, "n=,r=cli," + server_first + "," + without_proof);
  CHECK_MESSAGE(server.handle_client_final(without_proof + ",p=" + proof, server_final, error),
                error);
  CHECK(server_final.starts_with("v="));
}

TEST_CASE("the server ignores extensions before the proof") {
  ScramServer server(rfc_verifier(), fixed("srv"));
  std::string server_first;
  std::string server_final;
  std::string error;
  REQUIRE(server.handle_client_first("n,,n=,r=cli,x=ext", server_first, error));
  const std::string without_proof = "c=biws,r=clisrv,x=ext";
  const std::string proof = proof_for("pencil", rfc_salt(), 4096,
                                      "n=,r=cli,x=ext," + server_first + "," + without_proof);
  CHECK_MESSAGE(server.handle_client_final(without_proof + ",p=" + proof, server_final, error),
                error);
}

TEST_CASE("malformed client-first-messages are rejected") {
  const std::vector<std::string_view> bad = {
      "",
      "n",
      "n,",
      "n,,",
      "n,,n=",
      "n,,n=,",
      "n,,n=,r=",                            // empty nonce
      "n,,r=abc",                            // missing n=
      "n,,n=,s=abc",                         // missing r=
      "n,,n=,r=abc,",                        // trailing comma
      "n,,n=,r=abc,garbage",                 // not an attribute
      "n,,n=,r=abc,=x",
      "p=tls-server-end-point,,n=,r=abc",    // channel binding requested
      "p,,n=,r=abc",
      "x,,n=,r=abc",                         // unknown cbind flag
      "N,,n=,r=abc",
      "nn,,n=,r=abc",
      "n,a=admin,n=,r=abc",                  // authzid
      "n,,m=ext,n=,r=abc",                   // mandatory extension
      "n,,n=,r=a\x01" "bc",                  // non-printable nonce
      "n,,n=,r=a b",
      std::string_view("n,,n=,r=a\0b", 11),
      "n,,n=,r=ab\x80",
      " n,,n=,r=abc",
  };
  for (std::string_view message : bad) {
    CAPTURE(message);
    ScramServer server(rfc_verifier());
    std::string server_first;
    std::string error;
    CHECK_FALSE(server.handle_client_first(message, server_first, error));
    CHECK_FALSE(error.empty());
    CHECK_FALSE(server.proof_failed());
  }
}

TEST_CASE("a client-first-message with the p= flag names channel binding in the error") {
  ScramServer server(rfc_verifier());
  std::string server_first;
  std::string error;
  CHECK_FALSE(server.handle_client_first("p=tls-server-end-point,,n=,r=abc", server_first, error));
  CHECK(error.find("channel binding") != std::string::npos);
}

TEST_CASE("client-first-message cut before the first nonce byte is rejected") {
  for (std::size_t cut = 0; cut <= std::string_view("n,,n=user,r=").size(); ++cut) {
    CAPTURE(cut);
    ScramServer server(rfc_verifier());
    std::string server_first;
    std::string error;
    CHECK_FALSE(server.handle_client_first(kRfcClientFirst.substr(0, cut), server_first, error));
  }
}

TEST_CASE("malformed client-final-messages are rejected without a proof failure") {
  const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  const std::vector<std::string> bad = {
      "",
      nonce + "," + proof,                                  // missing c=
      "c=biws," + proof,                                    // missing r=
      "c=biws," + nonce,                                    // missing p=
      "c=biws," + nonce + ",",                              // trailing comma, no p=
      "c=bi!s," + nonce + "," + proof,                      // bad base64 in c=
      "c=biw," + nonce + "," + proof,                       // base64 without padding
      "c=eSws," + nonce + "," + proof,                      // "y,," but "n,," was sent
      "c=cCx0bHMtc2VydmVyLWVuZC1wb2ludCws," + nonce + "," + proof,  // p= header
      "c=," + nonce + "," + proof,                          // empty channel binding
      "c=biws,r=rOprNGfwEbeRWgbNEkqO," + proof,             // client nonce only
      "c=biws," + nonce + "x," + proof,                     // nonce mismatch
      "c=biws,r=xOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," + proof,
      "c=biws," + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",  // no padding
      "c=biws," + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And!Q=",
      "c=biws," + nonce + ",p=dHzbZapWIk4jUhN+Ute9yQ==",    // 16-byte proof
      "c=biws," + nonce + ",p=",                            // empty proof
      "c=biws," + nonce + "," + proof + ",x=1",             // attribute after the proof
      "c=biws," + nonce + "," + proof + ",",
      "c=biws," + nonce + ",garbage," + proof,
      "r=" + nonce + ",c=biws," + proof,                    // wrong order
  };
  for (const std::string& message : bad) {
    CAPTURE(message);
    ScramServer server = rfc_server_after_first();
    std::string server_final;
    std::string error;
    CHECK_FALSE(server.handle_client_final(message, server_final, error));
    CHECK_FALSE(error.empty());
    CHECK_FALSE(server.proof_failed());
  }
}

TEST_CASE("client-final-message cut at any offset is rejected") {
  for (std::size_t cut = 0; cut < kRfcClientFinal.size(); ++cut) {
    CAPTURE(cut);
    ScramServer server = rfc_server_after_first();
    std::string server_final;
    std::string error;
    CHECK_FALSE(server.handle_client_final(kRfcClientFinal.substr(0, cut), server_final, error));
    CHECK_FALSE(server.proof_failed());
  }
}

TEST_CASE("a proof with one flipped bit is a proof failure, not a syntax error") {
  ScramServer server = rfc_server_after_first();
  std::string message(kRfcClientFinal);
  message[message.size() - 3] = message[message.size() - 3] == 'V' ? 'W' : 'V';
  std::string server_final;
  std::string error;
  CHECK_FALSE(server.handle_client_final(message, server_final, error));
  CHECK(server.proof_failed());
  CHECK(error == "password authentication failed");
  CHECK(server_final.empty());
}

TEST_CASE("the server refuses messages out of order") {
  std::string out;
  std::string error;
  SUBCASE("final before first") {
    ScramServer server(rfc_verifier(), fixed(kRfcServerNonce));
    CHECK_FALSE(server.handle_client_final(kRfcClientFinal, out, error));
    CHECK_FALSE(server.handle_client_first(kRfcClientFirst, out, error));  // exchange is over
  }
  SUBCASE("first twice") {
    ScramServer server = rfc_server_after_first();
    CHECK_FALSE(server.handle_client_first(kRfcClientFirst, out, error));
    CHECK_FALSE(server.handle_client_final(kRfcClientFinal, out, error));
  }
  SUBCASE("final twice") {
    ScramServer server = rfc_server_after_first();
    CHECK(server.handle_client_final(kRfcClientFinal, out, error));
    CHECK_FALSE(server.handle_client_final(kRfcClientFinal, out, error));
  }
  SUBCASE("after a malformed first") {
    ScramServer server(rfc_verifier(), fixed(kRfcServerNonce));
    CHECK_FALSE(server.handle_client_first("n,,r=x", out, error));
    CHECK_FALSE(server.handle_client_first(kRfcClientFirst, out, error));
  }
}

TEST_CASE("malformed server-first-messages are rejected") {
  const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string salt = "s=W22ZaJ0SNY7soEsUEjb6gQ==";
  const std::vector<std::string> bad = {
      "",
      salt + ",i=4096",                                       // missing r=
      nonce + ",i=4096",                                      // missing s=
      nonce + "," + salt,                                     // missing i=
      nonce + "," + salt + ",",                               // trailing comma
      "r=rOprNGfwEbeRWgbNEkqO," + salt + ",i=4096",           // server added nothing
      "r=xOprNGfwEbeRWgbNEkqO%hv," + salt + ",i=4096",        // not our nonce
      "r=rOprNG," + salt + ",i=4096",                         // shorter than ours
      "r=rOprNGfwEbeRWgbNEkqO\x01," + salt + ",i=4096",       // non-printable
      nonce + ",s=," + "i=4096",                              // empty salt
      nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",            // bad padding
      nonce + ",s=W22ZaJ0SNY7so!sUEjb6gQ==,i=4096",           // bad character
      nonce + "," + salt + ",i=0",
      nonce + "," + salt + ",i=-1",
      nonce + "," + salt + ",i=+4096",
      nonce + "," + salt + ",i=",
      nonce + "," + salt + ",i=4096x",
      nonce + "," + salt + ",i= 4096",
      nonce + "," + salt + ",i=10000001",                     // too expensive
      nonce + "," + salt + ",i=99999999999999999999",
      nonce + "," + salt + ",i=4096,garbage",
      "m=ext," + nonce + "," + salt + ",i=4096",              // mandatory extension
      salt + "," + nonce + ",i=4096",                         // wrong order
      "e=other-error",
  };
  for (const std::string& message : bad) {
    CAPTURE(message);
    ScramClient client = rfc_client_after_first();
    std::string client_final;
    std::string error;
    CHECK_FALSE(client.handle_server_first(message, client_final, error));
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("server-first-message cut before the iteration count is rejected") {
  const std::size_t end = kRfcServerFirst.find(",i=") + 3;
  for (std::size_t cut = 0; cut <= end; ++cut) {
    CAPTURE(cut);
    ScramClient client = rfc_client_after_first();
    std::string client_final;
    std::string error;
    CHECK_FALSE(client.handle_server_first(kRfcServerFirst.substr(0, cut), client_final, error));
  }
}

TEST_CASE("the client ignores extensions after the iteration count") {
  ScramClient client = rfc_client_after_first();
  std::string client_final;
  std::string error;
  CHECK(client.handle_server_first(std::string(kRfcServerFirst) + ",x=ext", client_final, error));
}

TEST_CASE("the client checks the server signature") {
  std::string error;
  SUBCASE("a wrong signature") {
    ScramClient client = rfc_client_after_final();
    CHECK_FALSE(client.verify_server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", error));
    CHECK(error == "incorrect server signature");
  }
  SUBCASE("a server error") {
    ScramClient client = rfc_client_after_final();
    CHECK_FALSE(client.verify_server_final("e=invalid-proof", error));
    CHECK(error.find("invalid-proof") != std::string::npos);
  }
  SUBCASE("malformed messages") {
    for (std::string_view message :
         {std::string_view(""), std::string_view("v="), std::string_view("x=abc"),
          std::string_view("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
          std::string_view("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4"),
          std::string_view("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,"),
          std::string_view("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,junk"),
          std::string_view("v=6rriTRBi23WpRR/wtup+mQ==")}) {
      CAPTURE(message);
      ScramClient client = rfc_client_after_final();
      CHECK_FALSE(client.verify_server_final(message, error));
    }
  }
  SUBCASE("cut at any offset") {
    for (std::size_t cut = 0; cut < kRfcServerFinal.size(); ++cut) {
      CAPTURE(cut);
      ScramClient client = rfc_client_after_final();
      CHECK_FALSE(client.verify_server_final(kRfcServerFinal.substr(0, cut), error));
    }
  }
  SUBCASE("extensions after the signature") {
    ScramClient client = rfc_client_after_final();
    CHECK(client.verify_server_final(std::string(kRfcServerFinal) + ",x=1", error));
  }
}

TEST_CASE("the client refuses messages out of order") {
  std::string out;
  std::string error;
  SUBCASE("server-first before client-first") {
    ScramClient client("pencil", fixed(kRfcClientNonce), "user");
    CHECK_FALSE(client.handle_server_first(kRfcServerFirst, out, error));
  }
  SUBCASE("server-final before server-first") {
    ScramClient client = rfc_client_after_first();
    CHECK_FALSE(client.verify_server_final(kRfcServerFinal, error));
  }
  SUBCASE("server-final twice") {
    ScramClient client = rfc_client_after_final();
    CHECK(client.verify_server_final(kRfcServerFinal, error));
    CHECK_FALSE(client.verify_server_final(kRfcServerFinal, error));
  }
}

TEST_CASE("an unusable nonce source fails the exchange instead of sending a bad nonce") {
  std::string out;
  std::string error;
  SUBCASE("server") {
    for (std::string_view nonce : {std::string_view(""), std::string_view("a,b"),
                                   std::string_view("a b")}) {
      ScramServer server(rfc_verifier(), fixed(nonce));
      CHECK_FALSE(server.handle_client_first(kRfcClientFirst, out, error));
    }
  }
  SUBCASE("client") {
    ScramClient client("pencil", fixed("a,b"));
    CHECK(client.client_first() == "n,,n=,r=");
    CHECK_FALSE(client.handle_server_first(kRfcServerFirst, out, error));
  }
}
