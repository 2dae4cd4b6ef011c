// What the pooling integration tests share: a pgsidecar config in front of the test
// cluster's primary, a sampler of the backends a pool opens on the primary, the psql and
// pgbench binaries run as child processes, and raw
// sockets for the bytes no well-behaved client sends (garbage, CancelRequests, reading
// an unsolicited ErrorResponse).
//
// Header-only: the integration test target compiles tests/integration/*_test.cpp, so
// shared code lives in inline functions here. Nothing here waits without a bound.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "tests/support/cluster.h"
#include "tests/support/pg.h"
#include "tests/support/proxy_process.h"

extern char** environ;

namespace pgsidecar::testing {

using Clock = std::chrono::steady_clock;

// ---- the proxy's configuration ------------------------------------------------------

// A pgsidecar config with one user (the cluster's app user, plain-text password) and
// one database entry "app" whose primary is the cluster's primary.
struct ProxyConfig {
  std::string mode = "transaction";  // [pool_defaults] mode
  int size = 10;                     // [pool_defaults] size
  int workers = 2;                   // [listen] workers: two loops, so pools span workers
  std::string auth_method;           // [auth] method; empty: the default (scram-sha-256)
  std::string password;              // the app user's password; empty: the cluster's
  std::string server_password;       // the app user's server_password; empty: none
  std::string pool_extra;            // more lines for [pool_defaults]
  std::string listen_extra;          // more lines for [listen]
  std::string extra;                 // more TOML at the end (e.g. [[databases]] entries)
  int primary_port = 0;              // the entry's primary port; 0: the cluster's (else a relay's)
};

// A config in `mode` with a pool of `size` servers; the other fields at their defaults.
inline ProxyConfig pool_config(std::string mode, int size = 10) {
  ProxyConfig c;
  c.mode = std::move(mode);
  c.size = size;
  return c;
}

inline std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

inline std::string proxy_config(const Cluster& cluster, const ProxyConfig& c) {
  std::string t;
  t += "[listen]\naddress = \"127.0.0.1\"\nport = @PORT@\nworkers = " + std::to_string(c.workers) + "\n";
  t += c.listen_extra + "\n";
  if (!c.auth_method.empty()) t += "[auth]\nmethod = " + toml_string(c.auth_method) + "\n\n";
  t += "[[users]]\nname = " + toml_string(cluster.app_user()) + "\n";
  t += "password = " + toml_string(c.password.empty() ? cluster.app_password() : c.password) + "\n";
  if (!c.server_password.empty()) t += "server_password = " + toml_string(c.server_password) + "\n";
  t += "\n[pool_defaults]\nmode = " + toml_string(c.mode) + "\nsize = " + std::to_string(c.size) + "\n";
  t += c.pool_extra + "\n";
  const std::string primary =
      c.primary_port == 0 ? cluster.primary_url() : cluster.url(c.primary_port);
  t += "[[databases]]\nname = \"app\"\nprimary = " + toml_string(primary) + "\n\n";
  t += c.extra + "\n";
  return t;
}

// Starts the proxy with this config or fails the test case with the proxy's output.
inline void start_proxy(ProxyProcess& proxy, const Cluster& cluster, const ProxyConfig& c) {
  const std::string text = proxy_config(cluster, c);
  INFO("config:\n", text);
  REQUIRE_MESSAGE(proxy.start(text), proxy.error());
}

// Conninfo for the app user through the proxy, to `database` (default: "app").
inline std::string app_conninfo(const ProxyProcess& proxy, const Cluster& cluster,
                                std::string_view database = "app") {
  return proxy.conninfo(cluster.app_user(), cluster.app_password(), database);
}

inline Connection connect_ok(const std::string& conninfo,
                             std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  Connection c = Connection::open(conninfo, timeout);
  REQUIRE_MESSAGE(c.ok(), "connecting failed: ", c.sqlstate(), " ", c.error());
  return c;
}

// Runs the rest of the test case once per pool mode: each SUBCASE pass re-enters the
// test case from the top, so every mode gets a proxy of its own.
inline std::string each_pool_mode() {
  std::string mode = "transaction";
  SUBCASE("in transaction mode") { mode = "transaction"; }
  SUBCASE("in session mode") { mode = "session"; }
  return mode;
}

inline std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::to_string(rng() % 1000000000ULL);
}

