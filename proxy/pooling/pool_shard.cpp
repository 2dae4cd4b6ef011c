#include "proxy/pooling/pool_shard.h"

#include <algorithm>

#include "protocol/password.h"
#include "proxy/core/log.h"
#include "proxy/pooling/server_conn.h"

namespace pgsidecar::proxy {

PoolShard::PoolShard(io::Loop& loop, RuntimeServices& runtime, LesseeDirectory& lessees, PoolKey key,
                     std::shared_ptr<const config::Config> config, const config::Database& db,
                     const config::User& user, const config::ServerAddress& server, std::shared_ptr<PoolLimits> limits)
    : loop_(loop),
      runtime_(runtime),
      lessees_(lessees),
      key_(std::move(key)),
      config_(std::move(config)),
      db_(db),
      limits_(std::move(limits)) {
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
    if (protocol::password_kind(target_.password) == protocol::PasswordKind::ScramVerifier) target_.password.clear();
  }
  auto opt = a.options.find("options");
  if (opt != a.options.end()) target_.startup_options.emplace_back("options", opt->second);
  auto app = a.options.find("application_name");
  if (app != a.options.end()) target_.startup_options.emplace_back("application_name", app->second);
  share_ = worker_share(limits_->size(), runtime_.worker_count(), loop_.id());
  if (!resolve_server_address(target_, address_, address_error_)) {
    log_error("server_address_unresolved").kv("database", db.name).kv("error", address_error_);
  }
}

PoolShard::~PoolShard() {
  if (starving_) limits_->starving.fetch_sub(1);
}

int PoolShard::active_count() const {
  int n = 0;
  for (const auto& [id, s] : servers_) n += s->leased_or_resetting() ? 1 : 0;
  return n;
}

int PoolShard::connecting_count() const {
  int n = 0;
  for (const auto& [id, s] : servers_) n += s->logging_in() ? 1 : 0;
  return n;
}

