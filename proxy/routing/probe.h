// One health probe of one server with libpq's non-blocking API and a hard deadline:
// connect (or reuse the probe connection), then ask whether it is in recovery and how far
// its replay lags. Runs on the health monitor's threads, never on a worker loop.
#pragma once

#include "proxy/routing/layer.h"

#include <libpq-fe.h>

#include <chrono>
#include <string>

#include "config/schema.h"

namespace pgsidecar::proxy {

struct ProbeResult {
  bool ok = false;
  bool in_recovery = false;
  double lag_seconds = 0;
  std::string error;
};

class Prober {
 public:
  Prober(config::ServerAddress address, std::string user, std::string password, std::string dbname);
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;
  ~Prober();

  ProbeResult probe(std::chrono::milliseconds timeout);

 private:
  bool connect(std::chrono::steady_clock::time_point deadline, std::string& error);
  bool wait_socket(bool for_write, std::chrono::steady_clock::time_point deadline);
  void disconnect();

  config::ServerAddress address_;
  std::string user_, password_, dbname_;
  PGconn* conn_ = nullptr;
};

}  // namespace pgsidecar::proxy
