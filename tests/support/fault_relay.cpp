#include "tests/support/fault_relay.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
#include <uv.h>

#include <csignal>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/relay_connections.h"
#include "tests/support/uv_handle.h"

namespace pgsidecar::testing {
namespace {

using relay::ConnectionTable;
using relay::Mode;

void resolve_target(const std::string& host, int port, sockaddr_storage& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    throw std::runtime_error("fault relay: cannot resolve target " + host + ": " + ::gai_strerror(rc));
  }
  std::memcpy(&out, found->ai_addr, found->ai_addrlen);
  ::freeaddrinfo(found);
}

}  // namespace

class FaultRelay::Loop {
 public:
  Loop(const sockaddr_storage& target, std::size_t max_held_bytes, Mode mode,
       std::chrono::milliseconds delay);
  ~Loop();  // the relay's thread has ended (or never started): closes what is left
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Binds 127.0.0.1:port and listens; the bound port, or throws std::runtime_error.
  int listen(int port);
  void run();  // the relay thread's body: returns after shutdown()

  // Safe from any thread; false once the relay stopped (the task will not run).
  bool post(std::function<void()> task);
  // Safe from any thread but the relay's: returns once the mode is applied (or the relay
  // had stopped); throws std::runtime_error after kCommandTimeout.
  void command(Mode mode, std::chrono::milliseconds delay);
  void shutdown();  // on the relay's thread

  FaultRelayStats stats() const;

 private:
  static void on_connection(uv_stream_t* listener, int status) noexcept;
  static void on_wake(uv_async_t* async) noexcept;

  void run_pending();

  uv_loop_t loop_{};
  std::optional<ConnectionTable> connections_;

  std::mutex mu_;
  std::vector<std::function<void()>> pending_;
  bool stopped_ = false;

  std::optional<UvHandle<uv_tcp_t>> listener_;
  std::optional<UvHandle<uv_async_t>> wake_;
};

FaultRelay::Loop::Loop(const sockaddr_storage& target, std::size_t max_held_bytes, Mode mode,
                       std::chrono::milliseconds delay) {
  const int rc = uv_loop_init(&loop_);
  if (rc != 0) throw std::runtime_error(std::string("fault relay: uv_loop_init: ") + uv_strerror(rc));
  connections_.emplace(&loop_, target, max_held_bytes, mode, delay);
  wake_.emplace([&](uv_async_t* a) { return uv_async_init(&loop_, a, &Loop::on_wake); });
  if (wake_->get() != nullptr) wake_->get()->data = this;
  listener_.emplace([&](uv_tcp_t* t) { return uv_tcp_init(&loop_, t); });
  if (listener_->get() != nullptr) listener_->get()->data = this;
}

FaultRelay::Loop::~Loop() {
  connections_->close_all();
  listener_.reset();  // UvHandle closes; the loop run below frees
  wake_.reset();
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

int FaultRelay::Loop::listen(int port) {
  if (wake_->get() == nullptr || listener_->get() == nullptr) {
    throw std::runtime_error("fault relay: cannot create its libuv handles");
  }
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", port, &addr);
  int rc = uv_tcp_bind(listener_->get(), reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(listener_->stream(), 1024, &Loop::on_connection);
  if (rc != 0) {
    throw std::runtime_error("fault relay: cannot listen on 127.0.0.1:" + std::to_string(port) +
                             ": " + uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(listener_->get(), reinterpret_cast<sockaddr*>(&bound), &len);
  return ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
}

void FaultRelay::Loop::run() {
  // A write to a peer that reset must fail with EPIPE, not end the process.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  // Tasks posted while shutdown() ran still run, so that no caller waits in vain.
  run_pending();
}

bool FaultRelay::Loop::post(std::function<void()> task) {
  // Under the lock: shutdown() closes the async handle under it too.
  std::lock_guard lock(mu_);
  if (stopped_) return false;
  pending_.push_back(std::move(task));
  uv_async_send(wake_->get());
  return true;
}

void FaultRelay::Loop::command(Mode mode, std::chrono::milliseconds delay) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> applied = done->get_future();
  if (!post([this, mode, delay, done] {
        connections_->set_mode(mode, delay);
        done->set_value();
      })) {
    return;  // stopped
  }
  if (applied.wait_for(kCommandTimeout) != std::future_status::ready) {
    throw std::runtime_error("fault relay: a mode change was not applied within " +
                             std::to_string(kCommandTimeout.count()) + " s");
  }
}

void FaultRelay::Loop::on_wake(uv_async_t* async) noexcept {
  static_cast<Loop*>(async->data)->run_pending();
}

void FaultRelay::Loop::run_pending() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(pending_);  // wake-ups coalesce: take everything
  }
  for (auto& task : tasks) task();
}

void FaultRelay::Loop::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    wake_->close();
  }
  connections_->close_all();
  listener_->close();
}

void FaultRelay::Loop::on_connection(uv_stream_t* listener, int status) noexcept {
  if (status < 0) return;
  static_cast<Loop*>(listener->data)->connections_->accept(listener);
}

FaultRelayStats FaultRelay::Loop::stats() const {
  const relay::Counters& c = connections_->counters();
  FaultRelayStats s;
  s.connections_accepted = c.accepted;
  s.connections_open = c.open;
  s.bytes_client_to_server = c.client_to_server;
  s.bytes_server_to_client = c.server_to_client;
  s.bytes_discarded = c.discarded;
  s.held_bytes = c.held;
  return s;
}

// --- FaultRelay -------------------------------------------------------------------------

FaultRelay::FaultRelay(Options options) {
  sockaddr_storage target{};
  resolve_target(options.target_host, options.target_port, target);
  const Mode mode = options.delay.count() > 0 ? Mode::Delay : Mode::Pass;
  loop_ = std::make_unique<Loop>(target, options.max_held_bytes, mode, options.delay);
  port_ = loop_->listen(options.listen_port);  // on failure ~Loop closes what it made
  thread_ = std::thread([loop = loop_.get()] { loop->run(); });
}

FaultRelay::FaultRelay(std::string target_host, int target_port)
    : FaultRelay(Options{.target_host = std::move(target_host), .target_port = target_port}) {}

FaultRelay::~FaultRelay() { stop(); }

void FaultRelay::stop() {
  if (!thread_.joinable()) return;
  Loop* loop = loop_.get();
  loop->post([loop] { loop->shutdown(); });
  thread_.join();
}

void FaultRelay::pass() { loop_->command(Mode::Pass, std::chrono::milliseconds(0)); }

void FaultRelay::delay(std::chrono::milliseconds each_way) {
  if (each_way.count() <= 0) {
    pass();
    return;
  }
  loop_->command(Mode::Delay, each_way);
}

void FaultRelay::stall() { loop_->command(Mode::Stall, std::chrono::milliseconds(0)); }

void FaultRelay::stall_replies() { loop_->command(Mode::StallReplies, std::chrono::milliseconds(0)); }

void FaultRelay::hold_new() { loop_->command(Mode::HoldNew, std::chrono::milliseconds(0)); }

void FaultRelay::drop() { loop_->command(Mode::Drop, std::chrono::milliseconds(0)); }

void FaultRelay::reset() { loop_->command(Mode::Reset, std::chrono::milliseconds(0)); }

FaultRelayStats FaultRelay::stats() const { return loop_->stats(); }

}  // namespace pgsidecar::testing
