#include "proxy/runtime/app.h"

#include <uv.h>

#include <future>
#include <set>
#include <stdexcept>

#include "config/load.h"
#include "proxy/core/log.h"
#include "proxy/http/http_server.h"
#include "proxy/routing/router.h"
#include "proxy/runtime/metrics_export.h"
#include "proxy/pooling/cancel.h"
#include "proxy/pooling/server_conn.h"
#include "proxy/routing/health_monitor.h"
#include "proxy/runtime/worker.h"

namespace pgsidecar::proxy {

App::App(std::shared_ptr<const config::Config> config, std::string config_path)
    : config_(std::move(config)), config_path_(std::move(config_path)) {
  int n = config_->listen.workers;
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n = std::min(n, kMaxWorkers);  // the virtual pid has room for this many
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this, *this, i, config_));
  monitor_ = std::make_unique<HealthMonitor>(config_, [this](std::shared_ptr<const TopologySnapshot> snap) {
    for (auto& w : workers_) {
      Worker* target = w.get();
      target->post([target, snap] { target->set_topology(snap); });
    }
  });
}

App::~App() = default;

namespace {

// How long a switchover waits for one worker to count its transactions on the old primary.
constexpr std::chrono::seconds kWorkerAnswerTimeout{2};
// How often a switchover looks again while transactions still run on the old primary.
constexpr std::chrono::milliseconds kSwitchoverPoll{10};

// A worker loop that has not ticked for this long fails /healthz.
constexpr std::chrono::seconds kLoopStallLimit{1};
// How long a scrape waits for the workers' statistics.
constexpr std::chrono::seconds kScrapeTimeout{2};

}  // namespace

int App::run() {
  std::shared_ptr<const ClientTlsContext> tls;
  if (std::string error; !load_client_tls(*config_, tls, error)) {
    log_error("tls_failed").kv("error", error);
    return 1;
  }
  for (auto& w : workers_) w->set_config(config_, tls);
  for (auto& w : workers_) {
    std::string error;
    if (!w->listen(error)) {
      log_error("listen_failed").kv("error", error);
      return 1;
    }
  }
  for (auto& w : workers_) {
    w->set_topology(monitor_->snapshot());
    w->start();
  }
  monitor_->start();
  // The workers accept from here on, so /readyz may say so as soon as it answers.
  listening_ = true;
  std::string http_error;
  if (!start_http(http_error)) {
    log_error("http_failed").kv("error", http_error);
    for (auto& w : workers_) w->request_stop();
    for (auto& w : workers_) w->join();
    monitor_->stop();
    return 1;
  }
  log_info("listening")
      .kv("address", config_->listen.address)
      .kv("port", config_->listen.port)
      .kv("workers", static_cast<int>(workers_.size()));

  uv_loop_init(&main_loop_);
  for (uv_signal_t* h : {&sigterm_, &sigint_, &sighup_}) {
    uv_signal_init(&main_loop_, h);
    h->data = this;
  }
  uv_signal_start(&sigterm_, &App::on_stop_signal, SIGTERM);
  uv_signal_start(&sigint_, &App::on_stop_signal, SIGINT);
  uv_signal_start(&sighup_, &App::on_reload_signal, SIGHUP);
  uv_async_init(&main_loop_, &reload_async_, &App::on_reload_async);
  reload_async_.data = this;
  {
    std::lock_guard lock(reload_mu_);
    reload_open_ = true;
  }
  uv_timer_init(&main_loop_, &shutdown_timer_);
  shutdown_timer_.data = this;
  uv_run(&main_loop_, UV_RUN_DEFAULT);
  uv_loop_close(&main_loop_);
  for (auto& w : workers_) w->join();
  if (http_) http_->stop();
  monitor_->stop();
  {
    std::lock_guard lock(switchover_mu_);
    for (auto& t : switchovers_)
      if (t.joinable()) t.join();
  }
  workers_.clear();
  log_info("stopped");
  return 0;
}

