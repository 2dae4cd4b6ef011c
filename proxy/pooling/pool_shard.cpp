#include "proxy/pooling/pool_shard.h"

#include <algorithm>
#include <atomic>
#include <optional>

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
      limits_(std::move(limits)),
      tls_(entry_address(db, server)) {
  server_ = server;
  const config::ServerAddress& a = entry_address(db, server);
  target_.host = a.host;
  target_.port = a.port;
  target_.database = a.dbname.empty() ? db.name : a.dbname;
  server_login(user, a, target_.user, target_.password);
  auto opt = a.options.find("options");
  if (opt != a.options.end()) target_.startup_options.emplace_back("options", opt->second);
  auto app = a.options.find("application_name");
  if (app != a.options.end()) target_.startup_options.emplace_back("application_name", app->second);
  if (!resolve_server_address(target_, address_, address_error_)) {
    log_error("server_address_unresolved").kv("database", db.name).kv("error", address_error_);
  }
  if (!tls_.error().empty()) log_error("server_tls_unusable").kv("database", db.name).kv("error", tls_.error());
}

// Entries naming the same server share its probe, and the topology names the server by
// the first entry's URL; but each entry logs in with its own URL's user and password (a
// forced user of one entry must not become another's).
const config::ServerAddress& PoolShard::entry_address(const config::Database& db, const config::ServerAddress& server) {
  const auto same = [&](const config::ServerAddress& a) {
    return a.host == server.host && a.port == server.port && a.dbname == server.dbname;
  };
  if (same(db.primary)) return db.primary;
  for (const auto& r : db.replicas)
    if (same(r)) return r;
  return server;  // a SWITCHOVER target
}

// DESIGN: a URL that names a user forces that login for every client of the entry.
void PoolShard::server_login(const config::User& user, const config::ServerAddress& a, std::string& login_user,
                             std::string& password) {
  if (!a.user.empty()) {
    login_user = a.user;
    password = a.password;
    return;
  }
  login_user = user.name;
  password = user.server_password.empty() ? user.password : user.server_password;
  // A SCRAM verifier or an md5 hash cannot answer a server's password request.
  if (protocol::password_kind(password) == protocol::PasswordKind::ScramVerifier) password.clear();
}

void PoolShard::refresh_login(const config::Config& config) {
  const config::Database* db = config.find_database(key_.database);
  const config::User* user = config.find_user(key_.user);
  if (db == nullptr || user == nullptr) return;  // gone: its sessions keep their snapshot
  const config::ServerAddress& address = entry_address(*db, server_);
  if (&address == &server_) return;  // no longer named by the entry (or a SWITCHOVER target)
  std::string login_user, password;
  server_login(*user, address, login_user, password);
  // Only the password: a different user is a different pool's business.
  if (login_user == target_.user) target_.password = std::move(password);
}

PoolShard::~PoolShard() {
  if (starving_) limits_->starving.fetch_sub(1);
  set_logins_held_back(0);
}

int PoolShard::active_count() const {
  int n = 0;
  for (const auto& [id, s] : servers_) n += s.conn->leased_or_resetting() ? 1 : 0;
  return n;
}

int PoolShard::connecting_count() const {
  int n = 0;
  for (const auto& [id, s] : servers_) n += s.conn->logging_in() ? 1 : 0;
  return n;
}

// The limit in force (size, effective size, fleet share) moves; so does each worker's part.
int PoolShard::share() const { return worker_share(limits_->cap(), runtime_.worker_count(), loop_.id()); }

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
  return limits_->starving.load() - (starving_ ? 1 : 0) > 0 && limits_->open() >= limits_->cap();
}

bool PoolShard::should_return_slot() const { return owned() > share() && other_worker_starving(); }

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
  const int wanted = static_cast<int>(waiters_.size()) - connecting_count();
  int started = 0;
  Opening last = Opening::NoSlot;
  // Beyond this worker's share, take a free slot only if no other worker is waiting for it.
  while (started < wanted && (owned() < share() || waiting_elsewhere() == 0)) {
    last = try_open();
    if (last != Opening::Started) break;
    ++started;
  }
  // Logins the gate held back start when a login to this server ends (on_slot_freed).
  set_logins_held_back(last == Opening::Gated ? wanted - started : 0);
}

