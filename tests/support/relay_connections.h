// The connections of one FaultRelay (tests/support/fault_relay.h) and what they share: the
// mode they follow, the cap on the bytes they hold, and the counters. Everything here
// runs on the relay's loop thread, except reading the counters.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace pgsidecar::testing::relay {

enum class Mode {
  Pass,          // forward both ways at once
  Delay,         // forward both ways, each chunk `delay` after it arrived
  Stall,         // hold both ways; new connections wait before connecting onward
  StallReplies,  // forward client to server, hold server to client
  HoldNew,       // existing connections forward; new ones wait before connecting onward
  Drop,          // discard both ways; new connections are never connected onward
  Reset,         // reset every connection, existing and new
};

// Written on the loop thread, read from any.
struct Counters {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> open{0};  // accepted and not yet freed
  std::atomic<std::uint64_t> client_to_server{0};
  std::atomic<std::uint64_t> server_to_client{0};
  std::atomic<std::uint64_t> discarded{0};
  std::atomic<std::uint64_t> held{0};
};

class RelayedConnection;

class ConnectionTable {
 public:
  ConnectionTable(uv_loop_t* loop, const sockaddr_storage& target, std::size_t max_held_bytes,
                  Mode mode, std::chrono::milliseconds delay);
  ~ConnectionTable();  // after close_all() and a loop run: by then the table is empty
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;

  // Accepts one connection from the listener and treats it as the mode says.
  void accept(uv_stream_t* listener);
  // Applies at once to every connection, and to the ones accepted later.
  void set_mode(Mode mode, std::chrono::milliseconds delay);
  // Closes every connection with FIN; each is freed from its last close callback.
  void close_all();

  const Counters& counters() const { return counters_; }

 private:
  friend class RelayedConnection;

  void forget(std::uint64_t id);  // frees the connection: its last handle has closed
  void add_held(std::size_t n);
  void release_held(std::size_t n);
  void update_reading_everywhere();

  uv_loop_t* loop_;
  sockaddr_storage target_;
  std::size_t max_held_bytes_;
  Mode mode_;
  std::chrono::milliseconds delay_;
  std::size_t held_ = 0;         // read and not yet written, over all connections
  bool reading_paused_ = false;  // held_ reached the cap; reads resume at half of it
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::unique_ptr<RelayedConnection>> connections_;
  std::vector<char> read_buffer_;  // each read is copied or dropped before the next
  Counters counters_;
};

}  // namespace pgsidecar::testing::relay
