// One key=value line per event on stderr, written with a single write() so lines from
// different workers never interleave.
#pragma once

#include "proxy/core/layer.h"

#include <string>
#include <string_view>

namespace pgsidecar::proxy {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);

// Builds one line: `level=warn worker=2 event=server_lost reason="connection reset"`.
class LogLine {
 public:
  LogLine(LogLevel level, std::string_view event);
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  ~LogLine();  // emits the line

  LogLine& kv(std::string_view key, std::string_view value);  // quoted when needed
  LogLine& kv(std::string_view key, long long value);
  LogLine& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
  LogLine& kv(std::string_view key, int value) { return kv(key, static_cast<long long>(value)); }
  LogLine& kv(std::string_view key, unsigned value) { return kv(key, static_cast<long long>(value)); }
  LogLine& kv(std::string_view key, long value) { return kv(key, static_cast<long long>(value)); }
  LogLine& kv(std::string_view key, unsigned long value) { return kv(key, static_cast<long long>(value)); }

 private:
  bool enabled_;
  std::string text_;
};

// Appends `value` as a log line's value: as is when it is one plain word, otherwise in
// double quotes with `"` and `\` escaped by a backslash, \n, \r and \t as such, and
// every other control byte (and DEL) as \xNN. A value never ends the line or forges
// another key: client-supplied text (user names, error messages, SQL) can be logged.
void append_log_value(std::string& line, std::string_view value);

inline LogLine log_debug(std::string_view event) { return LogLine(LogLevel::Debug, event); }
inline LogLine log_info(std::string_view event) { return LogLine(LogLevel::Info, event); }
inline LogLine log_warn(std::string_view event) { return LogLine(LogLevel::Warn, event); }
inline LogLine log_error(std::string_view event) { return LogLine(LogLevel::Error, event); }

}  // namespace pgsidecar::proxy
