#include "proxy/worker.h"

#include <openssl/rand.h>

#include "protocol/scram.h"
#include "protocol/sqlstate.h"
#include "protocol/messages.h"
#include "proxy/app.h"
#include "proxy/client_session.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/owned_write.h"

namespace pgsidecar::proxy {

namespace {
constexpr uint64_t kTickMs = 100;
}

Worker::Worker(App& app, int id, std::shared_ptr<const config::Config> config)
    : app_(app), id_(id), config_(std::move(config)), rng_(std::random_device{}()) {
  uv_loop_init(&loop_);
  mailbox_ = std::make_unique<uv::Mailbox>(&loop_);
  uv_timer_init(&loop_, &tick_);
  tick_.data = this;
  mock_secret_.resize(32);
  RAND_bytes(reinterpret_cast<unsigned char*>(mock_secret_.data()), static_cast<int>(mock_secret_.size()));
  // Derive verifiers now: a PBKDF2 on a user's first login would make known users slower
  // to answer than unknown ones (whose mock verifier is cheap).
  for (const auto& user : config_->users) scram_verifier_for(user);
}

Worker::~Worker() {
  // The loop has stopped with every handle closed (stop_on_loop); run close callbacks.
  uv_run(&loop_, UV_RUN_NOWAIT);
  uv_loop_close(&loop_);
}

bool Worker::listen(std::string& error) {
  const config::Listen& l = config_->listen;
  auto tcp = std::make_unique<Listener>(*this);
  if (!tcp->listen_tcp(l.address, l.port, error)) return false;
  listeners_.push_back(std::move(tcp));
  if (id_ == 0 && !l.unix_socket_dir.empty()) {
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

void Worker::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void Worker::request_stop() {
  post([this] { stop_on_loop(); });
}

// Graceful stop: accept no one new, close idle clients now and busy ones at the end of
// their transaction; after drain_timeout close whatever is left. The tick finishes it.
void Worker::stop_on_loop() {
  if (stopping_) return;
  stopping_ = true;
  drain_deadline_ = now() + config_->listen.drain_timeout;
  for (auto& l : listeners_) l->close();
  std::vector<ClientSession*> all;
  for (auto& [id, s] : sessions_) all.push_back(s.get());
  for (ClientSession* s : all) s->drain();
  continue_stop();
}

void Worker::continue_stop() {
  if (finished_) return;
  if (!sessions_.empty() && now() < drain_deadline_) return;
  finished_ = true;
  std::vector<ClientSession*> all;
  for (auto& [id, s] : sessions_) all.push_back(s.get());
  for (ClientSession* s : all) s->close("drain_timeout reached");
  for (auto& [key, pool] : pools_) pool->close_all();
  uv_timer_stop(&tick_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  mailbox_->close();
  // uv_run returns once the remaining handles have closed.
}

void Worker::set_topology(std::shared_ptr<const TopologySnapshot> snapshot) {
  topology_ = std::move(snapshot);
  // Idle connections to a server that no database entry uses any more are closed.
  for (auto& [key, pool] : pools_) {
    const DatabaseTopology* t = topology_->find(key.database);
    bool used = false;
    if (t != nullptr)
      for (const auto& s : t->servers) used = used || s.key == key.server;
    if (!used) pool->close_idle();
  }
  std::vector<RouteWaiter> waiters;
  waiters.swap(route_waiters_);
  for (const RouteWaiter& w : waiters)
    if (ClientSession* s = find_session(w.session)) s->retry_route();
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

void Worker::on_tick(uv_timer_t* t) {
  auto* self = static_cast<Worker*>(t->data);
  const auto now = self->now();
  if (self->stopping_) {
    self->continue_stop();
    if (self->finished_) return;
  }
  for (auto& [key, pool] : self->pools_) pool->tick(now);
  self->expire_route_waiters(now);
  static thread_local int counter = 0;
  // Client timeouts, checked once a second rather than with a timer per client, which
  // would cost every idle client memory.
  if (++counter % 10 != 0) return;
  std::vector<ClientSession*> idle, late;
  for (auto& [pid, s] : self->sessions_) {
    if (s->login_expired(now)) {
      late.push_back(s.get());
    } else if (s->idle_expired(now)) {
      idle.push_back(s.get());
    }
  }
  for (ClientSession* s : late) s->login_timed_out();
  for (ClientSession* s : idle) s->close_idle();
}

void Worker::accept_client(uv_stream_t* listener, bool is_tcp) {
  const int limit = config_->listen.max_client_connections;
  int32_t pid = make_virtual_pid(id_, next_pid_++);
  while (sessions_.count(pid) != 0) pid = make_virtual_pid(id_, next_pid_++);
  const SessionId id = make_session_id(next_session_++, pid);
  const auto secret = static_cast<int32_t>(rng_() & 0x7fffffff);
  auto session = std::make_unique<ClientSession>(*this, id, pid, secret);
  ClientSession* raw = session.get();
  sessions_.emplace(pid, std::move(session));
  app_.client_count().fetch_add(1);
  if (!raw->accept_from(listener, is_tcp)) return;
  if (app_.client_count().load() > limit) {
    raw->reject_too_many(limit);
  }
}

void Worker::forget_session(ClientSession* session) {
  app_.client_count().fetch_sub(1);
  sessions_.erase(session->virtual_pid());  // deletes it
}

ClientSession* Worker::find_session(SessionId id) {
  auto it = sessions_.find(virtual_pid_of(id));
  return it == sessions_.end() || it->second->id() != id ? nullptr : it->second.get();
}

ClientSession* Worker::find_session_by_pid(int32_t virtual_pid) {
  auto it = sessions_.find(virtual_pid);
  return it == sessions_.end() ? nullptr : it->second.get();
}

PoolShard& Worker::pool_for(const config::Database& db, const config::User& user, const config::ServerAddress& server) {
  PoolKey key{db.name, user.name, server_key(server)};
  auto it = pools_.find(key);
  if (it != pools_.end()) return *it->second;
  auto limits = app_.pools().get(key, db.pool.size);
  auto shard = std::make_unique<PoolShard>(*this, key, config_, db, user, server, std::move(limits));
  PoolShard& ref = *shard;
  pools_.emplace(std::move(key), std::move(shard));
  return ref;
}

PoolShard* Worker::find_pool(const PoolKey& key) {
  auto it = pools_.find(key);
  return it == pools_.end() ? nullptr : it->second.get();
}

const protocol::ScramVerifier& Worker::scram_verifier_for(const config::User& user) {
  auto it = verifiers_.find(user.name);
  if (it != verifiers_.end()) return it->second;
  protocol::ScramVerifier v;
  if (!protocol::parse_scram_verifier(user.password, v)) {
    std::vector<std::byte> salt(16);
    RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size()));
    v = protocol::make_scram_verifier(user.password, salt, 4096);
  }
  return verifiers_.emplace(user.name, std::move(v)).first->second;
}

std::atomic<int>& Worker::client_count() { return app_.client_count(); }

}  // namespace pgsidecar::proxy
