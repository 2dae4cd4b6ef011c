#include "tests/support/proxy_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/support/pg.h"

extern char** environ;

namespace pgsidecar::testing {

using Clock = std::chrono::steady_clock;

// What the failure reporter needs to show a proxy's output, alive or already gone.
struct ProxyLogEntry {
  std::string label;       // "pgsidecar pid 123, port 25001"
  std::string path;        // its stderr file while the directory exists
  std::string final_tail;  // the tail, kept once the directory is removed
  bool alive = true;
  bool printed = false;
};

namespace {

std::string read_tail(const std::string& path, std::size_t lines) {
  std::ifstream in(path);
  if (!in) return "(no output file " + path + ")\n";
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(std::move(line));
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += l + "\n";
  return out.empty() ? "(no output)\n" : out;
}

// The proxies of the running test case, for the failure reporter below.
class LogRegistry {
 public:
  static LogRegistry& get() {
    static LogRegistry registry;
    return registry;
  }
  void add(std::shared_ptr<ProxyLogEntry> e) {
    std::lock_guard lock(mu_);
    entries_.push_back(std::move(e));
  }
  // A new test case (or subcase pass) starts: proxies already gone belong to the last one.
  void forget_finished() {
    std::lock_guard lock(mu_);
    std::erase_if(entries_, [](const auto& e) { return !e->alive; });
    for (auto& e : entries_) e->printed = false;
  }
  void print_unprinted(std::ostream& out) {
    std::lock_guard lock(mu_);
    for (auto& e : entries_) {
      if (e->printed) continue;
      e->printed = true;
      out << "----- last lines of " << e->label << " output -----\n"
          << (e->alive ? read_tail(e->path, 60) : e->final_tail) << "-----\n";
    }
    out.flush();
  }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<ProxyLogEntry>> entries_;
};

// A doctest listener: on a failed assertion or an exception in a test case, print what
// each of its proxies wrote.
struct ProxyOutputOnFailure : public doctest::IReporter {
  explicit ProxyOutputOnFailure(const doctest::ContextOptions& options) : out_(*options.cout) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override {
    LogRegistry::get().forget_finished();
  }
  void test_case_reenter(const doctest::TestCaseData&) override {
    LogRegistry::get().forget_finished();
  }
  void test_case_end(const doctest::CurrentTestCaseStats& stats) override {
    if (!stats.testCaseSuccess) LogRegistry::get().print_unprinted(out_);
  }
  void test_case_exception(const doctest::TestCaseException&) override {
    LogRegistry::get().print_unprinted(out_);
  }
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& data) override {
    if (data.m_failed) LogRegistry::get().print_unprinted(out_);
  }
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}

 private:
  std::ostream& out_;
};

DOCTEST_REGISTER_LISTENER("pgsidecar_proxy_output", 1, ProxyOutputOnFailure);

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) {
    text.replace(at, from.size(), to);
  }
  return text;
}

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

bool can_bind(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const sockaddr_in addr = loopback(port);
  // No SO_REUSEADDR: a port still in TIME_WAIT is skipped too.
  const bool ok = bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// One non-blocking connect attempt, bounded by timeout.
bool connects(int port, std::chrono::milliseconds timeout) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  const sockaddr_in addr = loopback(port);
  bool ok = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  if (!ok && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      ok = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
  }
  close(fd);
  return ok;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

int pick_free_port(std::initializer_list<int> avoid) {
  // Ports handed out in this process are not handed out again, even before the proxy
  // that got one has bound it.
  static std::mutex mu;
  static std::set<int> handed_out;
  static std::mt19937 rng{std::random_device{}()};
  std::lock_guard lock(mu);
  std::uniform_int_distribution<int> dist(20000, 32000);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = dist(rng);
    if (handed_out.count(port) != 0) continue;
    if (std::find(avoid.begin(), avoid.end(), port) != avoid.end()) continue;
    if (!can_bind(port)) continue;
    handed_out.insert(port);
    return port;
  }
  throw std::runtime_error("no free port in 20000..32000");
}