void App::on_stop_signal(uv_signal_t* h, int signum) {
  static_cast<App*>(h->data)->begin_shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void App::on_reload_signal(uv_signal_t* h, int) { static_cast<App*>(h->data)->reload_now(); }

void App::on_reload_async(uv_async_t* h) { static_cast<App*>(h->data)->reload_now(); }

// Readiness fails at once, so that Kubernetes takes the pod out of its Services; clients
// are served on for shutdown_delay while that spreads; then the workers drain.
void App::begin_shutdown(const char* signal_name) {
  if (draining_.exchange(true)) return;
  const auto delay = config_->listen.shutdown_delay;
  log_info("shutdown").kv("signal", signal_name).kv("shutdown_delay_ms", static_cast<long long>(delay.count()));
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup_), nullptr);
  {
    std::lock_guard lock(reload_mu_);
    reload_open_ = false;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&reload_async_), nullptr);
  uv_timer_start(&shutdown_timer_, &App::on_shutdown_delay, static_cast<uint64_t>(delay.count()), 0);
}

void App::on_shutdown_delay(uv_timer_t* t) {
  auto* self = static_cast<App*>(t->data);
  log_info("drain_started").kv("drain_timeout_ms", static_cast<long long>(self->config_->listen.drain_timeout.count()));
  for (auto& w : self->workers_) w->request_stop();
  uv_close(reinterpret_cast<uv_handle_t*>(&self->shutdown_timer_), nullptr);
}

bool App::start_http(std::string& error) {
  const config::Http& h = config_->http;
  if (h.port == 0) return true;
  http::HttpHandlers handlers;
  handlers.metrics = [this] { return metrics_text(); };
  handlers.healthz = [this] {
    std::string stale;
    return loops_alive(stale) ? http::ProbeResult::healthy() : http::ProbeResult::failing(stale);
  };
  handlers.readyz = [this](bool databases) {
    if (!listening_) return http::ProbeResult::failing("not listening yet");
    if (draining_) return http::ProbeResult::failing("shutting down");
    std::string why;
    if (databases && !databases_usable(why)) return http::ProbeResult::failing(why);
    return http::ProbeResult::healthy();
  };
  http_ = std::make_unique<http::HttpServer>(std::move(handlers));
  http::HttpServerOptions options;
  options.address = h.address;
  options.port = h.port;
  options.log = [](std::string_view line) { log_warn("http").kv("detail", line); };
  if (auto failed = http_->start(options)) {
    error = *failed;
    return false;
  }
  log_info("http_listening").kv("address", h.address).kv("port", h.port);
  return true;
}

bool App::loops_alive(std::string& stale) const {
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  const auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(kLoopStallLimit).count();
  for (const auto& w : workers_) {
    const int64_t beat = w->heartbeat().load(std::memory_order_relaxed);
    if (beat != 0 && now - beat > limit) {
      stale = "worker " + std::to_string(w->id()) + " has not turned for " +
              std::to_string((now - beat) / 1'000'000) + " ms";
      return false;
    }
  }
  return true;
}

bool App::databases_usable(std::string& why) const {
  const auto snap = monitor_->snapshot();
  for (const auto& [name, t] : snap->databases) {
    bool usable = false;
    for (std::size_t i = 0; i < t.servers.size() && !usable; ++i) {
      const ServerStatus& s = t.servers[i];
      usable = s.health == ServerHealth::Up && !s.refused;
    }
    if (!usable) {
      why = "no usable server for database \"" + name + "\"";
      return false;
    }
  }
  return true;
}

