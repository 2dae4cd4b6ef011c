// A listening socket owned by one worker: TCP (SO_REUSEPORT, so every worker has its own
// and the kernel spreads connections) or a Unix socket (.s.PGSQL.<port>, on worker 0).
#pragma once

#include "proxy/runtime/layer.h"

#include <uv.h>

#include <string>

#include "proxy/io/uv_handle.h"

namespace pgsidecar::proxy {

class Worker;

class Listener {
 public:
  explicit Listener(Worker& worker);
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener();

  bool listen_tcp(const std::string& address, uint16_t port, std::string& error);
  bool listen_unix(const std::string& path, std::string& error);
  void close();  // stops accepting; idempotent
  bool closed() const { return !open_; }

 private:
  static void on_connection(uv_stream_t* server, int status);
  static void on_closed(void*) {}  // owned by the worker, which outlives its loop

  Worker& worker_;
  io::HandleGroup handles_;
  io::Stream stream_;
  bool open_ = false;
  std::string unix_path_;
};

}  // namespace pgsidecar::proxy