Acquired PoolShard::acquire(ServerLessee& session) {
  Acquired out;
  // The queue is served whenever a server comes free, so an idle server means nobody waits.
  if (waiters_.empty() && !idle_.empty()) {
    ServerConn* server = idle_.back();  // most recently used: warm caches, fewer re-Parses
    idle_.pop_back();
    server->activate(session);
    out.kind = Acquired::Kind::Leased;
    out.server = server;
    return out;
  }
  if (!address_error_.empty()) {
    out.kind = Acquired::Kind::Refused;
    out.error = make_error(ProxyErrc::ServerUnreachable, {db_.name, address_error_});
    return out;
  }
  waiters_.push_back(Waiter{session.lessee_id(), loop_.now()});
  limits_->waiting.fetch_add(1);
  open_connections();
  return out;
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

void PoolShard::on_server_closing(ServerConn& server) { remove_idle(server); }

ServerLessee* PoolShard::pop_waiter() {
  while (!waiters_.empty()) {
    const Waiter w = waiters_.front();
    waiters_.pop_front();
    limits_->waiting.fetch_sub(1);
    if (ServerLessee* session = lessees_.find_lessee(w.session)) return session;  // else it left while waiting
  }
  return nullptr;
}

bool PoolShard::give_to_waiter(ServerConn& server) {
  if (server.closing()) return false;
  ServerLessee* session = pop_waiter();
  if (session == nullptr) return false;
  server.activate(*session);
  session->on_server_assigned(server);
  return true;
}

void PoolShard::open_connections() {
  int wanted = static_cast<int>(waiters_.size()) - connecting_count();
  // Beyond this worker's share, take a free slot only if no other worker is waiting for it.
  while (wanted-- > 0 && (owned() < share_ || waiting_elsewhere() == 0) && limits_->try_reserve()) spawn_server();
}

void PoolShard::spawn_server() {
  const ServerId id = next_server_++;
  auto conn = std::make_unique<ServerConn>(loop_, *this, id);
  ServerConn* raw = conn.get();
  servers_.emplace(id, std::move(conn));
  raw->connect();  // may fail at once and close: the object lives until its handles close
}

void PoolShard::release(ServerConn& server, ReleaseKind kind) {
  if (server.closing()) return;
  switch (kind) {
    case ReleaseKind::Close:
      server.close(ServerCloseReason::Unclean);
      return;
    case ReleaseKind::Reset:
      server.start_reset();
      return;
    case ReleaseKind::Reusable:
      on_server_ready(server);
      return;
  }
}

void PoolShard::on_server_ready(ServerConn& server) {
  const auto now = loop_.now();
  const auto lifetime = settings().server_lifetime;
  if (lifetime.count() > 0 && now - server.created_at() > lifetime) {
    server.close(ServerCloseReason::Lifetime);
    return;
  }
  // Each worker is entitled to its share of the pool's size; beyond it a worker only
  // borrows, and gives a borrowed slot back when another worker has clients waiting.
  // Within shares nothing is closed, so busy workers do not churn connections.
  if (should_return_slot()) {
    server.close(ServerCloseReason::Rebalanced, "slot returned to another worker");
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

void PoolShard::on_server_failed(ServerConn& server, const ProxyError& why) {
  remove_idle(server);
  last_failure_ = loop_.now();
  // Refused, timed out or shutting down: tell the health monitor now, not at the next probe.
  if (is_connection_trouble(why.sqlstate)) suspect_server();
  // Waiters fail only when nothing else could serve them soon: no server is busy (and so
  // about to come back) on this worker.
  if (active_count() == 0) {
    ProxyError e = make_error(ProxyErrc::ServerConnectionFailed, {db_.name, why.message});
    e.sqlstate = login_failure_sqlstate(why.sqlstate);
    fail_waiters(e);
  }
}

void PoolShard::fail_waiters(const ProxyError& why) {
  while (ServerLessee* session = pop_waiter()) session->on_server_unavailable(why);
}

void PoolShard::on_server_closed(ServerConn& server) {
  remove_idle(server);
  auto it = servers_.find(server.id());
  if (it == servers_.end()) return;
  servers_.erase(it);  // deletes the server
  limits_->release();
  if (!waiters_.empty()) open_connections();
  if (waiting_elsewhere() > 0) runtime_.broadcast_slot_freed(key_, loop_.id());
}

void PoolShard::on_slot_freed() {
  if (!waiters_.empty()) open_connections();
}

void PoolShard::on_server_wanted() {
  // A server idle for a while means no client of this worker wants one: hand the slot
  // over. One idle for a moment between two transactions of a busy worker stays, or both
  // workers of a saturated pool would keep closing and reopening connections.
  if (idle_.empty() || loop_.now() - idle_.front()->idle_since() < kStarvingAfter) return;
  ServerConn* s = idle_.front();  // least recently used
  idle_.erase(idle_.begin());
  s->close(ServerCloseReason::Rebalanced, "slot handed to another worker");
}

void PoolShard::update_starving(std::chrono::steady_clock::time_point now) {
  const bool starving = !waiters_.empty() && now - waiters_.front().since >= kStarvingAfter &&
                        limits_->open() >= limits_->size();
  if (starving != starving_) {
    starving_ = starving;
    limits_->starving.fetch_add(starving ? 1 : -1);
  }
  if (starving) runtime_.broadcast_server_wanted(key_, loop_.id());
}

void PoolShard::tick(std::chrono::steady_clock::time_point now) {
  const auto& cfg = settings();
  update_starving(now);
  // query_wait_timeout: the oldest waiters are at the front.
  while (!waiters_.empty() && now - waiters_.front().since >= cfg.query_wait_timeout) {
    const Waiter w = waiters_.front();
    waiters_.pop_front();
    limits_->waiting.fetch_sub(1);
    ServerLessee* session = lessees_.find_lessee(w.session);
    if (session == nullptr) continue;  // left while waiting
    session->on_server_unavailable(make_error(
        ProxyErrc::QueryWaitTimeout, {db_.name, key_.user, std::to_string(cfg.query_wait_timeout.count()),
                                      std::to_string(limits_->size())}));
  }
  // Idle servers: server_idle_timeout and server_lifetime.
  for (std::size_t i = 0; i < idle_.size();) {
    ServerConn* s = idle_[i];
    const bool too_idle = cfg.server_idle_timeout.count() > 0 && now - s->idle_since() > cfg.server_idle_timeout &&
                          static_cast<int>(idle_.size()) > cfg.min_idle;
    const bool too_old = cfg.server_lifetime.count() > 0 && now - s->created_at() > cfg.server_lifetime;
    if (too_idle || too_old) {
      idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
      s->close(too_idle ? ServerCloseReason::IdleTimeout : ServerCloseReason::Lifetime);
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
  for (ServerConn* s : idle) s->close(ServerCloseReason::NotATarget);
}

void PoolShard::close_all() {
  waiters_.clear();
  std::vector<ServerConn*> all;
  for (auto& [id, s] : servers_) all.push_back(s.get());
  idle_.clear();
  for (ServerConn* s : all) s->close(ServerCloseReason::Shutdown);
}

}  // namespace pgsidecar::proxy
