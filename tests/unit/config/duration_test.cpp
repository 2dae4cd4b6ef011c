#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "config/duration.h"

using pgsidecar::config::Duration;
using pgsidecar::config::format_duration;
using pgsidecar::config::kMaxDuration;
using pgsidecar::config::parse_duration;
using namespace std::chrono_literals;

TEST_CASE("durations with each unit parse to milliseconds") {
  const std::vector<std::pair<std::string, Duration>> cases = {
      {"0", 0ms},        {"0s", 0ms},       {"0ms", 0ms},       {"00", 0ms},
      {"1ms", 1ms},      {"500ms", 500ms},  {"1500ms", 1500ms}, {"5s", 5s},
      {"90s", 90s},      {"2m", 2min},      {"1h", 1h},         {"2400h", 2400h},
      {"144000m", 2400h}, {"007s", 7s},
  };
  for (const auto& c : cases) {
    const std::string& text = c.first;
    const Duration expected = c.second;
    CAPTURE(text);
    Duration d{-1};
    std::string error;
    REQUIRE(parse_duration(text, d, error));
    CHECK(d == expected);
    CHECK(error.empty());
  }
}

TEST_CASE("bad durations are refused with a reason and leave the output untouched") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty duration"},
      {"-5s", "cannot be negative"},
      {"-0", "cannot be negative"},
      {"+5s", "expected a whole number and a unit"},
      {"s", "expected a whole number and a unit"},
      {" 5s", "expected a whole number and a unit"},
      {"5", "missing unit"},
      {"500", "missing unit"},
      {"5 s", "unknown unit \" s\""},
      {"5s ", "unknown unit \"s \""},
      {"5sec", "unknown unit \"sec\""},
      {"5S", "unknown unit \"S\""},
      {"5d", "unknown unit \"d\""},
      {"5us", "unknown unit \"us\""},
      {"1m30s", "unknown unit \"m30s\""},
      {"1.5s", "fractions are not supported"},
      {"0.5", "fractions are not supported"},
      {"2401h", "too large"},
      {"8640000001ms", "too large"},
      {"99999999999999999999999s", "too large"},
      {"18446744073709551615ms", "too large"},
  };
  for (const auto& c : cases) {
    const std::string& text = c.first;
    const std::string& reason = c.second;
    CAPTURE(text);
    Duration d{1234};
    std::string error;
    CHECK_FALSE(parse_duration(text, d, error));
    CHECK(d == 1234ms);
    CHECK(error.find(reason) != std::string::npos);
  }
}

TEST_CASE("the longest duration is exactly kMaxDuration in every unit") {
  Duration d{};
  std::string error;
  CHECK(parse_duration("8640000000ms", d, error));
  CHECK(d == kMaxDuration);
  CHECK(parse_duration("8640000s", d, error));
  CHECK_FALSE(parse_duration("8640001s", d, error));
  CHECK_FALSE(parse_duration("144001m", d, error));
}

TEST_CASE("format_duration picks the largest exact unit and reads back") {
  CHECK(format_duration(0ms) == "0s");
  CHECK(format_duration(500ms) == "500ms");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(5s) == "5s");
  CHECK(format_duration(90s) == "90s");
  CHECK(format_duration(120s) == "2m");
  CHECK(format_duration(1h) == "1h");
  CHECK(format_duration(kMaxDuration) == "2400h");
  for (const Duration d : std::vector<Duration>{1ms, 999ms, 61s, 59min, 25h}) {
    Duration back{};
    std::string error;
    REQUIRE(parse_duration(format_duration(d), back, error));
    CHECK(back == d);
  }
}
