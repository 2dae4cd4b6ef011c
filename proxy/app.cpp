#include "proxy/app.h"

#include <uv.h>

#include <thread>

#include "proxy/cancel.h"
#include "proxy/client_session.h"
#include "proxy/log.h"
#include "proxy/server_conn.h"
#include "proxy/worker.h"

namespace pgsidecar::proxy {

App::App(std::shared_ptr<const config::Config> config) : config_(std::move(config)) {
  int n = config_->listen.workers;
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this, i, config_));
}

App::~App() = default;

namespace {

struct SignalState {
  App* app = nullptr;
  std::vector<std::unique_ptr<Worker>>* workers = nullptr;
  uv_signal_t sigterm{};
  uv_signal_t sigint{};
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
}

}  // namespace

int App::run() {
  for (auto& w : workers_) {
    std::string error;
    if (!w->listen(error)) {
      log_error("listen_failed").kv("error", error);
      return 1;
    }
  }
  for (auto& w : workers_) w->start();
  log_info("listening")
      .kv("address", config_->listen.address)
      .kv("port", config_->listen.port)
      .kv("workers", static_cast<int>(workers_.size()));

  uv_loop_t loop;
  uv_loop_init(&loop);
  SignalState st;
  st.app = this;
  st.workers = &workers_;
  uv_signal_init(&loop, &st.sigterm);
  uv_signal_init(&loop, &st.sigint);
  st.sigterm.data = st.sigint.data = &st;
  uv_signal_start(&st.sigterm, &on_stop_signal, SIGTERM);
  uv_signal_start(&st.sigint, &on_stop_signal, SIGINT);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  for (auto& w : workers_) w->join();
  workers_.clear();
  log_info("stopped");
  return 0;
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
    send_cancel_request(*w, server->pool().target(), server->backend_pid(), server->backend_secret());
  });
}

}  // namespace pgsidecar::proxy
