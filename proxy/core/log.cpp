#include "proxy/core/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace pgsidecar::proxy {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "info";
}

bool is_control(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || is_control(c)) return true;
  return false;
}

}  // namespace

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }
bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

LogLine::LogLine(LogLevel level, std::string_view event) : enabled_(log_enabled(level)) {
  if (!enabled_) return;
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(millis));
  text_.reserve(160);
  text_.append("ts=").append(stamp).append(" level=").append(level_name(level)).append(" event=").append(event);
}

void append_log_value(std::string& line, std::string_view value) {
  if (!needs_quotes(value)) {
    line.append(value);
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  line.push_back('"');
  for (char c : value) {
    switch (c) {
      case '"': line.append("\\\""); break;
      case '\\': line.append("\\\\"); break;
      case '\n': line.append("\\n"); break;
      case '\r': line.append("\\r"); break;
      case '\t': line.append("\\t"); break;
      default:
        if (is_control(c)) {
          const auto b = static_cast<unsigned char>(c);
          line.append("\\x").push_back(kHex[b >> 4]);
          line.push_back(kHex[b & 0xf]);
        } else {
          line.push_back(c);
        }
    }
  }
  line.push_back('"');
}

LogLine& LogLine::kv(std::string_view key, std::string_view value) {
  if (!enabled_) return *this;
  text_.push_back(' ');
  text_.append(key).push_back('=');
  append_log_value(text_, value);
  return *this;
}

LogLine& LogLine::kv(std::string_view key, long long value) {
  if (!enabled_) return *this;
  text_.push_back(' ');
  text_.append(key).push_back('=');
  text_.append(std::to_string(value));
  return *this;
}

LogLine::~LogLine() {
  if (!enabled_) return;
  text_.push_back('\n');
  // A single write keeps the line whole even with several workers logging at once.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, text_.data(), text_.size());
}

}  // namespace pgsidecar::proxy
