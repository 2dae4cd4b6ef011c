// Command-line parsing for the pgsidecar binary. Parsing only: main() decides what to run.
#pragma once

#include "proxy/runtime/layer.h"

#include <string>

namespace pgsidecar::proxy {

struct CliOptions {
  std::string config_path;  // --config FILE / --config=FILE / -c FILE
  bool check = false;       // --check: validate the configuration and exit
  bool version = false;     // --version
  bool help = false;        // --help / -h
};

// Fills `out` from argv[1..argc). Returns false with a one-line `error` for an unknown
// option, a missing or empty FILE, a second --config, a stray argument, or a missing
// --config when neither --help nor --version was given.
bool parse_cli(int argc, char** argv, CliOptions& out, std::string& error);

// The --help text, ending in a newline.
std::string usage_text();

}  // namespace pgsidecar::proxy