// A process's resident memory in bytes, from /proc/<pid>/status; 0 when unknown.
inline std::size_t resident_bytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Raises RLIMIT_NOFILE's soft limit to at least `wanted` (up to the hard limit); the
// proxy, started afterwards, inherits it. Returns the soft limit in force.
inline rlim_t raise_open_files_limit(rlim_t wanted) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < wanted) {
    lim.rlim_cur = std::min(wanted, lim.rlim_max);
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

// ---- backends on the primary ---------------------------------------------------------

// Samples every `every`, from a superuser connection of its own, the client backends of
// `user` in `database` on the primary. The proxy's health probes (application_name
// pgsidecar-probe:...) stay beside the pool and are not counted.
//
// A server connection the proxy has just closed stays in pg_stat_activity until its
// backend process has exited, which can take a few milliseconds on a loaded machine,
// while the slot it freed is already in use again. So the bound is checked on backends
// present in two consecutive samples: a transient exiting backend is gone by the next
// sample, a pool that really opened too many servers is not.
class BackendSampler {
 public:
  BackendSampler(const Cluster& cluster, std::string user, std::string database,
                 std::chrono::milliseconds every = std::chrono::milliseconds(20))
      : monitor_(Connection::open(cluster.superuser_conninfo(cluster.primary_port(), "postgres"))),
        user_(std::move(user)),
        database_(std::move(database)),
        every_(every) {
    REQUIRE_MESSAGE(monitor_.ok(), monitor_.error());
    thread_ = std::thread([this] { run(); });
  }
  ~BackendSampler() { stop(); }
  BackendSampler(const BackendSampler&) = delete;
  BackendSampler& operator=(const BackendSampler&) = delete;

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void reset() {
    std::lock_guard lock(mu_);
    persistent_max_ = 0;
    raw_max_ = 0;
    samples_ = 0;
    seen_.clear();
    previous_.clear();
    busiest_.clear();
  }
  // The most backends present in two consecutive samples.
  int max() const {
    std::lock_guard lock(mu_);
    return persistent_max_;
  }
  // The most backends in any one sample, exiting ones included.
  int raw_max() const {
    std::lock_guard lock(mu_);
    return raw_max_;
  }
  // How many distinct backends were seen: how often the pool opened a server.
  int distinct() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(seen_.size());
  }
  int samples() const {
    std::lock_guard lock(mu_);
    return samples_;
  }
  bool failed() const { return failed_; }
  // The backends of the sample behind max(): pid | state | application_name | start | query.
  std::string busiest() const {
    std::lock_guard lock(mu_);
    return busiest_;
  }

 private:
  void run() {
    while (!stop_) {
      const QueryResult r = monitor_.exec_params(
          "SELECT pid, state, application_name, backend_start, left(query, 60) FROM pg_stat_activity "
          "WHERE usename = $1 AND datname = $2 AND backend_type = 'client backend' "
          "AND NOT starts_with(application_name, 'pgsidecar-probe:') ORDER BY backend_start",
          {user_, database_}, std::chrono::seconds(5));
      if (!r.ok) {
        failed_ = true;
        return;
      }
      {
        std::lock_guard lock(mu_);
        std::set<std::string> current;
        for (const auto& row : r.rows) current.insert(row[0]);
        int persistent = 0;
        for (const auto& pid : current) persistent += static_cast<int>(previous_.count(pid));
        raw_max_ = std::max(raw_max_, static_cast<int>(current.size()));
        if (persistent > persistent_max_) {
          persistent_max_ = persistent;
          busiest_.clear();
          for (const auto& row : r.rows) {
            for (const auto& v : row) busiest_ += v + " | ";
            busiest_ += "\n";
          }
        }
        seen_.insert(current.begin(), current.end());
        previous_ = std::move(current);
        ++samples_;
      }
      std::this_thread::sleep_for(every_);
    }
  }

  Connection monitor_;
  std::string user_;
  std::string database_;
  std::chrono::milliseconds every_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  mutable std::mutex mu_;
  int persistent_max_ = 0;
  int raw_max_ = 0;
  int samples_ = 0;
  std::set<std::string> seen_;
  std::set<std::string> previous_;
  std::string busiest_;
};

// ---- child processes (psql, pgbench) ------------------------------------------------

struct ChildResult {
  int exit_code = -1;       // 0..255, 128 + signal, -1 when it could not run
  bool timed_out = false;   // killed at the deadline
  std::string out;          // stdout
  std::string err;          // stderr
  std::string describe() const {
    return "exit " + std::to_string(exit_code) + (timed_out ? " (timed out)" : "") + "\n--- stdout ---\n" +
           out.substr(0, 4000) + "\n--- stderr ---\n" + err.substr(0, 4000);
  }
};

