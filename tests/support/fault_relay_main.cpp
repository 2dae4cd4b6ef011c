// fault_relay: the FaultRelay (tests/support/fault_relay.h) as a program, for benchmarks
// and manual use.
//
//   fault_relay --listen PORT --target HOST:PORT [--delay-ms N]
//
// --listen 0 picks a free port. Prints `port=<n>` once listening, then reads one command
// per line on stdin and answers each with one line:
//
//   pass | delay <ms> | stall | stall_replies | drop | reset   -> ok
//   stats   -> connections_accepted=.. connections_open=.. bytes_client_to_server=..
//              bytes_server_to_client=.. bytes_discarded=.. held_bytes=..
//   quit    -> ok, then exits
//
// anything else -> `error: <why>`. Exits 0 on quit, end of input, SIGTERM or SIGINT.
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "tests/support/fault_relay.h"

namespace {

using pgsidecar::testing::FaultRelay;

constexpr std::string_view kUsage =
    "usage: fault_relay --listen PORT --target HOST:PORT [--delay-ms N]\n"
    "commands on stdin: pass, delay <ms>, stall, stall_replies, drop, reset, stats, quit\n";

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

// HOST:PORT, or [v6 address]:PORT.
bool parse_target(std::string_view text, FaultRelay::Options& options) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::optional<int> port = parse_int(text.substr(colon + 1));
  if (!port || *port == 0 || *port > 65535) return false;
  options.target_host = std::string(host);
  options.target_port = *port;
  return true;
}

bool parse_args(int argc, char** argv, FaultRelay::Options& options, std::string& error) {
  bool have_listen = false;
  bool have_target = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) {
      error = "missing value after " + std::string(arg);
      return false;
    }
    const std::string_view value = argv[++i];
    if (arg == "--listen") {
      const std::optional<int> port = parse_int(value);
      if (!port || *port > 65535) {
        error = "--listen: not a port: " + std::string(value);
        return false;
      }
      options.listen_port = *port;
      have_listen = true;
    } else if (arg == "--target") {
      if (!parse_target(value, options)) {
        error = "--target: expected HOST:PORT, got " + std::string(value);
        return false;
      }
      have_target = true;
    } else if (arg == "--delay-ms") {
      const std::optional<int> ms = parse_int(value);
      if (!ms) {
        error = "--delay-ms: not a number of milliseconds: " + std::string(value);
        return false;
      }
      options.delay = std::chrono::milliseconds(*ms);
    } else {
      error = "unknown option " + std::string(arg);
      return false;
    }
  }
  if (!have_listen || !have_target) {
    error = "--listen and --target are required";
    return false;
  }
  return true;
}

std::string stats_line(const FaultRelay& relay) {
  const auto s = relay.stats();
  return "connections_accepted=" + std::to_string(s.connections_accepted) +
         " connections_open=" + std::to_string(s.connections_open) +
         " bytes_client_to_server=" + std::to_string(s.bytes_client_to_server) +
         " bytes_server_to_client=" + std::to_string(s.bytes_server_to_client) +
         " bytes_discarded=" + std::to_string(s.bytes_discarded) +
         " held_bytes=" + std::to_string(s.held_bytes);
}

enum class Next { Continue, Quit };

// Runs one command line; writes its answer.
Next run_command(FaultRelay& relay, std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string answer = "ok";
  Next next = Next::Continue;
  if (line == "pass") {
    relay.pass();
  } else if (line == "stall") {
    relay.stall();
  } else if (line == "stall_replies") {
    relay.stall_replies();
  } else if (line == "drop") {
    relay.drop();
  } else if (line == "reset") {
    relay.reset();
  } else if (line == "stats") {
    answer = stats_line(relay);
  } else if (line == "quit") {
    next = Next::Quit;
  } else if (line.starts_with("delay ")) {
    const std::optional<int> ms = parse_int(line.substr(6));
    if (ms) {
      relay.delay(std::chrono::milliseconds(*ms));
    } else {
      answer = "error: delay takes a number of milliseconds";
    }
  } else {
    answer = "error: unknown command \"" + std::string(line) + "\"";
  }
  std::printf("%s\n", answer.c_str());
  std::fflush(stdout);
  return next;
}

// Reads commands until quit, end of input or a stop signal (read from signal_fd).
void serve_commands(FaultRelay& relay, int signal_fd) {
  std::string input;
  char chunk[4096];
  for (;;) {
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;  // SIGTERM or SIGINT
    if (fds[0].revents == 0) continue;
    const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // end of input
    input.append(chunk, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t end; (end = input.find('\n', start)) != std::string::npos; start = end + 1) {
      if (run_command(relay, std::string_view(input).substr(start, end - start)) == Next::Quit) return;
    }
    input.erase(0, start);
  }
}

}  // namespace

int main(int argc, char** argv) {
  FaultRelay::Options options;
  std::string error;
  if (!parse_args(argc, argv, options, error)) {
    std::fprintf(stderr, "fault_relay: %s\n%.*s", error.c_str(), static_cast<int>(kUsage.size()),
                 kUsage.data());
    return 2;
  }
  // Blocked before the relay's thread starts, so that only the signalfd sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  const int signal_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (signal_fd < 0) {
    std::perror("fault_relay: signalfd");
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);  // stdout closed by the reader: a write error, not an exit
  try {
    FaultRelay relay(options);
    std::printf("port=%d\n", relay.port());
    std::fflush(stdout);
    serve_commands(relay, signal_fd);
    relay.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());  // already says "fault relay: ..."
    ::close(signal_fd);
    return 1;
  }
  ::close(signal_fd);
  return 0;
}
