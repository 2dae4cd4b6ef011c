// ${NAME} interpolation of configuration strings from the environment, so secrets can
// come from a Kubernetes Secret rather than the file.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgsidecar::config {

// Returns a variable's value, or nullopt when it is not set (set but empty is "").
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// The process environment (getenv).
EnvLookup process_env();

// A fixed set of variables, for tests and for callers that snapshot the environment.
EnvLookup fixed_env(std::map<std::string, std::string, std::less<>> vars);

// Replaces each ${NAME} (NAME: letters, digits and '_', not starting with a digit) by the
// variable's value, which is inserted as is (not scanned again). "$$" stands for one
// literal '$'; any other '$' is kept as written, so SCRAM verifiers ("SCRAM-SHA-256$4096:...")
// need no escaping. An unset variable's name is appended to `missing` (once) and its
// reference kept as written. A malformed reference ("${}", "${A-B}", or "${" with no
// closing brace, reported as just "${") is kept as written and appended to `*malformed`
// when given.
std::string interpolate_env(std::string_view text, const EnvLookup& env, std::vector<std::string>& missing,
                            std::vector<std::string>* malformed = nullptr);

}  // namespace pgsidecar::config
