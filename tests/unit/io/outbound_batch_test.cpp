// OutboundBatch against a real socket whose reader lags, so that a flush is queued.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "proxy/io/outbound_batch.h"

using namespace pgsidecar::proxy;

namespace {

struct Peer {
  int reader = -1;
  uv_loop_t loop{};
  uv_pipe_t writer{};

  Peer() {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    reader = fds[0];
    REQUIRE(fcntl(reader, F_SETFL, O_NONBLOCK) == 0);
    REQUIRE(uv_loop_init(&loop) == 0);
    REQUIRE(uv_pipe_init(&loop, &writer, 0) == 0);
    REQUIRE(uv_pipe_open(&writer, fds[1]) == 0);
  }
  ~Peer() {
    uv_close(reinterpret_cast<uv_handle_t*>(&writer), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    close(reader);
  }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&writer); }
  // Reads what is there now.
  void drain(std::string& into) {
    char buf[65536];
    ssize_t n;
    while ((n = read(reader, buf, sizeof buf)) > 0) into.append(buf, static_cast<std::size_t>(n));
  }
};

struct Done {
  bool called = false;
  int status = 1;
};

void on_written(uv_write_t* req, int status) {
  auto* done = static_cast<Done*>(req->data);
  done->called = true;
  done->status = status;
}

}  // namespace

TEST_CASE("a queued flush of scratch input copies it, so the scratch space may be reused") {
  Peer peer;
  // More than the socket buffers hold, so the first write takes only a part.
  std::vector<std::byte> scratch(4 * 1024 * 1024);
  for (std::size_t i = 0; i < scratch.size(); ++i) scratch[i] = static_cast<std::byte>('a' + i % 26);
  const std::string expected(reinterpret_cast<const char*>(scratch.data()), scratch.size());

  OutboundBatch batch;
  batch.add_input(scratch.data(), scratch.size());
  Done done;
  const auto result = batch.flush(peer.stream(), &done, on_written, OutboundBatch::Input::Scratch);
  REQUIRE(result == OutboundBatch::Flush::Queued);
  CHECK(batch.in_flight());
  std::memset(scratch.data(), 'z', scratch.size());  // the next read into the scratch space

  std::string received;
  for (int i = 0; i < 100000 && !done.called; ++i) {
    peer.drain(received);
    uv_run(&peer.loop, UV_RUN_NOWAIT);
  }
  REQUIRE(done.called);
  CHECK(done.status == 0);
  batch.complete();
  peer.drain(received);
  REQUIRE(received.size() == expected.size());
  CHECK(received == expected);
}

TEST_CASE("a flush the socket takes at once is sent and complete") {
  Peer peer;
  std::string query("Q\0\0\0\x0dSELECT 1", 14);
  OutboundBatch batch;
  batch.add_input(reinterpret_cast<const std::byte*>(query.data()), 5);
  batch.injected_out().assign(reinterpret_cast<const std::byte*>(query.data()) + 5,
                              reinterpret_cast<const std::byte*>(query.data()) + query.size());
  batch.commit_injected();
  Done done;
  REQUIRE(batch.flush(peer.stream(), &done, on_written, OutboundBatch::Input::Scratch) == OutboundBatch::Flush::Sent);
  CHECK_FALSE(batch.in_flight());
  CHECK(batch.empty());
  std::string received;
  peer.drain(received);
  CHECK(received == query);
}