PoolShard::Opening PoolShard::try_open() {
  if (!limits_->try_reserve(loop_.now())) return Opening::NoSlot;
  if (!limits_->gate().try_enter(settings().max_concurrent_logins)) {
    limits_->release();
    return Opening::Gated;
  }
  spawn_server();
  return Opening::Started;
}

void PoolShard::set_logins_held_back(int n) {
  if (n == logins_held_back_) return;
  limits_->gate().add_waiting(n - logins_held_back_);
  logins_held_back_ = n;
}

void PoolShard::spawn_server() {
  // Unique across pools and workers (proxy/core/ids.h): a session remembers servers by id.
  static std::atomic<ServerId> next_server{1};
  const ServerId id = next_server.fetch_add(1, std::memory_order_relaxed);
  auto conn = std::make_unique<ServerConn>(loop_, *this, id);
  ServerConn* raw = conn.get();
  servers_.emplace(id, Owned{std::move(conn)});
  ++slots_held_;
  raw->connect();  // may fail at once and close: the object lives until its handles close
}

void PoolShard::shed(ServerConn& server) {
  auto it = servers_.find(server.id());
  if (it != servers_.end() && it->second.holds_slot) {
    it->second.holds_slot = false;
    --slots_held_;
  }
  server.close(ServerCloseReason::Rebalanced, "above this sidecar's fleet share");
}