bool wait_port_accepts(int port, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  do {
    if (connects(port, std::chrono::milliseconds(200))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (Clock::now() < deadline);
  return false;
}

ProxyProcess::ProxyProcess() {
  const char* binary = std::getenv("PGSIDECAR_BINARY");
  if (binary == nullptr || *binary == '\0') {
    throw std::runtime_error(
        "PGSIDECAR_BINARY is not set: run integration tests through ctest, which sets it "
        "to the built pgsidecar");
  }
  binary_ = binary;
  if (access(binary_.c_str(), X_OK) != 0) {
    throw std::runtime_error("PGSIDECAR_BINARY=" + binary_ + " is not an executable file");
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/pgsidecar-test.XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  dir_ = pattern;
  port_ = pick_free_port();
  http_port_ = pick_free_port({port_});
  log_entry_ = std::make_shared<ProxyLogEntry>();
  log_entry_->label = "pgsidecar (not started), port " + std::to_string(port_);
  log_entry_->path = stderr_path();
  LogRegistry::get().add(log_entry_);
}

ProxyProcess::~ProxyProcess() {
  stop();
  log_entry_->final_tail = read_tail(stderr_path(), 60);
  log_entry_->alive = false;
  if (std::getenv("PGSIDECAR_KEEP_TMP") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

void ProxyProcess::set_env(std::string name, std::string value) {
  env_[std::move(name)] = std::move(value);
}

std::string ProxyProcess::substitute(std::string_view config_toml) const {
  std::string text(config_toml);
  text = replace_all(std::move(text), "@HTTP_PORT@", std::to_string(http_port_));
  text = replace_all(std::move(text), "@PORT@", std::to_string(port_));
  return replace_all(std::move(text), "@DIR@", dir_);
}

void ProxyProcess::write_config(std::string_view config_toml) const {
  const std::string path = config_path();
  std::ofstream out(path, std::ios::trunc);
  out << substitute(config_toml);
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

bool ProxyProcess::start(std::string_view config_toml, std::chrono::milliseconds ready_timeout) {
  if (pid_ > 0) {
    error_ = "already running (pid " + std::to_string(pid_) + ")";
    return false;
  }
  write_config(config_toml);
  error_.clear();
  exit_status_ = -1;

  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  const std::string config = config_path();
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string name(entry.substr(0, entry.find('=')));
    if (env_.count(name) == 0) env_strings.emplace_back(entry);
  }
  for (const auto& [name, value] : env_) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string arg_config = "--config";
  std::string arg0 = binary_;
  std::string arg_file = config;
  char* argv[] = {arg0.data(), arg_config.data(), arg_file.data(), nullptr};

  const int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out_fd = open(stderr_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (in_fd < 0 || out_fd < 0) {
    error_ = "cannot open /dev/null or " + stderr_path() + ": " + std::strerror(errno);
    if (in_fd >= 0) close(in_fd);
    if (out_fd >= 0) close(out_fd);
    return false;
  }
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child == 0) {
    // A test runner killed by ctest's timeout must not leave a proxy behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(in_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    close_range(3, ~0U, 0);  // no test sockets leak into the proxy
    execve(argv[0], argv, envp.data());
    static const char msg[] = "execve of the pgsidecar binary failed\n";
    [[maybe_unused]] const auto n = write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(127);
  }
  close(in_fd);
  close(out_fd);
  if (child < 0) {
    error_ = std::string("fork failed: ") + std::strerror(errno);
    return false;
  }
  pid_ = child;
  log_entry_->label = "pgsidecar pid " + std::to_string(pid_) + ", port " + std::to_string(port_);

  const auto deadline = Clock::now() + ready_timeout;
  while (Clock::now() < deadline) {
    if (!running()) {
      error_ = "pgsidecar exited with status " + std::to_string(exit_status_) +
               " before accepting connections; its output:\n" + stderr_tail();
      return false;
    }
    if (connects(port_, std::chrono::milliseconds(200))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  error_ = "pgsidecar did not accept connections on 127.0.0.1:" + std::to_string(port_) +
           " within " + std::to_string(ready_timeout.count()) + " ms; its output:\n" +
           stderr_tail();
  return false;
}

void ProxyProcess::record_exit(int status) {
  exit_status_ = decode_status(status);
  pid_ = -1;
  if (exit_status_ != 0) {
    std::cerr << "pgsidecar (port " << port_ << ") ended with status " << exit_status_
              << "; last lines of its output:\n"
              << stderr_tail() << std::flush;
  }
}

bool ProxyProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  if (r == pid_) {
    record_exit(status);
  } else {
    pid_ = -1;  // not our child any more (ECHILD): nothing to wait for
  }
  return false;
}

int ProxyProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!running()) return exit_status_;
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int ProxyProcess::stop(std::chrono::milliseconds grace) {
  if (!running()) return exit_status_;
  kill(pid_, SIGTERM);
  if (const int status = wait_exit(grace); status != -1 || pid_ <= 0) return status;
  std::cerr << "pgsidecar pid " << pid_ << " still running " << grace.count()
            << " ms after SIGTERM; sending SIGKILL\n";
  kill(pid_, SIGKILL);
  return wait_exit(std::chrono::seconds(10));
}

void ProxyProcess::signal(int signo) const {
  if (pid_ > 0) kill(pid_, signo);
}

std::string ProxyProcess::stderr_tail(std::size_t lines) const {
  return read_tail(stderr_path(), lines);
}

std::string ProxyProcess::conninfo(std::string_view user, std::string_view password,
                                   std::string_view database) const {
  const std::string port_text = std::to_string(port_);
  return make_conninfo({{"host", "127.0.0.1"},
                        {"port", port_text},
                        {"user", user},
                        {"password", password},
                        {"dbname", database},
                        {"sslmode", "disable"}});
}

}  // namespace pgsidecar::testing
