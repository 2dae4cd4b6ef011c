// Cross-thread work for one worker: any thread posts, the worker's loop runs the tasks.
#pragma once

#include "proxy/io/layer.h"

#include <uv.h>

#include <functional>
#include <mutex>
#include <vector>

namespace pgsidecar::proxy::uv {

class Mailbox {
 public:
  using Task = std::function<void()>;

  explicit Mailbox(uv_loop_t* loop);
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;
  ~Mailbox();  // the loop must have closed the handle (close()) and run its callbacks

  void post(Task t);  // safe from any thread
  void close();       // on the loop thread; pending tasks are dropped

 private:
  static void on_wake(uv_async_t* a);  // uv_async_send wake-ups coalesce: drain everything

  std::mutex mu_;
  std::vector<Task> pending_;
  std::vector<Task> running_;  // reused between wake-ups
  uv_async_t async_{};
  bool closed_ = false;
};

}  // namespace pgsidecar::proxy::uv
