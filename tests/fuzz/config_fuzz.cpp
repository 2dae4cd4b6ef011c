// libFuzzer target for the configuration loader: any bytes as a TOML file must load or
// report problems, never crash, hang or throw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "SET") return std::string("value");
    return std::nullopt;
  };
  const pgsidecar::config::LoadResult r = pgsidecar::config::load_string(text, "fuzz.toml", env);
  // Exactly one of the two: a config, or problems.
  if ((r.config == nullptr) == r.problems.empty()) __builtin_trap();
  for (const auto& p : r.problems) (void)p.to_string();
  return 0;
}
