#include "protocol/startup.h"

#include <algorithm>

#include "protocol/wire.h"

namespace pgsidecar::protocol {

const std::string* StartupMessage::find(std::string_view name) const {
  for (const auto& [key, value] : parameters) {
    if (key == name) return &value;
  }
  return nullptr;
}

namespace {

// Request codes carry nothing but themselves (CancelRequest: the key data), so a size
// mismatch means the peer is not speaking the protocol.
bool expect_size(std::span<const std::byte> body, std::size_t size, std::string_view what, std::string& error) {
  if (body.size() == size) return true;
  error = "invalid length of " + std::string(what) + " packet";
  return false;
}

bool parse_startup_parameters(Reader& r, StartupMessage& out, std::string& error) {
  bool have_user = false;
  bool have_database = false;
  for (;;) {
    std::string_view name;
    if (!r.read_cstring(name)) {
      error = r.remaining() == 0 ? "invalid startup packet layout: expected terminator as last byte"
                                 : "invalid startup packet layout: unterminated parameter name";
      return false;
    }
    if (name.empty()) break;  // the terminator
    std::string_view value;
    if (!r.read_cstring(value)) {
      error = "invalid startup packet layout: missing value for parameter \"" + std::string(name) + "\"";
      return false;
    }
    const bool duplicate = (name == "user" && have_user) || (name == "database" && have_database) ||
                           out.find(name) != nullptr;
    if (duplicate) {
      error = "duplicate startup parameter \"" + std::string(name) + "\"";
      return false;
    }
    if (name == "user") {
      out.user = value;
      have_user = true;
    } else if (name == "database") {
      out.database = value;
      have_database = true;
    } else {
      if (name == "options") out.options = value;
      out.parameters.emplace_back(name, value);
    }
  }
  if (r.remaining() != 0) {
    error = "invalid startup packet layout: expected terminator as last byte";
    return false;
  }
  if (out.user.empty()) {
    error = "no PostgreSQL user name specified in startup packet";
    return false;
  }
  if (out.database.empty()) out.database = out.user;
  return true;
}

}  // namespace

bool parse_startup_packet(std::span<const std::byte> body, StartupPacket& out, std::string& error) {
  out = StartupPacket{};
  Reader r(body);
  int32_t code = 0;
  if (!r.read_i32(code)) {
    error = "invalid length of startup packet";
    return false;
  }
  switch (code) {
    case kSSLRequestCode:
      out.kind = StartupKind::SSLRequest;
      return expect_size(body, 4, "SSLRequest", error);
    case kGSSENCRequestCode:
      out.kind = StartupKind::GSSENCRequest;
      return expect_size(body, 4, "GSSENCRequest", error);
    case kCancelRequestCode:
      out.kind = StartupKind::CancelRequest;
      if (!expect_size(body, 12, "CancelRequest", error)) return false;
      r.read_i32(out.cancel.process_id);
      r.read_i32(out.cancel.secret_key);
      return true;
    default:
      break;
  }
  if (protocol_major(code) != 3) {
    error = "unsupported frontend protocol " + std::to_string(protocol_major(code)) + "." +
            std::to_string(protocol_minor(code)) + ": server supports 3.0 to 3.0";
    return false;
  }
  out.kind = StartupKind::StartupMessage;
  out.startup.protocol_version = code;
  return parse_startup_parameters(r, out.startup, error);
}

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// pg_split_opts: whitespace separates, a backslash makes the next character literal
// (so "y\ z" is one word "y z" and "\\" is one backslash); a trailing backslash is dropped.
std::vector<std::string> split_options(std::string_view options) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < options.size()) {
    while (i < options.size() && is_space(options[i])) ++i;
    if (i == options.size()) break;
    std::string word;
    bool escaped = false;
    for (; i < options.size(); ++i) {
      const char c = options[i];
      if (!escaped && is_space(c)) break;
      if (!escaped && c == '\\') {
        escaped = true;
      } else {
        escaped = false;
        word.push_back(c);
      }
    }
    words.push_back(std::move(word));
  }
  return words;
}

// ParseLongOption: "name=value", dashes in the name read as underscores. No '=' is
// an error in PostgreSQL ("-c name requires a value"); here the switch is skipped.
void add_long_option(std::string_view arg, std::vector<std::pair<std::string, std::string>>& out) {
  const std::size_t eq = arg.find('=');
  if (eq == std::string_view::npos || eq == 0) return;
  std::string name(arg.substr(0, eq));
  std::replace(name.begin(), name.end(), '-', '_');
  out.emplace_back(std::move(name), std::string(arg.substr(eq + 1)));
}

// Switches of the postgres binary that take an argument (the letters followed by ':'
// in process_postgres_switches' getopt string), so their argument is not misread as
// a switch of its own.
bool takes_argument(char c) {
  constexpr std::string_view kWithArgument = "BcCDdfhkNprStvW-";
  return kWithArgument.find(c) != std::string_view::npos;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_options_switches(std::string_view options) {
  std::vector<std::pair<std::string, std::string>> result;
  const std::vector<std::string> words = split_options(options);
  // getopt semantics: "-abc" bundles flags; a switch taking an argument uses the rest
  // of its word, or else the next word. Words that are not switches are skipped.
  for (std::size_t w = 0; w < words.size(); ++w) {
    const std::string& word = words[w];
    if (word.size() < 2 || word[0] != '-') continue;
    for (std::size_t k = 1; k < word.size(); ++k) {
      const char c = word[k];
      if (!takes_argument(c)) continue;  // a flag, or an unknown switch: ignored
      std::string_view arg;
      if (k + 1 < word.size()) {
        arg = std::string_view(word).substr(k + 1);
      } else if (w + 1 < words.size()) {
        arg = words[++w];
      } else {
        break;  // missing argument
      }
      if (c == 'c' || c == '-') add_long_option(arg, result);
      break;  // the argument ended this word
    }
  }
  return result;
}

}  // namespace pgsidecar::protocol
