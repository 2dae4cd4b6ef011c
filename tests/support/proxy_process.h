// Runs the built pgsidecar binary (PGSIDECAR_BINARY) as a child process for one test:
// its config in a fresh temporary directory, its own free loopback ports, its stderr in
// a file. When an assertion fails while a proxy is alive (or was, in the same test case),
// the tail of that file is printed, so a failure shows what the proxy said.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace pgsidecar::testing {

struct ProxyLogEntry;

class ProxyProcess {
 public:
  // Creates the temporary directory and picks free ports (20000..32000, below the
  // kernel's ephemeral range). Throws std::runtime_error when PGSIDECAR_BINARY is unset.
  ProxyProcess();
  ~ProxyProcess();  // stop(), then removes the directory (kept if PGSIDECAR_KEEP_TMP is set)
  ProxyProcess(const ProxyProcess&) = delete;
  ProxyProcess& operator=(const ProxyProcess&) = delete;

  int port() const { return port_; }            // the client listener, 127.0.0.1
  int http_port() const { return http_port_; }  // for [http], if the config has one
  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/pgsidecar.toml"; }
  std::string stderr_path() const { return dir_ + "/stderr.log"; }

  // Environment for the child on top of ours, e.g. set_env("APP_PASSWORD", "...") for a
  // config that says password = "${APP_PASSWORD}". Applies to the next start().
  void set_env(std::string name, std::string value);

  // Writes the config (after replacing @PORT@, @HTTP_PORT@ and @DIR@), runs
  // `pgsidecar --config FILE`, and waits until 127.0.0.1:port() accepts TCP connections.
  // False when the process exits or does not listen in time; error() says why, with the
  // tail of its stderr. The child is killed if the thread that called start() ends, so
  // call it from the test's own thread.
  bool start(std::string_view config_toml,
             std::chrono::milliseconds ready_timeout = std::chrono::seconds(15));
  // Replaces the config file (same placeholders) without signalling the process.
  void write_config(std::string_view config_toml) const;

  // SIGTERM, then SIGKILL if it has not exited within grace. Returns the exit status
  // (0..255), 128 + signal number if a signal ended it, or -1 when it was not running.
  // An abnormal end prints the stderr tail.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  void signal(int signo) const;  // e.g. SIGHUP to reload; no-op when not running
  // True while the child runs; reaps it (and records its status) once it has exited.
  bool running();
  // Waits up to timeout for the child to exit by itself; its status as stop() returns it,
  // or -1 on timeout.
  int wait_exit(std::chrono::milliseconds timeout);

  pid_t pid() const { return pid_; }
  const std::string& error() const { return error_; }
  std::string stderr_tail(std::size_t lines = 60) const;
  // Conninfo through the proxy: 127.0.0.1:port(), sslmode=disable.
  std::string conninfo(std::string_view user, std::string_view password,
                       std::string_view database) const;

 private:
  std::string substitute(std::string_view config_toml) const;
  void record_exit(int status);

  std::string binary_;
  std::string dir_;
  int port_ = 0;
  int http_port_ = 0;
  pid_t pid_ = -1;
  int exit_status_ = -1;
  std::string error_;
  std::map<std::string, std::string> env_;
  std::shared_ptr<ProxyLogEntry> log_entry_;  // shared with the failure reporter
};

// A free TCP port on 127.0.0.1 in 20000..32000, not equal to any of `avoid`.
int pick_free_port(std::initializer_list<int> avoid = {});

// True once a TCP connection to 127.0.0.1:port succeeds; false after timeout.
bool wait_port_accepts(int port, std::chrono::milliseconds timeout);

}  // namespace pgsidecar::testing
