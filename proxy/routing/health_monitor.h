// Probes every server of every [[databases]] entry on threads of its own (one per server,
// so a dead server's timeouts never delay another's probes), decides each server's health
// and role, and publishes TopologySnapshots. A failure seen in live traffic (suspect())
// triggers an immediate probe, and failed probes repeat quickly until the server is
// declared down, so detection does not wait for the next interval.
//
// For entries with fleet_max_connections, every kFleetCountEvery probes also count the
// sidecars serving the entry on each of its servers (probe.h); the count goes out in the
// snapshot (ServerStatus::fleet) for the pools to take their share. A sidecar's first
// count is published only with its second, one count period later: by then the sidecars
// already running have counted the newcomer too and given up their part of its share.
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

// Probes between two fleet counts: a count is a little more work than a health probe,
// and sidecars come and go on the scale of seconds.
inline constexpr unsigned kFleetCountEvery = 4;

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
  // This process's part of the probe connections' application_name (probe.h).
  const std::string& instance_id() const { return instance_id_; }

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
  // One probe of `address` on a connection of its own, as `database`'s probes log in:
  // whether it answers and is in recovery (SWITCHOVER's check). Any thread; takes up to
  // [health] timeout.
  ProbeResult check_server(const std::string& database, const config::ServerAddress& address) const;

 private:
  // A fleet entry's presence on a server whose health prober carries another entry's
  // identity: a connection of its own, used only to count.
  struct Seat {
    std::string database;
    std::unique_ptr<Prober> prober;
    ProbeResult last;
  };
  struct Probed {  // one server, shared by the database entries that name it
    std::string key;
    config::ServerAddress address;
    std::unique_ptr<Prober> prober;  // health; its identity names the first entry naming the server
    std::string identity_database;
    std::vector<std::unique_ptr<Seat>> seats;  // never removed: the probe thread holds pointers
    struct Counted {
      FleetCount count;
      unsigned counts = 0;  // published from the second on
    };
    std::map<std::string, Counted, std::less<>> fleet;  // by entry
    unsigned probes_until_count = 0;
    std::thread thread;
    bool suspect = false;
    ServerStatus status;
  };
  void ensure_probed(const config::ServerAddress& address, const std::string& dbname, const config::Database& db);
  std::unique_ptr<Prober> make_prober(const config::ServerAddress& address, const std::string& dbname,
                                      const config::Database& db) const;
  void add_database_locked(const config::Database& db);
  // The probe login the current configuration gives this server (after a reload too).
  void current_login_locked(const Probed& p, std::string& user, std::string& password) const;
  void run(Probed* p);
  void record(Probed* p, const ProbeResult& r);
  void record_fleet(Probed* p, const std::string& database, const ProbeResult& r);
  void rebuild_locked();  // recompute topology from statuses, publish

  std::shared_ptr<const config::Config> config_;
  Publish publish_;
  const std::string instance_id_;
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
