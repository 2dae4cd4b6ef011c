// Loading a TOML configuration file into a validated, immutable Config snapshot.
// Every problem found is reported at once, each with its key path and position.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/env.h"
#include "config/schema.h"

namespace pgsidecar::config {

struct Problem {
  std::string key_path;  // e.g. "databases[1].replicas[0]"; empty for file and syntax errors
  int line = 0;          // 1-based; 0 when the problem has no position (a missing section)
  int column = 0;
  std::string message;

  // "databases[1].replicas[0] (line 42, col 12): expected a postgres:// URL"; the parts
  // that are unknown are left out ("users: ...", "line 3, col 7: ...").
  std::string to_string() const;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when problems is non-empty
  std::vector<Problem> problems;         // in file order; position-less ones last
};

// Never throws: unreadable files, TOML syntax errors and invalid values all become problems.
LoadResult load_file(const std::string& path, const EnvLookup& env = process_env());
LoadResult load_string(std::string_view toml_text, std::string source_name, const EnvLookup& env = process_env());

}  // namespace pgsidecar::config
