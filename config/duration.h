// Durations as written in the configuration file: "500ms", "5s", "2m", "1h", "0".
#pragma once

#include <string>
#include <string_view>

#include "config/schema.h"

namespace pgsidecar::config {

// Longer durations are refused: nobody means them, and a timer deadline of
// steady_clock::now() plus such a value would overflow.
inline constexpr Duration kMaxDuration = std::chrono::hours(2400);

// Parses a whole number followed by a unit: ms, s, m or h ("1500ms", "5s"). A bare "0"
// is also accepted. No sign, no fraction, no spaces. On failure `out` is untouched and
// `error` says why (without repeating the text).
bool parse_duration(std::string_view text, Duration& out, std::string& error);

// The shortest spelling parse_duration reads back as `d`: "0s", "500ms", "90s", "2m", "1h".
std::string format_duration(Duration d);

}  // namespace pgsidecar::config