void App::gather(bool rows, std::function<void(RuntimeStats)> done) {
  struct Pending {
    std::mutex mu;
    RuntimeStats merged;
    std::size_t left = 0;
    std::function<void(RuntimeStats)> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = workers_.size();
  pending->done = std::move(done);
  for (auto& w : workers_) {
    Worker* target = w.get();
    target->post([target, pending, rows] {
      RuntimeStats mine;
      target->collect(mine, rows);
      std::function<void(RuntimeStats)> finish;
      RuntimeStats all;
      {
        std::lock_guard lock(pending->mu);
        pending->merged.merge(std::move(mine));
        if (--pending->left == 0) {
          finish = std::move(pending->done);
          all = std::move(pending->merged);
        }
      }
      if (finish) finish(std::move(all));
    });
  }
}

std::string App::metrics_text() {
  auto result = std::make_shared<std::promise<RuntimeStats>>();
  auto future = result->get_future();
  gather(false, [result](RuntimeStats stats) { result->set_value(std::move(stats)); });
  if (future.wait_for(kScrapeTimeout) != std::future_status::ready)
    throw std::runtime_error("the workers did not answer within " + std::to_string(kScrapeTimeout.count()) + " s");
  ProcessGauges process;
  process.ready = listening_ && !draining_;
  process.draining = draining_;
  {
    std::lock_guard lock(switchover_count_mu_);
    process.switchovers = switchover_count_;
  }
  std::set<std::string> servers_seen;  // a server's login gate is shared by its pools: once each
  pools_.for_each([&](const PoolKey& key, PoolLimits& limits) {
    PoolCapacity c;
    c.database = key.database;
    c.user = key.user;
    c.server = key.server;
    c.size = limits.size();
    c.effective = limits.cap();
    c.capacity_refusals = limits.capacity_refusals();
    if (const FleetBudget* fleet = limits.fleet()) {
      c.fleet_share = fleet->share();
      c.fleet_sidecars = fleet->sidecars();
    }
    if (servers_seen.insert(key.server).second) {
      c.logins_in_flight = limits.gate().in_flight();
      c.logins_waiting = limits.gate().waiting();
      c.logins_queued = limits.gate().queued_total();
    } else {
      c.logins_in_flight = -1;
    }
    process.capacity.push_back(std::move(c));
  });
  return render_metrics(future.get(), *monitor_->snapshot(), process);
}

void App::reload() {
  std::lock_guard lock(reload_mu_);
  if (reload_open_) uv_async_send(&reload_async_);
}

bool App::kill(const std::string& database) {
  if (monitor_->snapshot()->find(database) == nullptr) return false;
  log_warn("kill").kv("database", database);
  for (auto& w : workers_) {
    Worker* target = w.get();
    target->post([target, database] { target->kill(database); });
  }
  return true;
}

bool App::load_client_tls(const config::Config& config, std::shared_ptr<const ClientTlsContext>& out,
                          std::string& error) {
  out.reset();
  if (!config.tls.enabled()) return true;
  out = ClientTlsContext::load(config.tls, error);
  return out != nullptr;
}

void App::reload_now() {
  config::LoadResult loaded = config::load_file(config_path_);
  // Certificates and keys are read again at every reload, changed config or not.
  std::shared_ptr<const ClientTlsContext> tls;
  std::string tls_error;
  if (loaded.problems.empty() && !load_client_tls(*loaded.config, tls, tls_error))
    loaded.problems.push_back({"tls", 0, 0, tls_error});
  if (!loaded.problems.empty()) {
    for (const auto& p : loaded.problems) log_error("reload_failed").kv("problem", p.to_string());
    log_error("reload_failed").kv("detail", "the previous configuration stays in effect");
    return;
  }
  // New logins use the new snapshot; a changed primary is switched over like SWITCHOVER.
  for (const auto& db : loaded.config->databases) {
    const config::Database* old = config_->find_database(db.name);
    if (old == nullptr || server_key(old->primary) == server_key(db.primary)) continue;
    switchover(db.name, db.primary, switchover_drain_bound(db), true, [name = db.name](bool ok, std::string message) {
      (ok ? log_info("reload_switchover") : log_error("reload_switchover")).kv("database", name).kv("result", message);
    });
  }
  config_ = loaded.config;
  monitor_->reload(config_);
  for (auto& w : workers_) {
    Worker* target = w.get();
    target->post([target, cfg = loaded.config, tls] { target->set_config(cfg, tls); });
  }
  log_info("reloaded").kv("config", config_path_);
}

void App::suspect(const std::string& server_key) { monitor_->suspect(server_key); }

bool App::pause(const std::string& database, bool paused) { return monitor_->pause(database, paused); }

// Transactions still running on `server_key` for `database`, counted by every worker on
// its own thread.
int App::in_flight_on(const std::string& database, const std::string& server_key) {
  int in_flight = 0;
  for (auto& w : workers_) {
    Worker* target = w.get();
    auto count = std::make_shared<std::promise<int>>();  // outlives a late answer
    auto result = count->get_future();
    target->post([target, count, database, server_key] {
      int n = 0;
      target->for_each_pool([&](PoolShard& p) {
        if (p.key().database == database && p.key().server == server_key) n += p.active_count();
      });
      count->set_value(n);
    });
    if (result.wait_for(kWorkerAnswerTimeout) == std::future_status::ready) in_flight += result.get();
  }
  return in_flight;
}

void App::switchover(const std::string& database, const config::ServerAddress& address,
                     std::chrono::milliseconds drain_bound, bool force, std::function<void(bool, std::string)> done) {
  std::lock_guard lock(switchover_mu_);
  switchovers_.emplace_back([this, database, address, drain_bound, force, done = std::move(done)] {
    const auto snap = monitor_->snapshot();
    const DatabaseTopology* t = snap->find(database);
    if (t == nullptr) {
      done(false, "database \"" + database + "\" is not configured");
      return;
    }
    // The target must answer and be a primary: switching to a server that is down or a
    // replica would only turn every write into an error.
    if (!force) {
      const ProbeResult r = monitor_->check_server(database, address);
      const std::string target = server_key(address);
      if (!r.ok || r.in_recovery) {
        const std::string why = !r.ok ? "the new primary " + target + " does not answer: " + r.error
                                      : "the new primary " + target + " is in recovery (a replica): promote it first";
        log_error("switchover_refused").kv("database", database).kv("to", target).kv("reason", why);
        done(false, why + "; SWITCHOVER " + database + " TO '<url>' FORCE switches without this check");
        return;
      }
    }
    const std::string old_key = t->primary >= 0 ? t->servers[static_cast<std::size_t>(t->primary)].key : std::string();
    log_warn("switchover_started").kv("database", database).kv("from", old_key).kv("to", server_key(address));
    monitor_->pause(database, true);
    // Let transactions in flight on the old primary finish, within the bound.
    const auto deadline = std::chrono::steady_clock::now() + drain_bound;
    int in_flight = 0;
    for (;;) {
      in_flight = in_flight_on(database, old_key);
      if (in_flight == 0 || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(kSwitchoverPoll);
    }
    monitor_->repoint(database, address);
    std::string message = "database \"" + database + "\" now uses " + server_key(address);
    if (in_flight > 0) message += " (" + std::to_string(in_flight) + " transactions were still running on the old primary)";
    {
      std::lock_guard count_lock(switchover_count_mu_);
      ++switchover_count_[database];
    }
    done(true, message);
  });
}

void App::broadcast_slot_freed(const PoolKey& key, int from_worker) {
  for (auto& w : workers_) {
    if (w->id() == from_worker) continue;
    Worker* target = w.get();
    target->post([target, key] {
      if (PoolShard* p = target->find_pool(key)) p->on_slot_freed();
    });
  }
}

void App::broadcast_server_wanted(const PoolKey& key, int from_worker) {
  for (auto& w : workers_) {
    if (w->id() == from_worker) continue;
    Worker* target = w.get();
    target->post([target, key] {
      if (PoolShard* p = target->find_pool(key)) p->on_server_wanted();
    });
  }
}

void App::broadcast_login_slot_freed(const std::string& server_key) {
  for (auto& w : workers_) {
    Worker* target = w.get();
    target->post([target, server_key] {
      target->for_each_pool([&](PoolShard& p) {
        if (p.key().server == server_key) p.on_slot_freed();
      });
    });
  }
}

void App::route_cancel(int32_t virtual_pid, int32_t secret, std::function<void()> done) {
  const int owner = worker_of_virtual_pid(virtual_pid);
  if (owner < 0 || owner >= static_cast<int>(workers_.size())) {  // not ours: ignore, as PostgreSQL does
    done();
    return;
  }
  Worker* w = workers_[static_cast<std::size_t>(owner)].get();
  w->post([w, virtual_pid, secret, done = std::move(done)]() mutable {
    ClientSession* s = w->find_session_by_pid(virtual_pid);
    ServerConn* server = s != nullptr && s->virtual_secret() == secret ? s->server() : nullptr;
    // Bound to the lease it was aimed at: with none (unknown key, or the client holds no
    // server) there is nothing of this client's to cancel. One at a time per client.
    const char* dropped = server == nullptr               ? "no request of this client is running"
                          : server->cancel_in_flight() ? "a cancel for this client is already on its way"
                                                        : nullptr;
    if (dropped != nullptr) {
      log_info("cancel_dropped").kv("worker", w->id()).kv("reason", dropped);
      done();
      return;
    }
    log_info("cancel_forwarded").kv("worker", w->id()).kv("session", static_cast<long long>(s->id()));
    server->cancel_sent();
    PoolShard* pool = &server->pool();
    send_cancel_request(w->loop(), pool->address(), pool->tls(), server->backend_pid(), server->backend_secret(),
                        [pool, id = server->id(), done = std::move(done)] {
                          if (ServerConn* target = pool->find_server(id)) target->cancel_done();
                          done();
                        });
  });
}

}  // namespace pgsidecar::proxy
