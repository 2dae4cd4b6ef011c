// The server side of SCRAM-SHA-256-PLUS (tls-server-end-point, RFC 5929) and the
// channel-binding flag rules of RFC 5802 section 6.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "protocol/scram.h"

using namespace pgsidecar::protocol;

namespace {

ScramVerifier verifier() {
  const std::vector<std::byte> salt(16, std::byte{7});
  return make_scram_verifier("secret", salt, 4096);
}

const std::vector<unsigned char> kEndPoint{1, 2, 3, 4, 5, 6, 7, 8};
std::string as_text(const std::vector<unsigned char>& v) { return {v.begin(), v.end()}; }

struct Outcome {
  bool ok = false;
  std::string error;
};

// A client with `flag` and `client_data` against a server that offered PLUS (`offered`)
// with kEndPoint, the client having chosen it (`selected`).
Outcome exchange(char flag, std::string client_data, bool offered, bool selected) {
  ScramServer server(verifier());
  if (offered) server.set_channel_binding(kEndPoint, selected);
  ScramClient client("secret");
  client.set_channel_binding(flag, std::move(client_data));
  Outcome o;
  std::string server_first, client_final, server_final;
  o.ok = server.handle_client_first(client.client_first(), server_first, o.error) &&
         client.handle_server_first(server_first, client_final, o.error) &&
         server.handle_client_final(client_final, server_final, o.error) &&
         client.verify_server_final(server_final, o.error);
  return o;
}

}  // namespace

TEST_CASE("SCRAM-SHA-256-PLUS succeeds when the client binds to the server's end point") {
  const Outcome o = exchange('p', as_text(kEndPoint), true, true);
  CHECK(o.ok);
  CHECK(o.error.empty());
}

TEST_CASE("SCRAM-SHA-256-PLUS fails when the client's TLS session has another end point (a man in the middle)") {
  const Outcome o = exchange('p', "another certificate hash", true, true);
  CHECK_FALSE(o.ok);
  CHECK(o.error == "SCRAM channel binding check failed");
}

TEST_CASE("a client that sends the y flag while PLUS was offered is refused") {
  const Outcome o = exchange('y', "", true, false);
  CHECK_FALSE(o.ok);
  CHECK(o.error.find("channel binding negotiation error") != std::string::npos);
}

TEST_CASE("the y flag is accepted when PLUS was not offered (a plain connection)") {
  CHECK(exchange('y', "", false, false).ok);
}

TEST_CASE("plain SCRAM-SHA-256 over TLS, without binding, still succeeds") {
  CHECK(exchange('n', "", true, false).ok);
}

TEST_CASE("choosing SCRAM-SHA-256-PLUS and then sending the n flag is refused") {
  const Outcome o = exchange('n', "", true, true);
  CHECK_FALSE(o.ok);
  CHECK(o.error.find("does not include channel binding data") != std::string::npos);
}

TEST_CASE("binding data under plain SCRAM-SHA-256 is refused") {
  const Outcome o = exchange('p', as_text(kEndPoint), true, false);
  CHECK_FALSE(o.ok);
  CHECK(o.error.find("without channel binding") != std::string::npos);
}

TEST_CASE("a channel-binding type other than tls-server-end-point is refused") {
  ScramServer server(verifier());
  server.set_channel_binding(kEndPoint, true);
  std::string server_first, error;
  CHECK_FALSE(server.handle_client_first("p=tls-unique,,n=,r=abc", server_first, error));
  CHECK(error.find("tls-server-end-point") != std::string::npos);
}
