#include "config/duration.h"

#include <array>
#include <charconv>
#include <cstdint>

namespace pgsidecar::config {
namespace {

struct Unit {
  std::string_view suffix;
  int64_t millis;
};

// Largest first, so format_duration picks the shortest spelling.
constexpr std::array<Unit, 4> kUnits{{{"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}}};

constexpr std::string_view kSyntax = "expected a whole number and a unit (ms, s, m, h), such as \"500ms\" or \"5s\"";

}  // namespace

bool parse_duration(std::string_view text, Duration& out, std::string& error) {
  if (text.empty()) {
    error = "empty duration; " + std::string(kSyntax);
    return false;
  }
  if (text.front() == '-') {
    error = "a duration cannot be negative";
    return false;
  }
  uint64_t count = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(first, last, count);
  if (end == first) {
    error = std::string(kSyntax);
    return false;
  }
  const std::string_view unit(end, static_cast<std::size_t>(last - end));
  if (ec == std::errc::result_out_of_range) {
    error = "too large; the longest duration is " + format_duration(kMaxDuration);
    return false;
  }
  if (!unit.empty() && unit.front() == '.') {
    error = "fractions are not supported; use a smaller unit, e.g. \"1500ms\" for 1.5 seconds";
    return false;
  }
  if (unit.empty()) {
    if (count == 0) {
      out = Duration{0};
      return true;
    }
    error = "missing unit (ms, s, m or h), e.g. \"" + std::to_string(count) + "ms\" or \"" +
            std::to_string(count) + "s\"";
    return false;
  }
  for (const Unit& u : kUnits) {
    if (unit != u.suffix) continue;
    const auto limit = static_cast<uint64_t>(kMaxDuration.count() / u.millis);
    if (count > limit) {
      error = "too large; the longest duration is " + format_duration(kMaxDuration);
      return false;
    }
    out = Duration{static_cast<int64_t>(count) * u.millis};
    return true;
  }
  error = "unknown unit \"" + std::string(unit) + "\"; use ms, s, m or h";
  return false;
}

std::string format_duration(Duration d) {
  const int64_t ms = d.count();
  if (ms == 0) return "0s";
  for (const Unit& u : kUnits)
    if (ms % u.millis == 0) return std::to_string(ms / u.millis) + std::string(u.suffix);
  return std::to_string(ms) + "ms";  // unreachable: every count divides by 1
}

}  // namespace pgsidecar::config
