#include "proxy/runtime/app.h"

#include <uv.h>

#include <future>

#include "config/load.h"
#include "proxy/core/log.h"
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
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this, i, config_));
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

struct SignalState {
  App* app = nullptr;
  std::vector<std::unique_ptr<Worker>>* workers = nullptr;
  std::function<void()> reload;
  uv_signal_t sigterm{};
  uv_signal_t sigint{};
  uv_signal_t sighup{};
  bool stopping = false;
};

void on_stop_signal(uv_signal_t* h, int signum) {
  auto* st = static_cast<SignalState*>(h->data);
  if (st->stopping) return;
  st->stopping = true;
  log_info("shutdown").kv("signal", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  for (auto& w : *st->workers) w->request_stop();
  uv_close(reinterpret_cast<uv_handle_t*>(&st->sigterm), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&st->sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&st->sighup), nullptr);
}

void on_reload_signal(uv_signal_t* h, int) { static_cast<SignalState*>(h->data)->reload(); }

}  // namespace

int App::run() {
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
  log_info("listening")
      .kv("address", config_->listen.address)
      .kv("port", config_->listen.port)
      .kv("workers", static_cast<int>(workers_.size()));

  uv_loop_t loop;
  uv_loop_init(&loop);
  SignalState st;
  st.app = this;
  st.workers = &workers_;
  st.reload = [this] { reload(); };
  uv_signal_init(&loop, &st.sigterm);
  uv_signal_init(&loop, &st.sigint);
  uv_signal_init(&loop, &st.sighup);
  st.sigterm.data = st.sigint.data = st.sighup.data = &st;
  uv_signal_start(&st.sigterm, &on_stop_signal, SIGTERM);
  uv_signal_start(&st.sigint, &on_stop_signal, SIGINT);
  uv_signal_start(&st.sighup, &on_reload_signal, SIGHUP);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  for (auto& w : workers_) w->join();
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

void App::reload() {
  config::LoadResult loaded = config::load_file(config_path_);
  if (!loaded.problems.empty()) {
    for (const auto& p : loaded.problems) log_error("reload_failed").kv("problem", p.to_string());
    log_error("reload_failed").kv("detail", "the previous configuration stays in effect");
    return;
  }
  // New logins use the new snapshot; a changed primary is switched over like SWITCHOVER.
  for (const auto& db : loaded.config->databases) {
    const config::Database* old = config_->find_database(db.name);
    if (old == nullptr || server_key(old->primary) == server_key(db.primary)) continue;
    switchover(db.name, db.primary, switchover_drain_bound(db), [name = db.name](bool ok, std::string message) {
      (ok ? log_info("reload_switchover") : log_error("reload_switchover")).kv("database", name).kv("result", message);
    });
  }
  config_ = loaded.config;
  monitor_->reload(config_);
  for (auto& w : workers_) {
    Worker* target = w.get();
    target->post([target, cfg = loaded.config] { target->set_config(cfg); });
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
                     std::chrono::milliseconds drain_bound, std::function<void(bool, std::string)> done) {
  std::lock_guard lock(switchover_mu_);
  switchovers_.emplace_back([this, database, address, drain_bound, done = std::move(done)] {
    const auto snap = monitor_->snapshot();
    const DatabaseTopology* t = snap->find(database);
    if (t == nullptr) {
      done(false, "database \"" + database + "\" is not configured");
      return;
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

void App::route_cancel(int32_t virtual_pid, int32_t secret) {
  const int owner = worker_of_virtual_pid(virtual_pid);
  if (owner < 0 || owner >= static_cast<int>(workers_.size())) return;  // not ours: ignore, as PostgreSQL does
  Worker* w = workers_[static_cast<std::size_t>(owner)].get();
  w->post([w, virtual_pid, secret] {
    ClientSession* s = w->find_session_by_pid(virtual_pid);
    if (s == nullptr || s->virtual_secret() != secret) return;
    ServerConn* server = s->server();
    if (server == nullptr) return;  // nothing running
    log_info("cancel_forwarded").kv("worker", w->id()).kv("session", static_cast<long long>(s->id()));
    send_cancel_request(w->loop(), server->pool().address(), server->backend_pid(), server->backend_secret());
  });
}

}  // namespace pgsidecar::proxy