void PoolShard::release(ServerConn& server, ReleaseKind kind) {
  if (server.closing()) return;
  if (server.cancel_in_flight()) {  // no other client until the server has taken it
    server.hold_release(kind);
    return;
  }
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
  // The fleet share shrank (more sidecars): hand back connections as they come free.
  if (limits_->try_shed()) {
    shed(server);
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
  // No room on the server is backpressure, not failure: the waiters stay queued for a
  // connection of this pool coming free, or for a later login that finds room, up to
  // query_wait_timeout. A server that cannot take connections now (starting, stopping)
  // counts only while the pool holds working ones; with none, nothing would come free.
  const LoginRefusal refusal = classify_login_refusal(why.sqlstate);
  if (refusal == LoginRefusal::Full || (refusal == LoginRefusal::NotNow && limits_->working() > 0)) {
    limits_->capacity_refused(loop_.now(), why.message);
    log_warn("server_capacity_refused")
        .kv("worker", loop_.id())
        .kv("database", db_.name)
        .kv("server", key_.server)
        .kv("sqlstate", why.sqlstate)
        .kv("effective_size", limits_->effective())
        .kv("waiting", limits_->waiting.load())
        .kv("error", why.message);
    return;
  }
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

void PoolShard::on_login_ended(bool logged_in) {
  LoginGate& gate = limits_->gate();
  gate.leave();
  if (logged_in) limits_->login_succeeded();
  // Logins held back on any worker, this one included, may start: on the next loop turn,
  // not from inside this connection's change of state.
  if (gate.waiting() > 0) runtime_.broadcast_login_slot_freed(key_.server);
}

void PoolShard::on_working_closed() { limits_->working_closed(); }

ServerConn* PoolShard::find_server(ServerId id) {
  auto it = servers_.find(id);
  return it == servers_.end() ? nullptr : it->second.conn.get();
}

void PoolShard::on_server_closed(ServerConn& server) {
  remove_idle(server);
  auto it = servers_.find(server.id());
  if (it == servers_.end()) return;
  const bool held = it->second.holds_slot;
  servers_.erase(it);  // deletes the server
  if (!held) return;  // shed: its slot was given back when it began closing
  --slots_held_;
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
                        limits_->open() >= limits_->cap();
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
  std::optional<ProxyError> expired;
  while (!waiters_.empty() && now - waiters_.front().since >= cfg.query_wait_timeout) {
    const Waiter w = waiters_.front();
    waiters_.pop_front();
    limits_->waiting.fetch_sub(1);
    ServerLessee* session = lessees_.find_lessee(w.session);
    if (session == nullptr) continue;  // left while waiting
    if (!expired) expired = wait_timeout_error();
    session->on_server_unavailable(*expired);
  }
  // Requests a server is slow to answer: suspect_after, query_timeout.
  if (active_count() > 0) {
    std::vector<ServerConn*> active;
    for (auto& [id, owned] : servers_)
      if (owned.conn->state() == ServerState::Active) active.push_back(owned.conn.get());
    for (ServerConn* s : active) s->watch_request(now);
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
  // A fleet share that shrank: idle connections above it close now.
  while (!idle_.empty() && limits_->try_shed()) {
    ServerConn* s = idle_.front();  // least recently used
    idle_.erase(idle_.begin());
    shed(*s);
  }
  // Waiters get servers the limits allow now: a capacity backoff that has passed, a fleet
  // share that grew, a login slot that a missed wake-up did not report.
  if (!waiters_.empty() || logins_held_back_ > 0) open_connections();
  // min_idle: keep warm connections, but not hammer a failing server (one try a second).
  if (cfg.min_idle > 0 && now - last_failure_ > std::chrono::seconds(1) && address_error_.empty()) {
    int missing = cfg.min_idle - static_cast<int>(idle_.size()) - connecting_count();
    while (missing-- > 0 && try_open() == Opening::Started) {
    }
  }
}

// What a client that waited query_wait_timeout is told: that the database refused more
// connections, when it did and the pool is still held below its size; else that the
// pool's connections were all in use.
ProxyError PoolShard::wait_timeout_error() const {
  const std::string ms = std::to_string(settings().query_wait_timeout.count());
  if (limits_->capacity_limited())
    return make_error(ProxyErrc::CapacityWaitTimeout,
                      {db_.name, limits_->last_refusal(), std::to_string(limits_->working()), ms});
  std::string size = std::to_string(limits_->cap());
  const FleetBudget* fleet = limits_->fleet();
  if (fleet != nullptr && fleet->share() < limits_->size()) {
    const std::string budget = "fleet_max_connections " + std::to_string(fleet->budget());
    size += fleet->sidecars() > 0
                ? ", this sidecar's share of " + budget + " across " + std::to_string(fleet->sidecars()) + " sidecars"
                : ", min_size until the sidecars sharing " + budget + " are counted";
  }
  return make_error(ProxyErrc::QueryWaitTimeout, {db_.name, key_.user, ms, size});
}

void PoolShard::close_idle() {
  std::vector<ServerConn*> idle;
  idle.swap(idle_);
  for (ServerConn* s : idle) s->close(ServerCloseReason::NotATarget);
}

void PoolShard::abandon_all(const ProxyError& why) {
  std::vector<ServerConn*> all;
  for (auto& [id, owned] : servers_)
    if (!owned.conn->closing()) all.push_back(owned.conn.get());
  if (all.empty() && waiters_.empty()) return;
  log_warn("server_abandoned")
      .kv("worker", loop_.id())
      .kv("database", db_.name)
      .kv("server", key_.server)
      .kv("connections", static_cast<long long>(all.size()))
      .kv("waiting", static_cast<long long>(waiters_.size()));
  idle_.clear();
  for (ServerConn* s : all) s->abandon(why);
  fail_waiters(make_error(ProxyErrc::ServerUnreachable, {db_.name, "the server was declared down"}));
}

void PoolShard::close_all() {
  waiters_.clear();
  set_logins_held_back(0);
  std::vector<ServerConn*> all;
  for (auto& [id, s] : servers_) all.push_back(s.conn.get());
  idle_.clear();
  for (ServerConn* s : all) s->close(ServerCloseReason::Shutdown);
}

}  // namespace pgsidecar::proxy
