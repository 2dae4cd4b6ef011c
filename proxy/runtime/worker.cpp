#include "proxy/runtime/worker.h"

#include "proxy/core/log.h"
#include "proxy/pooling/server_conn.h"
#include "proxy/runtime/listener.h"

namespace pgsidecar::proxy {

namespace {
// The worker's housekeeping timer: pool timeouts, route waits, starvation.
constexpr uint64_t kTickMs = 100;
// Client timeouts (login, idle) are checked every this many ticks (once a second) rather
// than with a timer per client, which would cost every idle client memory.
constexpr unsigned kClientCheckTicks = 10;
}  // namespace

Worker::Worker(RuntimeServices& runtime, AdminServices& admin, int id, std::shared_ptr<const config::Config> config)
    : runtime_(runtime), admin_(admin), config_(std::move(config)), loop_(id), resources_(*config_) {
  uv_timer_init(loop_.uv(), &tick_);
  tick_.data = this;
}

Worker::~Worker() {
  // The loop has stopped with every handle closed (stop_on_loop); run the close callbacks
  // still pending before the listeners they point at go.
  uv_run(loop_.uv(), UV_RUN_NOWAIT);
}

bool Worker::listen(std::string& error) {
  const config::Listen& l = config_->listen;
  auto tcp = std::make_unique<Listener>(*this);
  if (!tcp->listen_tcp(l.address, l.port, error)) return false;
  listeners_.push_back(std::move(tcp));
  if (id() == 0 && !l.unix_socket_dir.empty()) {
    auto unix_listener = std::make_unique<Listener>(*this);
    const std::string path = l.unix_socket_dir + "/.s.PGSQL." + std::to_string(l.port);
    if (!unix_listener->listen_unix(path, error)) return false;
    listeners_.push_back(std::move(unix_listener));
  }
  return true;
}

void Worker::start() {
  uv_timer_start(&tick_, &Worker::on_tick, kTickMs, kTickMs);
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() { uv_run(loop_.uv(), UV_RUN_DEFAULT); }

void Worker::request_stop() {
  post([this] { stop_on_loop(); });
}

// Graceful stop: accept no one new, close idle clients now and busy ones at the end of
// their transaction; after drain_timeout close whatever is left. The tick finishes it.
void Worker::stop_on_loop() {
  if (stopping_) return;
  stopping_ = true;
  drain_deadline_ = loop_.now() + config_->listen.drain_timeout;
  for (auto& l : listeners_) l->close();
  std::vector<ClientSession*> all;
  for (auto& [id, s] : sessions_) all.push_back(s.get());
  clients_at_drain_ = all.size();
  for (ClientSession* s : all) s->drain();
  continue_stop();
}

void Worker::continue_stop() {
  if (finished_) return;
  if (!sessions_.empty() && loop_.now() < drain_deadline_) return;
  finished_ = true;
  std::vector<ClientSession*> all;
  for (auto& [id, s] : sessions_) all.push_back(s.get());
  // Drained: closed at a transaction boundary (or idle); cut: still busy at drain_timeout.
  log_info("drain_done")
      .kv("worker", id())
      .kv("clients", static_cast<long long>(clients_at_drain_))
      .kv("drained", static_cast<long long>(clients_at_drain_ - std::min(clients_at_drain_, all.size())))
      .kv("cut", static_cast<long long>(all.size()));
  for (ClientSession* s : all) s->close("drain_timeout reached");
  for (auto& [key, pool] : pools_) pool->close_all();
  uv_timer_stop(&tick_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  loop_.close();
  // uv_run returns once the remaining handles have closed.
}

void Worker::set_topology(std::shared_ptr<const TopologySnapshot> snapshot) {
  topology_ = std::move(snapshot);
  bool fence = false;  // a session-mode pool has connections to a server that left
  for (auto& [key, pool] : pools_) {
    const DatabaseTopology* t = topology_->find(key.database);
    const ServerStatus* s = t != nullptr ? t->find_server(key.server) : nullptr;
    // A server no database entry uses any more (switchover), or a second primary that is
    // refused: its idle connections close, and nothing new goes there.
    if (s == nullptr || s->refused) {
      pool->close_idle();
      fence = fence || (pool->settings().mode == config::PoolMode::Session && pool->active_count() > 0);
      continue;
    }
    // Declared down: nothing waits on it. Requests in flight there are replayed elsewhere
    // (reads whose answer has not started) or fail with 08006 at once.
    if (s->health == ServerHealth::Down) {
      pool->abandon_all(make_error(
          ProxyErrc::ServerAbandoned,
          {key.database, "the health monitor declared the server down (" +
                             (s->last_error.empty() ? std::string("probes failed") : s->last_error) + ")"}));
      continue;
    }
    if (apply_fleet_count(*pool)) pool->on_slot_freed();  // a share that grew serves waiters now
  }
  if (fence) fence_sessions();
  std::vector<RouteWaiter> waiters;
  waiters.swap(route_waiters_);
  for (const RouteWaiter& w : waiters)
    if (ClientSession* s = find_session(w.session)) s->retry_route();
}

// Session-mode clients on a server that stopped being a target of their entry (a
// switchover, a reload that changed the primary) or that is refused as a second primary
// are closed at their next transaction boundary (57P01), so no later write reaches it. In
// transaction mode the server goes back at the boundary anyway and the next transaction
// is routed anew.
void Worker::fence_sessions() {
  std::vector<ClientSession*> fenced;
  for (auto& [pid, session] : sessions_) {
    ServerConn* server = session->server();
    if (server == nullptr || server->pool().settings().mode != config::PoolMode::Session) continue;
    const PoolKey& key = server->pool().key();
    const DatabaseTopology* t = topology_->find(key.database);
    const ServerStatus* s = t != nullptr ? t->find_server(key.server) : nullptr;
    if (s == nullptr || s->refused) fenced.push_back(session.get());
  }
  for (ClientSession* session : fenced) session->terminate(ProxyErrc::FencedBySwitchover);
}

void Worker::wait_for_route(SessionId id, std::chrono::steady_clock::time_point deadline) {
  route_waiters_.push_back(RouteWaiter{id, deadline});
}

void Worker::cancel_route_wait(SessionId id) {
  for (auto it = route_waiters_.begin(); it != route_waiters_.end(); ++it)
    if (it->session == id) {
      route_waiters_.erase(it);
      return;
    }
}

void Worker::expire_route_waiters(std::chrono::steady_clock::time_point now) {
  std::vector<SessionId> expired;
  for (auto it = route_waiters_.begin(); it != route_waiters_.end();) {
    if (it->deadline <= now) {
      expired.push_back(it->session);
      it = route_waiters_.erase(it);
    } else {
      ++it;
    }
  }
  for (SessionId id : expired)
    if (ClientSession* s = find_session(id)) s->route_wait_expired();
}

void Worker::resume_later(SessionId id) { loop_.defer(&Worker::on_resume, this, id); }

void Worker::on_resume(void* self, uint64_t session) {
  if (ClientSession* s = static_cast<Worker*>(self)->find_session(session)) s->resume();
}

void Worker::on_tick(uv_timer_t* t) {
  auto* self = static_cast<Worker*>(t->data);
  const auto now = self->loop_.now();
  self->heartbeat_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  if (self->stopping_) {
    self->continue_stop();
    if (self->finished_) return;
  }
  for (auto& [key, pool] : self->pools_) pool->tick(now);
  self->expire_route_waiters(now);
  if (++self->ticks_ % kClientCheckTicks == 0) self->check_client_timeouts(now);
}

void Worker::check_client_timeouts(std::chrono::steady_clock::time_point now) {
  // Collected first: expiring a session may close others' servers, never the map.
  std::vector<std::pair<ClientSession*, ClientSession::Overdue>> overdue;
  for (auto& [pid, s] : sessions_) {
    if (const auto what = s->overdue(now); what != ClientSession::Overdue::None) overdue.emplace_back(s.get(), what);
  }
  for (auto [s, what] : overdue) s->expire(what);
}

// `out` is this worker's own, empty; the caller merges the workers' parts.
void Worker::collect(RuntimeStats& out, bool rows) {
  const auto now = loop_.now();
  for (auto& [pool_key, pool] : pools_) {
    const PoolKey& key = pool_key;  // a lambda below uses it; structured bindings cannot be captured before C++20
    PoolStats& p = out.pools[PoolName{key.database, key.user}];
    p.pool_size = std::max(p.pool_size, pool->limits().size());
    p.add_metrics(pool->metrics(), now);
    pool->for_each_server([&](const ServerConn& s) {
      if (s.logging_in()) {
        ++p.servers_connecting;
      } else if (s.leased_or_resetting()) {
        ++p.servers_active;
      } else if (s.state() == ServerState::Idle) {
        ++p.servers_idle;
      }
      if (!rows) return;
      ServerRow row;
      row.worker = id();
      row.id = s.id();
      row.database = key.database;
      row.user = key.user;
      row.server = key.server;
      row.state = s.logging_in() ? "login" : s.leased_or_resetting() ? "active" : s.closing() ? "closing" : "idle";
      row.backend_pid = s.backend_pid();
      row.connected_seconds = std::chrono::duration_cast<std::chrono::seconds>(now - s.created_at()).count();
      row.client = s.lessee() != nullptr ? s.lessee()->lessee_id() : 0;
      out.servers.push_back(std::move(row));
    });
  }
  const uint64_t hr_now = uv_hrtime();
  for (auto& [pid, s] : sessions_) {
    const bool pooled = s->phase() == ClientPhase::Ready || s->phase() == ClientPhase::LoggingIn;
    if (pooled && !s->database_name().empty()) {
      PoolStats& p = out.pools[PoolName{s->database_name(), s->user_name()}];
      const std::string_view state = s->state_name();
      if (state == "active") ++p.clients_active;
      else if (state == "waiting") ++p.clients_waiting;
      else if (state == "idle") ++p.clients_idle;
    }
    if (!rows) continue;
    ClientRow row;
    row.worker = id();
    row.id = s->id();
    row.virtual_pid = s->virtual_pid();
    row.user = s->user_name();
    row.database = s->database_name();
    row.state = s->state_name();
    row.server_pid = s->server() != nullptr ? s->server()->backend_pid() : 0;
    row.pinned = s->pin_reason();
    if (s->waiting_since() != 0) row.wait_seconds = static_cast<double>(hr_now - s->waiting_since()) / 1e9;
    out.clients.push_back(std::move(row));
  }
  out.counters = resources_.counters;
  out.counters.statements_classified = resources_.classifier.misses();
  out.workers_answered = 1;
}

void Worker::kill(const std::string& database) {
  std::vector<ClientSession*> doomed;
  for (auto& [pid, s] : sessions_)
    if (s->database_name() == database) doomed.push_back(s.get());
  for (ClientSession* s : doomed) s->kill();
  for (auto& [key, pool] : pools_)
    if (key.database == database) pool->close_idle();
}

void Worker::set_config(std::shared_ptr<const config::Config> config, std::shared_ptr<const ClientTlsContext> tls) {
  config_ = std::move(config);
  client_tls_ = std::move(tls);
  for (auto& [key, pool] : pools_) pool->refresh_login(*config_);
}

int32_t Worker::new_virtual_pid() {
  // Random, so that cancel keys are not guessable from one's own; unique among live clients.
  for (;;) {
    uint32_t low = 0;
    random_bytes(std::as_writable_bytes(std::span(&low, 1)));
    const int32_t pid = make_virtual_pid(id(), low);
    if ((low & kVirtualPidLowMask) != 0 && sessions_.count(pid) == 0) return pid;
  }
}

void Worker::accept_client(uv_stream_t* listener, bool is_tcp) {
  const int limit = config_->listen.max_client_connections;
  const int32_t pid = new_virtual_pid();
  const SessionId id = make_session_id(next_session_++, pid);
  int32_t secret = 0;
  random_bytes(std::as_writable_bytes(std::span(&secret, 1)));
  auto session = std::make_unique<ClientSession>(*this, id, pid, secret);
  ClientSession* raw = session.get();
  sessions_.emplace(pid, std::move(session));
  const int count = runtime_.client_count().fetch_add(1) + 1;
  if (!raw->accept_from(listener, is_tcp)) return;
  // Above the limit, a few more connections may stay for admins, so that an operator
  // can still reach the console (SHOW CLIENTS, KILL) when clients have used every slot.
  if (count > limit + config_->listen.admin_reserved_connections) raw->reject_too_many(limit);
  else if (count > limit) raw->admit_admin_only(limit);
}

void Worker::forget(ClientSession& session) {
  runtime_.client_count().fetch_sub(1);
  sessions_.erase(session.virtual_pid());  // deletes it
}

ClientSession* Worker::find_session(SessionId id) {
  auto it = sessions_.find(virtual_pid_of(id));
  return it == sessions_.end() || it->second->id() != id ? nullptr : it->second.get();
}

ClientSession* Worker::find_session_by_pid(int32_t virtual_pid) {
  auto it = sessions_.find(virtual_pid);
  return it == sessions_.end() ? nullptr : it->second.get();
}

PoolShard& Worker::pool_for(const std::shared_ptr<const config::Config>& config, const config::Database& database,
                            const config::User& user, const config::ServerAddress& server) {
  PoolKey key{database.name, user.name, server_key(server)};
  auto it = pools_.find(key);
  if (it != pools_.end()) return *it->second;
  auto limits = runtime_.pools().get(key, database);
  auto shard = std::make_unique<PoolShard>(loop_, runtime_, *this, key, config, database, user, server,
                                           std::move(limits));
  PoolShard& ref = *shard;
  pools_.emplace(std::move(key), std::move(shard));
  apply_fleet_count(ref);
  return ref;
}

// The fleet count the health monitor published, into the pool's shared fleet budget
// (every worker stores the same values). True when the pool has a fleet budget.
bool Worker::apply_fleet_count(PoolShard& pool) {
  FleetBudget* fleet = pool.limits().fleet();
  if (fleet == nullptr) return false;
  const DatabaseTopology* t = topology_->find(pool.key().database);
  const ServerStatus* s = t != nullptr ? t->find_server(pool.key().server) : nullptr;
  if (s != nullptr && s->fleet.sidecars > 0) fleet->set_count(s->fleet.sidecars, s->fleet.rank);
  return true;
}

PoolShard* Worker::find_pool(const PoolKey& key) {
  auto it = pools_.find(key);
  return it == pools_.end() ? nullptr : it->second.get();
}

}  // namespace pgsidecar::proxy
