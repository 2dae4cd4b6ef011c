// The fault-injection relay between plain loopback sockets: each mode on connections
// made before it and after it, the order of held bytes, and the cap on what it holds.
#include "tests/support/fault_relay.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include "unit/relay/loopback.h"

namespace {

using namespace std::chrono_literals;
using pgsidecar::testing::Clock;
using pgsidecar::testing::End;
using pgsidecar::testing::eventually;
using pgsidecar::testing::FaultRelay;
using pgsidecar::testing::listen_loopback;
using pgsidecar::testing::LoopbackClient;
using pgsidecar::testing::LoopbackServer;

// Long enough for a byte that should not arrive to have arrived, were it forwarded.
constexpr auto kQuiet = 200ms;

// Sends bytes and expects them echoed back within a few seconds.
void round_trip(LoopbackClient& client, const std::string& bytes) {
  REQUIRE(client.send(bytes));
  CHECK(client.read(bytes.size(), 5s) == bytes);
}

std::string pattern(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + i % 23);
  return s;
}

}  // namespace

TEST_CASE("pass forwards bytes both ways and counts connections and bytes") {
  LoopbackServer server;
  FaultRelay relay("127.0.0.1", server.port());
  CHECK(relay.port() > 0);
  LoopbackClient client(relay.port());
  REQUIRE(client.connected());
  round_trip(client, "hello");
  round_trip(client, pattern(300'000));
  CHECK(server.received(0) == "hello" + pattern(300'000));

  CHECK(eventually([&] { return relay.stats().bytes_server_to_client == 300'005; }));
  const auto stats = relay.stats();
  CHECK(stats.connections_accepted == 1);
  CHECK(stats.connections_open == 1);
  CHECK(stats.bytes_client_to_server == 300'005);
  CHECK(stats.bytes_discarded == 0);
  CHECK(stats.held_bytes == 0);
}

TEST_CASE("an end of stream is passed on and both sockets close") {
  LoopbackServer server;
  FaultRelay relay("127.0.0.1", server.port());
  LoopbackClient client(relay.port());
  round_trip(client, "bye");
  client.shutdown_write();
  // The server sees the FIN and closes; its FIN comes back the same way.
  CHECK(client.wait_end(5s) == End::Eof);
  CHECK(eventually([&] { return server.eofs() == 1; }));
  CHECK(eventually([&] { return relay.stats().connections_open == 0; }));
}

TEST_CASE("delay holds every chunk for its delay in each direction, in order") {
  LoopbackServer server;
  FaultRelay relay("127.0.0.1", server.port());
  LoopbackClient before(relay.port());
  round_trip(before, "warm");

  relay.delay(50ms);
  LoopbackClient after(relay.port());
  for (LoopbackClient* client : {&before, &after}) {
    const auto started = Clock::now();
    round_trip(*client, "ping");
    const auto took = Clock::now() - started;
    CHECK(took >= 100ms);
    CHECK(took < 5s);
  }

  // Chunks sent apart arrive in the order sent.
  for (const char* piece : {"a", "b", "c", "d"}) {
    REQUIRE(before.send(piece));
    std::this_thread::sleep_for(7ms);
  }
  CHECK(before.read(4, 5s) == "abcd");

  relay.pass();
  const auto started = Clock::now();
  round_trip(before, "quick");
  CHECK(Clock::now() - started < 5s);
}

TEST_CASE("stall holds connections and bytes, and pass delivers them in order") {
  LoopbackServer server;
  FaultRelay relay("127.0.0.1", server.port());
  LoopbackClient before(relay.port());
  round_trip(before, "x");

  std::thread([&] { relay.stall(); }).join();  // any thread may change the mode
  for (const char* piece : {"1", "2", "3"}) {
    REQUIRE(before.send(piece));
    std::this_thread::sleep_for(5ms);
  }
  LoopbackClient during(relay.port());
  REQUIRE(during.connected());
  REQUIRE(during.send("two"));

  CHECK(eventually([&] { return relay.stats().held_bytes == 6; }));
  CHECK(before.read(1, kQuiet).empty());
  CHECK(server.received(0) == "x");
  CHECK(server.accepted() == 1);  // the new connection waits in the relay
  CHECK(relay.stats().connections_accepted == 2);

  relay.pass();
  CHECK(before.read(3, 5s) == "123");
  CHECK(during.read(3, 5s) == "two");
  CHECK(server.accepted() == 2);
  CHECK(server.received(1) == "two");
  CHECK(eventually([&] { return relay.stats().held_bytes == 0; }));
}

TEST_CASE("delay after stall delivers what was held, once it is due") {
  LoopbackServer server;
  FaultRelay relay("127.0.0.1", server.port());
  LoopbackClient client(relay.port());
  round_trip(client, "x");
  relay.stall();
  REQUIRE(client.send("held"));
  CHECK(eventually([&] { return relay.stats().held_bytes == 4; }));
  relay.delay(20ms);
  CHECK(client.read(4, 5s) == "held");
}

TEST_CASE("stall_replies lets requests through and holds the replies") {
  LoopbackServer server;
  FaultRelay relay("127.0.0.1", server.port());
  LoopbackClient before(relay.port());
  round_trip(before, "x");

  relay.stall_replies();
  REQUIRE(before.send("ping"));
  LoopbackClient during(relay.port());
  REQUIRE(during.send("new"));
  CHECK(eventually([&] { return server.received(0) == "xping"; }));
  CHECK(eventually([&] { return server.received(1) == "new"; }));
  CHECK(eventually([&] { return relay.stats().held_bytes == 7; }));
  CHECK(before.read(1, kQuiet).empty());
  CHECK(during.read(1, 10ms).empty());

  relay.pass();
  CHECK(before.read(4, 5s) == "ping");
  CHECK(during.read(3, 5s) == "new");
}

TEST_CASE("drop never delivers, and connections accepted during it never reach the server") {
  LoopbackServer server;
  FaultRelay relay("127.0.0.1", server.port());
  LoopbackClient before(relay.port());
  round_trip(before, "x");

  relay.drop();
  REQUIRE(before.send("lost"));
  LoopbackClient during(relay.port());
  REQUIRE(during.connected());
  REQUIRE(during.send("gone"));
  CHECK(eventually([&] { return relay.stats().bytes_discarded == 8; }));
  CHECK(before.read(1, kQuiet).empty());
  CHECK(server.received(0) == "x");
  CHECK(server.accepted() == 1);
  CHECK(relay.stats().held_bytes == 0);

  // After the partition heals, existing connections forward again, minus what was lost;
  // the connection accepted during it stays unconnected.
  relay.pass();
  round_trip(before, "back");
  CHECK(server.received(0) == "xback");
  REQUIRE(during.send("more"));
  CHECK(during.read(1, kQuiet).empty());
  CHECK(server.accepted() == 1);
  CHECK(eventually([&] { return relay.stats().bytes_discarded == 12; }));
}

TEST_CASE("reset closes every connection with RST and resets new ones until the mode changes") {
  LoopbackServer server;
  FaultRelay relay("127.0.0.1", server.port());
  LoopbackClient before(relay.port());
  round_trip(before, "x");

  relay.reset();
  const auto started = Clock::now();
  CHECK(before.wait_end(5s) == End::Reset);
  CHECK(Clock::now() - started < 2s);
  CHECK(eventually([&] { return server.resets() == 1; }));

  LoopbackClient during(relay.port());
  if (during.connected()) CHECK(during.wait_end(2s) == End::Reset);
  CHECK(server.accepted() == 1);

  relay.pass();
  LoopbackClient after(relay.port());
  round_trip(after, "again");
  CHECK(relay.stats().connections_accepted == 3);
  CHECK(eventually([&] { return relay.stats().connections_open == 1; }));
}

TEST_CASE("a connection the target refuses is reset") {
  int closed_port = 0;
  ::close(listen_loopback(closed_port));
  FaultRelay relay("127.0.0.1", closed_port);
  LoopbackClient client(relay.port());
  REQUIRE(client.connected());
  CHECK(client.wait_end(5s) == End::Reset);
}

TEST_CASE("held bytes past the cap stop the reading until they drain") {
  constexpr std::size_t kCap = 256 * 1024;
  constexpr std::size_t kReadSize = 64 * 1024;  // one read may overshoot the cap
  LoopbackServer server(LoopbackServer::Reply::Silent);
  FaultRelay relay(FaultRelay::Options{
      .target_host = "127.0.0.1", .target_port = server.port(), .max_held_bytes = kCap});
  LoopbackClient client(relay.port());
  REQUIRE(client.send("x"));
  REQUIRE(eventually([&] { return server.received(0) == "x"; }));

  relay.stall();
  const std::string bytes = pattern(8 * 1024 * 1024);
  bool sent = false;
  std::thread writer([&] { sent = client.send(bytes); });
  CHECK(eventually([&] { return relay.stats().held_bytes >= kCap; }));
  std::this_thread::sleep_for(kQuiet);
  CHECK(relay.stats().held_bytes <= kCap + kReadSize);
  CHECK(server.received(0) == "x");

  relay.pass();
  writer.join();
  CHECK(sent);
  CHECK(eventually([&] { return server.total_received() == bytes.size() + 1; }, 30s));
  CHECK(server.received(0) == "x" + bytes);
  CHECK(eventually([&] { return relay.stats().held_bytes == 0; }));
}

TEST_CASE("stop closes every connection with FIN, and later mode changes do nothing") {
  LoopbackServer server;
  FaultRelay relay("127.0.0.1", server.port());
  LoopbackClient client(relay.port());
  round_trip(client, "x");
  relay.stop();
  CHECK(client.wait_end(5s) == End::Eof);
  CHECK(eventually([&] { return server.eofs() == 1; }));
  CHECK_NOTHROW(relay.stall());
  relay.stop();
  CHECK(LoopbackClient(relay.port()).connected() == false);
}
