// ctest: DISTURBS_CLUSTER (the primary's processes are stopped with SIGSTOP for 10 s)
//
// A hung primary for real: its postmaster and every child of it (backends, walsender,
// checkpointer...) stopped with SIGSTOP for 10 s, the replica healthy, 20 readers and 4
// writers through pgsidecar. The checks are those of failover_load.h: at least 99.9 % of
// reads succeed and all of those that start once the primary is declared down (timeout x
// failures_before_down after suspect_after), writes end within write_wait + 1 s, nothing
// hangs, every acknowledged write is there afterwards. SIGCONT is sent when the test
// leaves, also early.
//
// PostgreSQL runs as an unprivileged user; the test signals it as root (or as that user).
//
// Cost: about 13 s.
#include <doctest/doctest.h>

#include <csignal>
#include <dirent.h>
#include <sys/types.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/failover_load.h"

namespace {

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

// The parent pid of `pid` from /proc/<pid>/stat ("pid (comm) state ppid ..."), 0 if gone.
pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  const std::size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 1));
  char state = 0;
  pid_t ppid = 0;
  rest >> state >> ppid;
  return ppid;
}

// The postmaster: the first line of postmaster.pid in its data directory.
pid_t primary_postmaster(const Cluster& cluster) {
  std::ifstream pidfile(cluster.state_dir() + "/run/primary/postmaster.pid");
  pid_t postmaster = 0;
  pidfile >> postmaster;
  REQUIRE_MESSAGE(postmaster > 0, "no postmaster.pid under ", cluster.state_dir(), "/run/primary");
  return postmaster;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> pids;
  DIR* proc = opendir("/proc");
  REQUIRE(proc != nullptr);
  while (const dirent* e = readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid > 0 && parent_of(pid) == parent) pids.push_back(pid);
  }
  closedir(proc);
  return pids;
}

// stop(): the postmaster first (so that it forks no more backends), then every child it
// has then; SIGCONT for all of them at resume() or when it goes out of scope.
class StoppedProcesses {
 public:
  explicit StoppedProcesses(pid_t postmaster) : postmaster_(postmaster) {}
  ~StoppedProcesses() { resume(); }
  StoppedProcesses(const StoppedProcesses&) = delete;
  StoppedProcesses& operator=(const StoppedProcesses&) = delete;

  void stop() {
    stopped_ = true;
    pids_ = {postmaster_};
    ::kill(postmaster_, SIGSTOP);
    for (const pid_t pid : children_of(postmaster_)) {
      pids_.push_back(pid);
      ::kill(pid, SIGSTOP);
    }
    MESSAGE("stopped the postmaster and ", pids_.size() - 1, " children");
  }
  void resume() {
    if (!stopped_) return;
    stopped_ = false;
    for (const pid_t pid : pids_) ::kill(pid, SIGCONT);
  }

 private:
  pid_t postmaster_;
  std::vector<pid_t> pids_;
  bool stopped_ = false;
};

}  // namespace

TEST_CASE("the primary's processes stopped (SIGSTOP) for 10 s: reads go on, writes end within write_wait") {
  Cluster& cluster = Cluster::shared();
  const ResetOnExit reset(cluster);
  prepare_load_tables(cluster);

  const LoadPlan plan = hang_plan(10s);
  ProxyProcess proxy;
  start_failover_proxy(proxy, cluster, hang_config(cluster, cluster.primary_url()));

  // Declared after `reset`, so destroyed before it: the primary runs again before reset().
  StoppedProcesses primary(primary_postmaster(cluster));
  const std::string run_id = "sigstop-" + std::to_string(Clock::now().time_since_epoch().count());
  const LoadOutcome out = run_load_through_fault(app_conninfo(proxy, cluster), run_id, plan,
                                                 [&] { primary.stop(); }, [&] { primary.resume(); });
  check_load_outcome(out, plan, "SIGSTOP", cluster.primary_conninfo(), run_id);
  CHECK(proxy.running());
}