// Runs argv[0] with our environment minus every PG* variable, plus `env`; stdin from
// `stdin_path` (default /dev/null). Killed with SIGKILL at the deadline.
inline ChildResult run_program(const std::vector<std::string>& argv,
                               const std::map<std::string, std::string>& env,
                               std::chrono::milliseconds timeout, const std::string& stdin_path = "/dev/null") {
  ChildResult r;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string name(entry.substr(0, entry.find('=')));
    if (name.rfind("PG", 0) == 0 || env.count(name) != 0) continue;
    env_strings.emplace_back(entry);
  }
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);

  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return r;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return r;
  }
  const int in_fd = open(stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (in_fd >= 0) dup2(in_fd, STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    close_range(3, ~0U, 0);
    execve(argp[0], argp.data(), envp.data());
    _exit(127);
  }
  if (in_fd >= 0) close(in_fd);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (child < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    r.err = std::string("fork failed: ") + std::strerror(errno);
    return r;
  }
  const auto deadline = Clock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_pipes = 2;
  char buf[65536];
  while (open_pipes > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      r.timed_out = true;
      kill(child, SIGKILL);
      break;
    }
    const int n = poll(fds, 2, static_cast<int>(std::min<long long>(left, 1000)));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_pipes;
      }
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) close(p.fd);
  int status = 0;
  if (waitpid(child, &status, 0) == child) {
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.exit_code = 128 + WTERMSIG(status);
  }
  return r;
}

// psql against host (an address or a Unix socket directory) and port, unaligned, tuples
// only, stopping at the first error, never prompting for a password. An empty password
// leaves PGPASSWORD unset.
inline ChildResult run_psql(const Cluster& cluster, const std::string& host, int port,
                            const std::vector<std::string>& args, const std::string& password,
                            std::chrono::milliseconds timeout = std::chrono::seconds(60),
                            const std::string& database = "app") {
  std::vector<std::string> argv = {cluster.pg_bin() + "/psql", "-X", "-A", "-t", "-q", "-w",
                                   "-v", "ON_ERROR_STOP=1", "-h", host, "-p", std::to_string(port),
                                   "-U", cluster.app_user(), "-d", database};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> env = {{"PGCONNECT_TIMEOUT", "10"}, {"PGCLIENTENCODING", "UTF8"}};
  if (!password.empty()) env["PGPASSWORD"] = password;
  return run_program(argv, env, timeout);
}

// psql through the proxy's TCP listener with the app user's password.
inline ChildResult psql_via_proxy(const Cluster& cluster, const ProxyProcess& proxy,
                                  const std::vector<std::string>& args,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  return run_psql(cluster, "127.0.0.1", proxy.port(), args, cluster.app_password(), timeout);
}

// ---- raw sockets ----------------------------------------------------------------------

// A file descriptor closed on scope exit.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { reset(); }
  Socket(Socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Socket& operator=(Socket&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// A blocking TCP connection to 127.0.0.1:port; !ok() on failure.
inline Socket connect_tcp(int port) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.ok()) return s;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) s.reset();
  return s;
}

// Writes all of bytes (the fd may be non-blocking); false when the peer is gone.
inline bool send_all(int fd, const std::vector<std::byte>& bytes,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = Clock::now() + timeout;
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (Clock::now() >= deadline) return false;
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 100);
      continue;
    }
    return false;
  }
  return true;
}

// Frontend messages built by hand, independent of the proxy's own protocol code.
class Bytes {
 public:
  Bytes& byte(std::uint8_t b) {
    out_.push_back(static_cast<std::byte>(b));
    return *this;
  }
  Bytes& int32(std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) byte(static_cast<std::uint8_t>(v >> shift));
    return *this;
  }
  Bytes& cstring(std::string_view s) {
    for (const char c : s) byte(static_cast<std::uint8_t>(c));
    return byte(0);
  }
  Bytes& raw(const std::vector<std::byte>& b) {
    out_.insert(out_.end(), b.begin(), b.end());
    return *this;
  }
  const std::vector<std::byte>& get() const { return out_; }

 private:
  std::vector<std::byte> out_;
};

