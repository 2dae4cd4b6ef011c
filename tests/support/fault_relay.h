// A TCP relay that injects network faults between a client (pgsidecar, psql) and a server
// (PostgreSQL) on loopback, for tests and benchmarks: the kernel here has no netem, so
// partitions and slow links are made by putting this relay in the path.
//
// It listens on 127.0.0.1, connects every accepted connection to one target, and forwards
// bytes both ways, as the current mode says. A mode applies at once to existing and new
// connections; each models one failure:
//
//   pass()           a healthy network: bytes go both ways as they arrive.
//   delay(d)         a slow link: every chunk is forwarded d after it arrived, in each
//                    direction (a round trip costs 2d), order preserved.
//   stall()          a paused VM (SIGSTOP, live migration, GC pause): connections are
//                    accepted and bytes read, but nothing is forwarded and no new
//                    connection reaches the server. Leaving the mode (pass, delay)
//                    connects the waiting ones and delivers what was held, in order.
//   stall_replies()  a half-open connection: requests reach the server, its replies are
//                    held until the mode changes.
//   hold_new()       slow connection setup (a SYN queue full, a busy postmaster): existing
//                    connections go on as in pass(); new ones are accepted and their bytes
//                    read, but they reach the server only when the mode changes.
//   drop()           a partition (blackhole): bytes from either side are read and thrown
//                    away, and new connections are accepted but never connected onward,
//                    not even after the partition heals. Existing connections forward
//                    again after pass(), minus what was thrown away, and an end of stream
//                    thrown away stays lost: such a connection stays half open.
//   reset()          a crash or a firewall sending RST: every connection is closed with
//                    RST on both sides, and new ones are reset as soon as accepted.
//
// The relay runs its own libuv loop on its own thread. The mode setters are safe from any
// thread and return once the relay applied the mode (at most kCommandTimeout, else they
// throw std::runtime_error), so bytes a test sends after stall() are held.
//
// Memory is bounded: once the bytes held or being written pass Options::max_held_bytes,
// the relay stops reading from every socket until they fall to half of it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace pgsidecar::testing {

struct FaultRelayStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t bytes_client_to_server = 0;  // written to the server
  std::uint64_t bytes_server_to_client = 0;  // written to the client
  std::uint64_t bytes_discarded = 0;         // thrown away in drop()
  std::uint64_t held_bytes = 0;              // read and not yet written out
};

class FaultRelay {
 public:
  struct Options {
    std::string target_host = "127.0.0.1";  // an address or a name getaddrinfo resolves
    int target_port = 0;
    int listen_port = 0;  // 0: a free port, see port()
    std::chrono::milliseconds delay{0};  // > 0 starts in delay(delay), else in pass()
    std::size_t max_held_bytes = std::size_t{64} << 20;
  };

  static constexpr std::chrono::seconds kCommandTimeout{10};

  // Binds, listens and starts the relay's thread; throws std::runtime_error when the
  // target does not resolve or the port cannot be bound.
  explicit FaultRelay(Options options);
  FaultRelay(std::string target_host, int target_port);
  ~FaultRelay();  // stop()
  FaultRelay(const FaultRelay&) = delete;
  FaultRelay& operator=(const FaultRelay&) = delete;

  int port() const { return port_; }

  void pass();
  void delay(std::chrono::milliseconds each_way);
  void stall();
  void stall_replies();
  void hold_new();
  void drop();
  void reset();

  FaultRelayStats stats() const;  // safe from any thread

  // Closes every connection (FIN, not RST) and the listener, and joins the thread.
  // Idempotent; the mode setters do nothing afterwards.
  void stop();

 private:
  class Loop;  // everything libuv: lives on the relay's thread once started

  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace pgsidecar::testing
