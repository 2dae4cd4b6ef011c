#include "tests/support/cluster.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "tests/support/pg.h"

#ifndef PGSIDECAR_CLUSTER_SCRIPT
#define PGSIDECAR_CLUSTER_SCRIPT "tests/support/cluster.sh"
#endif

namespace pgsidecar::testing {
namespace {

// Undoes bash's printf %q for the values cluster.sh writes: backslash escapes and
// quoted stretches ('...' literal, "..." with backslash escapes).
std::string unquote(std::string_view raw) {
  std::string out;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '\\' && i + 1 < raw.size()) {
      out += raw[++i];
    } else if (c == '\'') {
      while (++i < raw.size() && raw[i] != '\'') out += raw[i];
    } else if (c == '"') {
      while (++i < raw.size() && raw[i] != '"') {
        if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
        out += raw[i];
      }
    } else {
      out += c;
    }
  }
  return out;
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

int parse_port(const std::string& text, const char* key) {
  char* end = nullptr;
  const long port = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || port <= 0 || port > 65535) {
    throw std::runtime_error(std::string("cluster env: ") + key + " is not a port: '" + text + "'");
  }
  return static_cast<int>(port);
}

}  // namespace

Cluster& Cluster::shared() {
  static Cluster* cluster = [] {
    const char* path = std::getenv("PGSIDECAR_CLUSTER_ENV");
    if (path == nullptr || *path == '\0') {
      throw std::runtime_error(
          "PGSIDECAR_CLUSTER_ENV is not set: run integration tests through ctest "
          "(ctest -L integration), or start a cluster with "
          "'tests/support/cluster.sh start DIR' and set PGSIDECAR_CLUSTER_ENV=DIR/env");
    }
    return new Cluster(path);  // lives for the whole run, like the cluster itself
  }();
  return *cluster;
}

Cluster::Cluster(const std::string& env_file) : env_file_(env_file) { load_env_file(); }

void Cluster::load_env_file() {
  std::ifstream in(env_file_);
  if (!in) {
    throw std::runtime_error("cannot read cluster env file " + env_file_ +
                             ": did the ctest fixture test cluster.start pass?");
  }
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    // In place: references value() handed out stay valid across a re-read.
    env_[line.substr(0, eq)] = unquote(std::string_view(line).substr(eq + 1));
  }
  primary_port_ = parse_port(value("PRIMARY_PORT"), "PRIMARY_PORT");
  replica_port_ = parse_port(value("REPLICA_PORT"), "REPLICA_PORT");
}

const std::string& Cluster::value(std::string_view key) const {
  const auto it = env_.find(key);
  if (it == env_.end()) {
    throw std::out_of_range("cluster env file " + env_file_ + " has no " + std::string(key));
  }
  return it->second;
}

std::string Cluster::conninfo(int port, std::string_view user, std::string_view password,
                              std::string_view database) const {
  const std::string port_text = std::to_string(port);
  return make_conninfo(
      {{"host", host()},
       {"port", port_text},
       {"user", user.empty() ? std::string_view(app_user()) : user},
       {"password", password.empty() ? std::string_view(app_password()) : password},
       {"dbname", database.empty() ? std::string_view(this->database()) : database},
       {"sslmode", "disable"}});
}

std::string Cluster::primary_conninfo(std::string_view user, std::string_view password,
                                      std::string_view database) const {
  return conninfo(primary_port_, user, password, database);
}

std::string Cluster::replica_conninfo(std::string_view user, std::string_view password,
                                      std::string_view database) const {
  return conninfo(replica_port_, user, password, database);
}

std::string Cluster::superuser_conninfo(int port, std::string_view database) const {
  return conninfo(port, superuser(), superuser_password(), database);
}

std::string Cluster::url(int port, std::string_view user) const {
  const std::string who = user.empty() ? std::string() : std::string(user) + "@";
  return "postgres://" + who + host() + ":" + std::to_string(port) + "/" + database();
}

std::string Cluster::primary_url(std::string_view user) const { return url(primary_port_, user); }

std::string Cluster::replica_url(std::string_view user) const { return url(replica_port_, user); }

int Cluster::green_port() const { return parse_port(value("GREEN_PORT"), "GREEN_PORT"); }

std::string Cluster::green_conninfo(std::string_view user, std::string_view password,
                                    std::string_view database) const {
  return conninfo(green_port(), user, password, database);
}

std::string Cluster::green_url(std::string_view user) const { return url(green_port(), user); }

void Cluster::run(std::string_view command) {
  const auto it = env_.find("CLUSTER_SCRIPT");
  const std::string script = it != env_.end() ? it->second : PGSIDECAR_CLUSTER_SCRIPT;
  const std::string line = "bash " + shell_quote(script) + " " + shell_quote(command) + " " +
                           shell_quote(state_dir()) + " 2>&1";
  FILE* pipe = popen(line.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + line);
  std::string output;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) output.append(buf, n);
  const int status = pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("cluster.sh " + std::string(command) + " failed (status " +
                             std::to_string(status) + "):\n" + output);
  }
}

void Cluster::kill_primary() { run("kill-primary"); }
void Cluster::stop_primary() { run("stop-primary"); }
void Cluster::start_primary() { run("start-primary"); }
void Cluster::restart_primary() { run("restart-primary"); }
void Cluster::kill_replica() { run("kill-replica"); }
void Cluster::stop_replica() { run("stop-replica"); }
void Cluster::start_replica() { run("start-replica"); }
void Cluster::promote_replica() { run("promote-replica"); }
void Cluster::reset() { run("reset"); }

void Cluster::start_green() {
  run("start-green");
  load_env_file();  // cluster.sh wrote GREEN_PORT into it
}

void Cluster::stop_green() { run("stop-green"); }

void Cluster::start_tls() {
  run("start-tls");
  load_env_file();  // cluster.sh wrote TLS_PORT and TLS_DIR into it
}

int Cluster::tls_port() const { return parse_port(value("TLS_PORT"), "TLS_PORT"); }

std::string Cluster::tls_file(std::string_view name) const { return value("TLS_DIR") + "/" + std::string(name); }

StopGreenOnExit::~StopGreenOnExit() {
  try {
    cluster_.stop_green();
  } catch (const std::exception& e) {
    std::cerr << "stopping the green server failed: " << e.what() << "\n";
  }
}

ResetOnExit::~ResetOnExit() {
  try {
    cluster_.reset();
  } catch (const std::exception& e) {
    std::cerr << "resetting the test cluster failed: " << e.what() << "\n";
  }
}

bool Cluster::wait_replica_caught_up(std::chrono::milliseconds timeout) const {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  auto left = [&] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  };
  const QueryResult target = exec_once(superuser_conninfo(primary_port_, "postgres"),
                                       "SELECT pg_current_wal_lsn()", left());
  if (!target.ok || target.rows.empty()) return false;
  Connection replica = Connection::open(superuser_conninfo(replica_port_, "postgres"), left());
  if (!replica.ok()) return false;
  const std::string query = "SELECT pg_last_wal_replay_lsn() >= '" + target.value() + "'::pg_lsn";
  while (Clock::now() < deadline) {
    const QueryResult r = replica.exec(query, left());
    if (!r.ok) return false;
    if (!r.rows.empty() && r.value() == "t") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace pgsidecar::testing
