#include "proxy/runtime/cli.h"

#include <span>
#include <string_view>

namespace pgsidecar::proxy {
namespace {

bool set_config_path(std::string_view value, CliOptions& out, std::string& error) {
  if (value.empty()) {
    error = "--config needs a file name";
    return false;
  }
  if (!out.config_path.empty()) {
    error = "--config given more than once";
    return false;
  }
  out.config_path = value;
  return true;
}

}  // namespace

bool parse_cli(int argc, char** argv, CliOptions& out, std::string& error) {
  CliOptions parsed;
  const std::span<char*> args(argv, argc > 0 ? static_cast<std::size_t>(argc) : 0);
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--config" || arg == "-c") {
      if (i + 1 == args.size()) {
        error = std::string(arg) + " needs a file name";
        return false;
      }
      if (!set_config_path(args[++i], parsed, error)) return false;
    } else if (arg.starts_with("--config=")) {
      if (!set_config_path(arg.substr(std::string_view("--config=").size()), parsed, error)) return false;
    } else if (arg == "--check") {
      parsed.check = true;
    } else if (arg == "--version") {
      parsed.version = true;
    } else if (arg == "--help" || arg == "-h") {
      parsed.help = true;
    } else if (arg.starts_with("-")) {
      error = "unknown option \"" + std::string(arg) + "\" (see --help)";
      return false;
    } else {
      error = "unexpected argument \"" + std::string(arg) + "\"; the configuration file goes after --config";
      return false;
    }
  }
  if (parsed.config_path.empty() && !parsed.help && !parsed.version) {
    error = "--config FILE is required (see --help)";
    return false;
  }
  out = std::move(parsed);
  return true;
}

std::string usage_text() {
  return "Usage: pgsidecar --config FILE [--check]\n"
         "       pgsidecar --version | --help\n"
         "\n"
         "PostgreSQL connection pooler and failover proxy.\n"
         "\n"
         "Options:\n"
         "  -c, --config FILE  the TOML configuration file (see docs/configuration.md)\n"
         "      --check        validate the configuration, print every problem found, and exit:\n"
         "                     0 when it is valid, non-zero otherwise\n"
         "      --version      print the version and exit\n"
         "  -h, --help         print this help and exit\n"
         "\n"
         "Signals: SIGHUP reloads the configuration; SIGTERM or SIGINT drains and exits.\n";
}

}  // namespace pgsidecar::proxy
