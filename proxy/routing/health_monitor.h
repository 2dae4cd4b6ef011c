// Probes every server of every [[databases]] entry on threads of its own (one per server,
// so a dead server's timeouts never delay another's probes), decides each server's health
// and role, and publishes TopologySnapshots. A failure seen in live traffic (suspect())
// triggers an immediate probe, and failed probes repeat quickly until the server is
// declared down, so detection does not wait for the next interval.
#pragma once

#include "proxy/routing/layer.h"

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/schema.h"
#include "proxy/routing/probe.h"
#include "proxy/routing/topology.h"

namespace pgsidecar::proxy {

class HealthMonitor {
 public:
  using Publish = std::function<void(std::shared_ptr<const TopologySnapshot>)>;

  HealthMonitor(std::shared_ptr<const config::Config> config, Publish publish);
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;
  ~HealthMonitor();  // stops and joins the probe threads

  void start();
  void stop();
  std::shared_ptr<const TopologySnapshot> snapshot() const;

  // Any thread: live traffic saw this server fail (refused, reset, admin shutdown).
  void suspect(const std::string& server_key);

  // Switchover of `database` to `address`: pause() makes new transactions wait; repoint()
  // makes `address` the primary and resumes. Both publish a new snapshot.
  bool pause(const std::string& database, bool paused);
  // A reloaded configuration: entries it adds are probed and routable from now on. Entries
  // it drops stay known, so that sessions that logged in to them keep working (they drain);
  // new logins to them are refused by the configuration itself.
  void reload(std::shared_ptr<const config::Config> config);
  bool repoint(const std::string& database, const config::ServerAddress& address);

 private:
  struct Probed {  // one server, shared by the database entries that name it
    std::string key;
    config::ServerAddress address;
    std::unique_ptr<Prober> prober;
    std::thread thread;
    bool suspect = false;
    ServerStatus status;
  };
  void ensure_probed(const config::ServerAddress& address, const std::string& dbname);
  void add_database_locked(const config::Database& db);
  void run(Probed* p);
  void record(Probed* p, const ProbeResult& r);
  void rebuild_locked();  // recompute topology from statuses, publish

  std::shared_ptr<const config::Config> config_;
  Publish publish_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  std::map<std::string, std::unique_ptr<Probed>> probed_;
  struct DbState {
    std::vector<std::string> keys;  // [0] primary, then replicas
    int primary = -1;
    bool paused = false;
  };
  std::map<std::string, DbState, std::less<>> dbs_;
  std::shared_ptr<const TopologySnapshot> snapshot_;
  uint64_t version_ = 0;
};

}  // namespace pgsidecar::proxy
