#include "proxy/routing/health_monitor.h"

#include "protocol/password.h"
#include "proxy/core/log.h"
#include "proxy/routing/primary_choice.h"

namespace pgsidecar::proxy {
namespace {

// A failing server that is not yet down is probed again this soon.
constexpr std::chrono::milliseconds kRetryDelay{100};

// The login for probes: the URL's own user, else the first user with a plain-text password.
void probe_login(const config::Config& cfg, const config::ServerAddress& a, std::string& user, std::string& password) {
  if (!a.user.empty()) {
    user = a.user;
    password = a.password;
    return;
  }
  for (const auto& u : cfg.users) {
    const std::string& p = u.server_password.empty() ? u.password : u.server_password;
    if (protocol::password_kind(p) != protocol::PasswordKind::Plain) continue;
    user = u.name;
    password = p;
    return;
  }
  if (!cfg.users.empty()) user = cfg.users.front().name;
}

}  // namespace

HealthMonitor::HealthMonitor(std::shared_ptr<const config::Config> config, Publish publish)
    : config_(std::move(config)), publish_(std::move(publish)), instance_id_(new_instance_id()) {
  std::lock_guard lock(mu_);
  for (const auto& db : config_->databases) add_database_locked(db);
  rebuild_locked();
}

void HealthMonitor::add_database_locked(const config::Database& db) {
  if (dbs_.count(db.name) != 0) return;
  DbState st;
  const std::string dbname = db.primary.dbname.empty() ? db.name : db.primary.dbname;
  ensure_probed(db.primary, dbname, db);
  st.keys.push_back(server_key(db.primary));
  for (const auto& r : db.replicas) {
    ensure_probed(r, r.dbname.empty() ? db.name : r.dbname, db);
    st.keys.push_back(server_key(r));
  }
  if (db.fleet_max_connections > 0)
    log_info("fleet_budget")
        .kv("database", db.name)
        .kv("fleet_max_connections", db.fleet_max_connections)
        .kv("identity", probe_identity(db.name, instance_id_));
  st.primary = 0;
  dbs_.emplace(db.name, std::move(st));
}

void HealthMonitor::reload(std::shared_ptr<const config::Config> config) {
  std::lock_guard lock(mu_);
  config_ = std::move(config);
  for (const auto& db : config_->databases) add_database_locked(db);
  rebuild_locked();
}

HealthMonitor::~HealthMonitor() { stop(); }

std::unique_ptr<Prober> HealthMonitor::make_prober(const config::ServerAddress& address, const std::string& dbname,
                                                   const config::Database& db) const {
  std::string user, password;
  probe_login(*config_, address, user, password);
  return std::make_unique<Prober>(address, user, password, dbname, probe_identity(db.name, instance_id_),
                                  db.fleet_max_connections > 0 ? fleet_prefix(db.name) : std::string());
}

void HealthMonitor::ensure_probed(const config::ServerAddress& address, const std::string& dbname,
                                  const config::Database& db) {
  const std::string key = server_key(address);
  if (auto it = probed_.find(key); it != probed_.end()) {
    // Another entry's identity is on the health prober: a fleet entry gets a seat of its own.
    Probed& p = *it->second;
    if (db.fleet_max_connections <= 0 || p.identity_database == db.name) return;
    for (const auto& seat : p.seats)
      if (seat->database == db.name) return;
    p.seats.push_back(std::make_unique<Seat>(Seat{db.name, make_prober(address, dbname, db), {}}));
    return;
  }
  auto p = std::make_unique<Probed>();
  p->key = key;
  p->address = address;
  p->prober = make_prober(address, dbname, db);
  p->identity_database = db.name;
  p->status.address = address;
  p->status.key = key;
  Probed* raw = p.get();
  probed_.emplace(key, std::move(p));
  if (started_) raw->thread = std::thread([this, raw] { run(raw); });
}

void HealthMonitor::current_login_locked(const Probed& p, std::string& user, std::string& password) const {
  const config::ServerAddress* address = &p.address;  // a server no entry names any more
  for (const auto& db : config_->databases) {
    if (server_key(db.primary) == p.key) address = &db.primary;
    for (const auto& r : db.replicas)
      if (server_key(r) == p.key) address = &r;
    if (address != &p.address) break;
  }
  probe_login(*config_, *address, user, password);
}

void HealthMonitor::start() {
  std::lock_guard lock(mu_);
  started_ = true;
  for (auto& [key, p] : probed_) {
    Probed* raw = p.get();
    raw->thread = std::thread([this, raw] { run(raw); });
  }
}

void HealthMonitor::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& [key, p] : probed_)
    if (p->thread.joinable()) p->thread.join();
}