// StartupMessage (F): Int32 len, Int32(196608), then name/value pairs and a final 0.
inline std::vector<std::byte> startup_message(std::string_view user, std::string_view database) {
  Bytes body;
  body.int32(196608).cstring("user").cstring(user).cstring("database").cstring(database).byte(0);
  return Bytes{}.int32(static_cast<std::uint32_t>(body.get().size() + 4)).raw(body.get()).get();
}

// CancelRequest (F): Int32(16) Int32(80877102) Int32 process ID, Int32 secret key.
inline std::vector<std::byte> cancel_request(std::int32_t pid, std::int32_t secret) {
  return Bytes{}
      .int32(16)
      .int32(80877102)
      .int32(static_cast<std::uint32_t>(pid))
      .int32(static_cast<std::uint32_t>(secret))
      .get();
}

struct BackendMessage {
  char tag = 0;
  std::vector<std::byte> body;
};

// What a peer sent before it closed the connection or the wait ended.
struct Received {
  std::vector<BackendMessage> messages;
  bool closed = false;      // EOF or reset
  bool timed_out = false;   // the wait ended with the connection still open
  std::size_t stray_bytes = 0;  // an incomplete message at the end

  // The first ErrorResponse's fields, or nullopt.
  std::optional<std::map<char, std::string>> error() const {
    for (const auto& m : messages) {
      if (m.tag != 'E') continue;
      std::map<char, std::string> fields;
      std::size_t i = 0;
      while (i < m.body.size() && m.body[i] != std::byte{0}) {
        const char code = static_cast<char>(m.body[i++]);
        std::string value;
        while (i < m.body.size() && m.body[i] != std::byte{0}) value += static_cast<char>(m.body[i++]);
        ++i;
        fields[code] = value;
      }
      return fields;
    }
    return std::nullopt;
  }
  std::string sqlstate() const {
    const auto e = error();
    return e && e->count('C') != 0 ? e->at('C') : "";
  }
  std::string message() const {
    const auto e = error();
    return e && e->count('M') != 0 ? e->at('M') : "";
  }
  std::string severity() const {
    const auto e = error();
    return e && e->count('V') != 0 ? e->at('V') : "";
  }
  std::string tags() const {
    std::string t;
    for (const auto& m : messages) t += m.tag;
    return t;
  }
  std::string describe() const {
    return "tags [" + tags() + "]" + (closed ? " closed" : "") + (timed_out ? " timed out" : "") +
           (error() ? " error " + severity() + " " + sqlstate() + ": " + message() : "");
  }
};

// Reads backend messages from fd until the peer closes the connection, until `stop`
// returns true for what has arrived, or until timeout.
template <typename Stop>
Received receive(int fd, std::chrono::milliseconds timeout, Stop stop) {
  Received r;
  std::vector<std::byte> buf;
  const auto deadline = Clock::now() + timeout;
  auto parse = [&] {
    std::size_t at = 0;
    while (buf.size() - at >= 5) {
      const auto* p = reinterpret_cast<const unsigned char*>(buf.data() + at);
      const std::uint32_t len = (std::uint32_t{p[1]} << 24) | (std::uint32_t{p[2]} << 16) |
                                (std::uint32_t{p[3]} << 8) | std::uint32_t{p[4]};
      if (len < 4 || buf.size() - at - 1 < len) break;
      BackendMessage m;
      m.tag = static_cast<char>(p[0]);
      m.body.assign(buf.begin() + static_cast<std::ptrdiff_t>(at + 5),
                    buf.begin() + static_cast<std::ptrdiff_t>(at + 1 + len));
      r.messages.push_back(std::move(m));
      at += 1 + len;
    }
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(at));
  };
  for (;;) {
    if (stop(r)) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      r.timed_out = true;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (n < 0 && errno != EINTR) {
      r.closed = true;
      break;
    }
    if (n <= 0) continue;
    std::byte chunk[8192];
    const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got > 0) {
      buf.insert(buf.end(), chunk, chunk + got);
      parse();
      continue;
    }
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    r.closed = true;  // EOF, or ECONNRESET after the peer closed with our bytes unread
    break;
  }
  r.stray_bytes = buf.size();
  return r;
}

// Reads until the peer closes the connection (or timeout).
inline Received receive_until_closed(int fd, std::chrono::milliseconds timeout) {
  return receive(fd, timeout, [](const Received&) { return false; });
}

// Reads the first message only (or until close / timeout).
inline Received receive_first(int fd, std::chrono::milliseconds timeout) {
  return receive(fd, timeout, [](const Received& r) { return !r.messages.empty(); });
}

