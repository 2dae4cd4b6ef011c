#include "proxy/pool.h"

#include <algorithm>

#include "protocol/sqlstate.h"
#include "proxy/app.h"
#include "proxy/client_session.h"
#include "proxy/log.h"
#include "proxy/server_conn.h"
#include "proxy/worker.h"

namespace pgsidecar::proxy {

namespace sqlstate = protocol::sqlstate;

bool PoolLimits::try_reserve() {
  int open = open_.load();
  while (open < size_) {
    if (open_.compare_exchange_weak(open, open + 1)) return true;
  }
  return false;
}

void PoolLimits::release() { open_.fetch_sub(1); }

void PoolLimits::store_server_params(const ParamMap& params) {
  std::lock_guard lock(mu_);
  server_params_ = params;
  have_params_ = true;
}

bool PoolLimits::load_server_params(ParamMap& out) const {
  std::lock_guard lock(mu_);
  if (!have_params_) return false;
  out = server_params_;
  return true;
}

std::shared_ptr<PoolLimits> PoolRegistry::get(const PoolKey& key, int size) {
  std::lock_guard lock(mu_);
  auto& slot = pools_[key];
  if (!slot) slot = std::make_shared<PoolLimits>(size);
  return slot;
}

PoolShard::PoolShard(Worker& worker, PoolKey key, std::shared_ptr<const config::Config> config,
                     const config::Database& db, const config::User& user, const config::ServerAddress& server,
                     std::shared_ptr<PoolLimits> limits)
    : worker_(worker), key_(std::move(key)), db_(db), config_(std::move(config)), limits_(std::move(limits)) {
  // DESIGN: a URL that names a user forces that login for every client of the entry.
  const config::ServerAddress& a = server;
  target_.host = a.host;
  target_.port = a.port;
  target_.database = a.dbname.empty() ? db.name : a.dbname;
  if (!a.user.empty()) {
    target_.user = a.user;
    target_.password = a.password;
  } else {
    target_.user = user.name;
    target_.password = user.server_password.empty() ? user.password : user.server_password;
    // A SCRAM verifier or an md5 hash cannot answer a server's password request.
    if (target_.password.rfind("SCRAM-SHA-256$", 0) == 0) target_.password.clear();
  }
  auto opt = a.options.find("options");
  if (opt != a.options.end()) target_.startup_options.emplace_back("options", opt->second);
  auto app = a.options.find("application_name");
  if (app != a.options.end()) target_.startup_options.emplace_back("application_name", app->second);
  const int workers = std::max(1, worker_.app().worker_count());
  const int size = limits_->size();
  share_ = size / workers + (worker_.id() < size % workers ? 1 : 0);
  if (!resolve_server_address(target_, address_, address_error_)) {
    log_error("server_address_unresolved").kv("database", db.name).kv("error", address_error_);
  }
}

PoolShard::~PoolShard() {
  if (starving_) limits_->starving.fetch_sub(1);
}

int PoolShard::count_in(std::initializer_list<int> states) const {
  int n = 0;
  for (const auto& [id, s] : servers_)
    for (int st : states)
      if (static_cast<int>(s->state()) == st) ++n;
  return n;
}

int PoolShard::active_count() const {
  return count_in({static_cast<int>(ServerState::Active), static_cast<int>(ServerState::Resetting)});
}

int PoolShard::connecting_count() const {
  return count_in({static_cast<int>(ServerState::Connecting), static_cast<int>(ServerState::LoggingIn)});
}

void PoolShard::acquire(ClientSession& session) {
  waiters_.push_back(Waiter{session.id(), worker_.now()});
  limits_->waiting.fetch_add(1);
  serve_waiters();
  if (!waiters_.empty()) {
    open_connections();

  }
}

int PoolShard::waiting_elsewhere() const {
  return limits_->waiting.load() - static_cast<int>(waiters_.size());
}

// Slots move between workers only for a worker whose clients are starving (waiting longer
// than kStarvingAfter at the global limit): under steady load every worker's clients are
// served by its own connections, and nothing is closed and reopened.
bool PoolShard::other_worker_starving() const {
  return limits_->starving.load() - (starving_ ? 1 : 0) > 0 && limits_->open() >= limits_->size();
}

bool PoolShard::should_return_slot() const { return owned() > share_ && other_worker_starving(); }

void PoolShard::cancel_wait(SessionId id) {
  if (waiters_.erase_first([id](const Waiter& w) { return w.session == id; })) limits_->waiting.fetch_sub(1);
}

void PoolShard::serve_waiters() {
  while (!waiters_.empty() && !idle_.empty()) {
    ServerConn* server = idle_.back();  // most recently used: warm caches, fewer re-Parses
    idle_.pop_back();
    if (!give_to_waiter(*server)) {
      idle_.push_back(server);
      break;
    }
  }
}

void PoolShard::on_server_closing(ServerConn& server) { remove_idle(server); }

bool PoolShard::give_to_waiter(ServerConn& server) {
  if (server.state() == ServerState::Closing) return false;
  while (!waiters_.empty()) {
    const Waiter w = waiters_.front();
    waiters_.pop_front();
    limits_->waiting.fetch_sub(1);
    ClientSession* session = worker_.find_session(w.session);
    if (session == nullptr) continue;  // left while waiting
    session->on_server_assigned(server);
    return true;
  }
  return false;
}

void PoolShard::open_connections() {
  if (!address_error_.empty()) {
    fail_waiters(protocol::make_error(sqlstate::kSqlclientUnableToEstablishSqlconnection,
                                      "cannot reach the server of database \"" + db_.name + "\": " + address_error_));
    return;
  }
  int wanted = static_cast<int>(waiters_.size()) - connecting_count();
  // Beyond this worker's share, take a free slot only if no other worker is waiting for it.
  while (wanted-- > 0 && (owned() < share_ || waiting_elsewhere() == 0) && limits_->try_reserve()) spawn_server();
}

void PoolShard::spawn_server() {
  const ServerId id = next_server_++;
  auto conn = std::make_unique<ServerConn>(worker_, *this, id);
  ServerConn* raw = conn.get();
  servers_.emplace(id, std::move(conn));
  raw->connect();  // may fail at once and close: the object lives until its handles close
}

void PoolShard::release(ServerConn& server, ReleaseKind kind) {
  if (server.state() == ServerState::Closing) return;
  switch (kind) {
    case ReleaseKind::Close:
      server.close("released in an unknown state");
      return;
    case ReleaseKind::Reset:
      server.start_reset("DISCARD ALL");
      return;
    case ReleaseKind::Reusable:
      on_server_ready(server);
      return;
  }
}

void PoolShard::on_server_ready(ServerConn& server) {
  const auto now = worker_.now();
  const auto lifetime = settings().server_lifetime;
  if (lifetime.count() > 0 && now - server.created_at() > lifetime) {
    server.close("server_lifetime reached");
    return;
  }
  // Each worker is entitled to its share of the pool's size; beyond it a worker only
  // borrows, and gives a borrowed slot back when another worker has clients waiting.
  // Within shares nothing is closed, so busy workers do not churn connections.
  if (should_return_slot()) {
    server.close("slot returned to another worker");
    return;
  }
  if (give_to_waiter(server)) return;
  // Nobody here wants it right now. If another worker's clients starve, on_server_wanted()
  // hands the slot over once it has stayed idle past kStarvingAfter.
  server.make_idle();
  idle_.push_back(&server);
}

void PoolShard::remove_idle(ServerConn& server) {
  auto it = std::find(idle_.begin(), idle_.end(), &server);
  if (it != idle_.end()) idle_.erase(it);
}

void PoolShard::on_server_failed(ServerConn& server, const protocol::ErrorFields& why) {
  remove_idle(server);
  last_failure_ = worker_.now();
  // Refused, timed out or shutting down: tell the health monitor now, not at the next probe.
  if (why.sqlstate.rfind("08", 0) == 0 || why.sqlstate.rfind("57P", 0) == 0) worker_.app().suspect(key_.server);
  // Waiters fail only when nothing else could serve them soon: no server is busy (and so
  // about to come back) on this worker.
  if (active_count() == 0) {
    protocol::ErrorFields e = why;
    e.severity = "ERROR";
    if (e.sqlstate.rfind("08", 0) != 0 && e.sqlstate != sqlstate::kInvalidPassword &&
        e.sqlstate != sqlstate::kInvalidCatalogName)
      e.sqlstate = sqlstate::kSqlclientUnableToEstablishSqlconnection;
    e.message = "server connection for database \"" + db_.name + "\" failed: " + why.message;
    fail_waiters(e);
  }
}

void PoolShard::fail_waiters(const protocol::ErrorFields& why) {
  while (!waiters_.empty()) {
    const Waiter w = waiters_.front();
    waiters_.pop_front();
    limits_->waiting.fetch_sub(1);
    if (ClientSession* s = worker_.find_session(w.session)) s->on_server_unavailable(why);
  }
}

void PoolShard::on_server_closed(ServerConn& server) {
  remove_idle(server);
  auto it = servers_.find(server.id());
  if (it == servers_.end()) return;
  servers_.erase(it);  // deletes the server
  limits_->release();
  if (!waiters_.empty()) open_connections();
  if (waiting_elsewhere() > 0) worker_.app().broadcast_slot_freed(key_, worker_.id());
}

void PoolShard::on_slot_freed() {
  if (!waiters_.empty()) open_connections();
}

void PoolShard::on_server_wanted() {
  // A server idle for a while means no client of this worker wants one: hand the slot
  // over. One idle for a moment between two transactions of a busy worker stays, or both
  // workers of a saturated pool would keep closing and reopening connections.
  if (idle_.empty() || worker_.now() - idle_.front()->idle_since() < kStarvingAfter) return;
  ServerConn* s = idle_.front();  // least recently used
  idle_.erase(idle_.begin());
  s->close("slot handed to another worker");
}

void PoolShard::update_starving(std::chrono::steady_clock::time_point now) {
  const bool starving = !waiters_.empty() && now - waiters_.front().since >= kStarvingAfter &&
                        limits_->open() >= limits_->size();
  if (starving != starving_) {
    starving_ = starving;
    limits_->starving.fetch_add(starving ? 1 : -1);
  }
  if (starving) worker_.app().broadcast_server_wanted(key_, worker_.id());
}

void PoolShard::tick(std::chrono::steady_clock::time_point now) {
  const auto& cfg = settings();
  update_starving(now);
  // query_wait_timeout: the oldest waiters are at the front.
  while (!waiters_.empty() && now - waiters_.front().since >= cfg.query_wait_timeout) {
    const Waiter w = waiters_.front();
    waiters_.pop_front();
    limits_->waiting.fetch_sub(1);
    ClientSession* s = worker_.find_session(w.session);
    if (s == nullptr) continue;
    s->on_server_unavailable(protocol::make_error(
        sqlstate::kTooManyConnections,
        "query_wait_timeout: no server connection for database \"" + db_.name + "\" and user \"" + key_.user +
            "\" became free within " + std::to_string(cfg.query_wait_timeout.count()) + " ms (pool size " +
            std::to_string(limits_->size()) + ", all in use)"));
  }
  // Idle servers: server_idle_timeout and server_lifetime.
  for (std::size_t i = 0; i < idle_.size();) {
    ServerConn* s = idle_[i];
    const bool too_idle = cfg.server_idle_timeout.count() > 0 && now - s->idle_since() > cfg.server_idle_timeout &&
                          static_cast<int>(idle_.size()) > cfg.min_idle;
    const bool too_old = cfg.server_lifetime.count() > 0 && now - s->created_at() > cfg.server_lifetime;
    if (too_idle || too_old) {
      idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
      s->close(too_idle ? "server_idle_timeout" : "server_lifetime");
      continue;
    }
    ++i;
  }
  // min_idle: keep warm connections, but not hammer a failing server (one try a second).
  if (cfg.min_idle > 0 && now - last_failure_ > std::chrono::seconds(1) && address_error_.empty()) {
    int missing = cfg.min_idle - static_cast<int>(idle_.size()) - connecting_count();
    while (missing-- > 0 && limits_->try_reserve()) spawn_server();
  }
}

void PoolShard::close_idle() {
  std::vector<ServerConn*> idle;
  idle.swap(idle_);
  for (ServerConn* s : idle) s->close("no longer a target of its database");
}

void PoolShard::close_all() {
  waiters_.clear();
  std::vector<ServerConn*> all;
  for (auto& [id, s] : servers_) all.push_back(s.get());
  idle_.clear();
  for (ServerConn* s : all) s->close("shutting down");
}

}  // namespace pgsidecar::proxy