std::shared_ptr<const TopologySnapshot> HealthMonitor::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

void HealthMonitor::suspect(const std::string& key) {
  {
    std::lock_guard lock(mu_);
    auto it = probed_.find(key);
    if (it == probed_.end()) return;
    it->second->suspect = true;
  }
  cv_.notify_all();
}

void HealthMonitor::run(Probed* p) {
  for (;;) {
    std::chrono::milliseconds timeout;
    bool count = false;
    std::vector<Seat*> seats;
    std::string user, password;
    {
      std::lock_guard lock(mu_);  // a reload may replace the snapshot and add seats meanwhile
      timeout = config_->health.timeout;
      count = p->probes_until_count == 0;
      for (auto& seat : p->seats) seats.push_back(seat.get());
      current_login_locked(*p, user, password);
    }
    // This thread alone uses the probers: a rotated password reaches them between probes.
    p->prober->set_login(user, password);
    for (Seat* seat : seats) seat->prober->set_login(user, password);
    // Outside the lock: each may take `timeout`.
    const auto started = std::chrono::steady_clock::now();
    const ProbeResult r = p->prober->probe(timeout, count);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    if (count && r.ok)
      for (Seat* seat : seats) seat->last = seat->prober->count(timeout);
    std::unique_lock lock(mu_);
    if (stopping_) return;
    const config::Health& h = config_->health;
    p->status.last_probe_seconds = took.count();
    if (count && r.ok) {
      p->probes_until_count = kFleetCountEvery - 1;
      record_fleet(p, p->identity_database, r);
      for (Seat* seat : seats) record_fleet(p, seat->database, seat->last);
    } else if (p->probes_until_count > 0) {
      --p->probes_until_count;
    }
    record(p, r);
    const bool failing = !r.ok && p->status.health != ServerHealth::Down;
    const auto delay = failing ? std::min<std::chrono::milliseconds>(kRetryDelay, h.interval) : h.interval;
    cv_.wait_for(lock, delay, [&] { return stopping_ || p->suspect; });
    p->suspect = false;
    if (stopping_) return;
  }
}

void HealthMonitor::record(Probed* p, const ProbeResult& r) {
  const config::Health& h = config_->health;
  ServerStatus& s = p->status;
  const ServerHealth before = s.health;
  const ServerRole role_before = s.role;
  s.last_probe = std::chrono::system_clock::now();
  s.last_probe_ok = r.ok;
  if (r.ok) {
    s.consecutive_failures = 0;
    ++s.consecutive_successes;
    s.role = r.in_recovery ? ServerRole::Replica : ServerRole::Primary;
    s.lag_seconds = r.lag_seconds;
    s.timeline = r.timeline;
    s.last_error.clear();
    if (s.health != ServerHealth::Up && s.consecutive_successes >= h.successes_before_up) s.health = ServerHealth::Up;
  } else {
    s.consecutive_successes = 0;
    ++s.consecutive_failures;
    s.last_error = r.error;
    if (s.consecutive_failures >= h.failures_before_down) s.health = ServerHealth::Down;
  }
  if (s.health != before || s.role != role_before) {
    auto line = s.health == ServerHealth::Down ? log_warn("server_health") : log_info("server_health");
    line.kv("server", p->key).kv("health", to_string(s.health)).kv("role", to_string(s.role));
    if (!r.ok) line.kv("error", r.error);
  }
  rebuild_locked();
}