// The authentication request code the proxy answers a StartupMessage with: 0 Ok (trust),
// 5 MD5Password, 10 SASL; -1 when it sent no Authentication message.
inline int authentication_request(int port, std::string_view user, std::string_view database) {
  Socket s = connect_tcp(port);
  if (!s.ok() || !send_all(s.fd(), startup_message(user, database))) return -1;
  const Received r = receive_first(s.fd(), std::chrono::seconds(5));
  if (r.messages.empty() || r.messages[0].tag != 'R' || r.messages[0].body.size() < 4) return -1;
  const auto& b = r.messages[0].body;
  return static_cast<int>((std::to_integer<std::uint32_t>(b[0]) << 24) | (std::to_integer<std::uint32_t>(b[1]) << 16) |
                          (std::to_integer<std::uint32_t>(b[2]) << 8) | std::to_integer<std::uint32_t>(b[3]));
}

// ---- libpq beyond the Connection helper --------------------------------------------

// Waits (bounded) for the result of a query sent with PQsendQuery and drains the rest.
// Returns the first error's SQLSTATE ("" when every result succeeded); `message` gets its
// primary text. "timeout" when no answer came in time, "08006" when the link broke first.
inline std::string await_query(PGconn* conn, std::chrono::milliseconds timeout, std::string* message = nullptr) {
  const auto deadline = Clock::now() + timeout;
  std::string state;
  for (;;) {
    while (PQisBusy(conn) != 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return "timeout";
      pollfd p{PQsocket(conn), POLLIN, 0};
      if (p.fd < 0) return std::string(kConnectionLostSqlState);
      poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
      if (PQconsumeInput(conn) == 0) break;  // libpq queues an error result for it
    }
    PGresult* res = PQgetResult(conn);
    if (res == nullptr) return state;
    const ExecStatusType st = PQresultStatus(res);
    if ((st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) && state.empty()) {
      const char* code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
      state = code != nullptr ? code : std::string(kConnectionLostSqlState);
      if (message != nullptr) *message = primary != nullptr ? primary : PQerrorMessage(conn);
    }
    PQclear(res);
    if (PQstatus(conn) == CONNECTION_BAD) return state.empty() ? std::string(kConnectionLostSqlState) : state;
  }
}

// Sends a query without waiting for it; fails the test when libpq refuses.
inline void send_query(Connection& c, const std::string& sql) {
  REQUIRE(c.ok());
  REQUIRE_MESSAGE(PQsendQuery(c.raw(), sql.c_str()) == 1, PQerrorMessage(c.raw()));
  while (PQflush(c.raw()) == 1) {
    pollfd p{PQsocket(c.raw()), POLLOUT, 0};
    poll(&p, 1, 100);
  }
}

// The backend on the primary running a statement that contains `marker` (not ours):
// its pid, or 0 when none shows up within timeout.
inline int wait_backend_running(Connection& monitor, const std::string& marker, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  do {
    const QueryResult r = monitor.exec_params(
        "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
        "AND strpos(query, $1) > 0",
        {marker});
    if (r.ok && !r.rows.empty()) return std::stoi(r.value());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (Clock::now() < deadline);
  return 0;
}

// How many backends (other than the caller's) run a statement containing `marker`.
inline int count_backends_running(Connection& monitor, const std::string& marker) {
  const QueryResult r = monitor.exec_params(
      "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' "
      "AND strpos(query, $1) > 0",
      {marker});
  REQUIRE_MESSAGE(r.ok, r.describe());
  return std::stoi(r.value());
}

// GET /metrics from the proxy's HTTP port ([http] port = @HTTP_PORT@): the whole text.
inline std::string metrics_text(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  REQUIRE(send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[8192];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    response.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return response;
}

// The value of the sample `series` (a name, with its labels if it has any:
// `pgsidecar_client_pins_total{reason="LISTEN"}`); `absent` when there is no such line.
inline uint64_t metric_value(int port, std::string_view series, std::optional<uint64_t> absent = std::nullopt) {
  const std::string response = metrics_text(port);
  const std::string prefix = "\n" + std::string(series) + " ";
  const auto at = response.find(prefix);
  if (at == std::string::npos && absent) return *absent;
  REQUIRE_MESSAGE(at != std::string::npos, "no ", series, " in /metrics:\n", response);
  return std::stoull(response.substr(at + prefix.size()));
}

}  // namespace pgsidecar::testing
