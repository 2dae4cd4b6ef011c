// pgsidecar: parse the command line, load and validate the configuration, run.
#include <csignal>
#include <cstdio>
#include <string>

#include "config/load.h"
#include "proxy/runtime/app.h"
#include "proxy/runtime/cli.h"
#include "proxy/core/log.h"

int main(int argc, char** argv) {
  using namespace pgsidecar;
  proxy::CliOptions cli;
  std::string error;
  if (!proxy::parse_cli(argc, argv, cli, error)) {
    std::fprintf(stderr, "pgsidecar: %s\n\n%s", error.c_str(), proxy::usage_text().c_str());
    return 2;
  }
  if (cli.help) {
    std::fputs(proxy::usage_text().c_str(), stdout);
    return 0;
  }
  if (cli.version) {
    std::printf("pgsidecar %s\n", PGSIDECAR_VERSION);
    return 0;
  }
  if (cli.config_path.empty()) {
    std::fprintf(stderr, "pgsidecar: --config FILE is required\n\n%s", proxy::usage_text().c_str());
    return 2;
  }
  config::LoadResult loaded = config::load_file(cli.config_path);
  if (!loaded.problems.empty()) {
    std::fprintf(stderr, "%s: %zu problem%s:\n", cli.config_path.c_str(), loaded.problems.size(),
                 loaded.problems.size() == 1 ? "" : "s");
    for (const auto& p : loaded.problems) std::fprintf(stderr, "  %s\n", p.to_string().c_str());
    return 1;
  }
  if (cli.check) {
    // The certificate and key files too: a reload would refuse them, a start fail.
    std::shared_ptr<const proxy::ClientTlsContext> tls;
    if (!proxy::App::load_client_tls(*loaded.config, tls, error)) {
      std::fprintf(stderr, "%s: 1 problem:\n  tls: %s\n", cli.config_path.c_str(), error.c_str());
      return 1;
    }
    std::printf("%s: configuration is valid\n", cli.config_path.c_str());
    return 0;
  }
  if (const char* level = std::getenv("PGSIDECAR_LOG_LEVEL")) {
    const std::string l = level;
    if (l == "debug") proxy::set_log_level(proxy::LogLevel::Debug);
    if (l == "warn") proxy::set_log_level(proxy::LogLevel::Warn);
    if (l == "error") proxy::set_log_level(proxy::LogLevel::Error);
  }
  std::signal(SIGPIPE, SIG_IGN);  // a vanished peer is a write error, not a process exit
  proxy::App app(loaded.config, cli.config_path);
  return app.run();
}