// A count that failed keeps the last one: the pools keep the share they have.
void HealthMonitor::record_fleet(Probed* p, const std::string& database, const ProbeResult& r) {
  if (!r.fleet) {
    if (!r.fleet_error.empty() || !r.error.empty())
      log_warn("fleet_count_failed")
          .kv("database", database)
          .kv("server", p->key)
          .kv("error", r.fleet_error.empty() ? r.error : r.fleet_error);
    return;
  }
  Probed::Counted& known = p->fleet[database];
  if (known.count.sidecars != r.fleet->sidecars || known.count.rank != r.fleet->rank)
    log_info("fleet_count")
        .kv("database", database)
        .kv("server", p->key)
        .kv("sidecars", r.fleet->sidecars)
        .kv("rank", r.fleet->rank);
  known.count = *r.fleet;
  ++known.counts;
}

void HealthMonitor::rebuild_locked() {
  auto snap = std::make_shared<TopologySnapshot>();
  snap->version = ++version_;
  for (auto& [name, st] : dbs_) {
    DatabaseTopology t;
    t.name = name;
    t.paused = st.paused;
    for (const auto& key : st.keys) {
      const Probed& p = *probed_.at(key);
      ServerStatus s = p.status;
      s.refused = false;
      s.refused_reason.clear();
      if (auto f = p.fleet.find(name); f != p.fleet.end() && f->second.counts >= 2) s.fleet = f->second.count;
      t.servers.push_back(std::move(s));
    }
    // Roles come from the servers: of those claiming to be primary, the newest timeline,
    // then the configured order. Never two primaries.
    const int chosen = choose_primary(t.servers, st.primary);
    if (chosen != st.primary) {
      log_warn("primary_changed")
          .kv("database", name)
          .kv("from", st.primary >= 0 ? st.keys[static_cast<std::size_t>(st.primary)] : std::string("none"))
          .kv("to", st.keys[static_cast<std::size_t>(chosen)]);
      st.primary = chosen;
    }
    t.primary = st.primary;
    if (refuse_other_primaries(t.servers, t.primary) > 0) {
      for (const ServerStatus& other : t.servers) {
        if (!other.refused) continue;
        log_error("two_primaries")
            .kv("database", name)
            .kv("serving", st.keys[static_cast<std::size_t>(t.primary)])
            .kv("refused", other.key)
            .kv("detail", other.refused_reason);
      }
    }
    snap->databases.emplace(name, std::move(t));
  }
  snapshot_ = snap;
  if (publish_) publish_(snap);
}

bool HealthMonitor::pause(const std::string& database, bool paused) {
  std::lock_guard lock(mu_);
  auto it = dbs_.find(database);
  if (it == dbs_.end()) return false;
  it->second.paused = paused;
  rebuild_locked();
  return true;
}

ProbeResult HealthMonitor::check_server(const std::string& database, const config::ServerAddress& address) const {
  std::string user, password;
  std::chrono::milliseconds timeout;
  {
    std::lock_guard lock(mu_);
    probe_login(*config_, address, user, password);
    timeout = config_->health.timeout;
  }
  Prober prober(address, user, password, address.dbname.empty() ? database : address.dbname,
                "pgsidecar-switchover-check");
  return prober.probe(timeout);
}

bool HealthMonitor::repoint(const std::string& database, const config::ServerAddress& address) {
  std::lock_guard lock(mu_);
  auto it = dbs_.find(database);
  if (it == dbs_.end()) return false;
  const config::Database* db = config_->find_database(database);
  config::Database entry;  // a dropped entry: probed without a fleet budget
  entry.name = database;
  ensure_probed(address, address.dbname.empty() ? (db != nullptr ? db->name : database) : address.dbname,
                db != nullptr ? *db : entry);
  DbState& st = it->second;
  const std::string key = server_key(address);
  // The new primary takes slot 0; if it was a replica of this entry, it leaves that slot.
  for (std::size_t i = 1; i < st.keys.size(); ++i)
    if (st.keys[i] == key) {
      st.keys.erase(st.keys.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  st.keys[0] = key;
  st.primary = 0;
  st.paused = false;
  log_warn("switchover_done").kv("database", database).kv("primary", key);
  rebuild_locked();
  return true;
}

}  // namespace pgsidecar::proxy
