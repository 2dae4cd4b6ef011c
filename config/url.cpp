#include "config/url.h"

#include <libpq-fe.h>

#include <array>
#include <charconv>
#include <memory>
#include <vector>

namespace pgsidecar::config {
namespace {

constexpr std::array<std::string_view, 6> kSslModes{"disable", "allow", "prefer", "require", "verify-ca",
                                                    "verify-full"};

struct ConninfoFree {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};

std::string trim_newlines(const char* text) {
  std::string s(text);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// The conninfo options libpq itself marks as secret (dispchar "*": password, sslpassword),
// asked once: a libpq that grows another secret option has it hidden here too.
bool is_secret_option(std::string_view key) {
  static const std::vector<std::string> secret = [] {
    std::vector<std::string> names;
    std::unique_ptr<PQconninfoOption, ConninfoFree> defaults(PQconndefaults());
    for (const PQconninfoOption* o = defaults.get(); o != nullptr && o->keyword != nullptr; ++o)
      if (o->dispchar != nullptr && o->dispchar[0] == '*') names.emplace_back(o->keyword);
    if (names.empty()) names = {"password", "sslpassword"};  // out of memory: the known ones
    return names;
  }();
  for (const std::string& name : secret)
    if (key == name) return true;
  return false;
}

bool starts_with_scheme(std::string_view url) {
  return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

bool parse_port(std::string_view text, uint16_t& out) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535) return false;
  out = static_cast<uint16_t>(value);
  return true;
}

// RFC 3986 unreserved characters pass; everything else is %XX.
std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if ((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '-' || b == '.' ||
        b == '_' || b == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xF]);
    }
  }
  return out;
}

// libpq's parse errors may quote the URL, or the part it choked on, whole: hide the
// password as written (in the authority and in ?password=) before anyone prints it.
std::string hide_password(std::string message, std::string_view url) {
  std::vector<std::string_view> secrets;
  const std::size_t authority_start = url.find("://") + 3;
  const std::size_t authority_end = url.find_first_of("/?", authority_start);
  const std::string_view authority = url.substr(authority_start, authority_end - authority_start);
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    if (const std::size_t colon = userinfo.find(':'); colon != std::string_view::npos)
      secrets.push_back(userinfo.substr(colon + 1));
  }
  for (std::size_t k = url.find("password="); k != std::string_view::npos; k = url.find("password=", k + 1)) {
    const std::size_t value = k + std::string_view("password=").size();
    secrets.push_back(url.substr(value, url.find('&', value) - value));
  }
  for (const std::string_view secret : secrets) {
    if (secret.empty()) continue;
    for (std::size_t i = message.find(secret); i != std::string::npos; i = message.find(secret, i + 3))
      message.replace(i, secret.size(), "***");
  }
  return message;
}

// libpq 15 refuses parameters it does not know: take require_auth= out of the query
// before it parses the rest (its value still percent-encoded, decoded here).
bool take_require_auth(std::string& text, std::string& value, std::string& error) {
  const std::size_t query = text.find('?');
  if (query == std::string::npos) return true;
  std::size_t at = query + 1;
  while (at < text.size()) {
    const std::size_t end = std::min(text.find('&', at), text.size());
    const std::string_view param = std::string_view(text).substr(at, end - at);
    if (param.starts_with("require_auth=")) {
      const std::string_view raw = param.substr(std::string_view("require_auth=").size());
      value.clear();
      for (std::size_t i = 0; i < raw.size(); ++i) {
        unsigned byte = 0;
        if (raw[i] == '%' && i + 2 < raw.size() &&
            std::from_chars(raw.data() + i + 1, raw.data() + i + 3, byte, 16).ptr == raw.data() + i + 3) {
          value.push_back(static_cast<char>(byte));
          i += 2;
        } else {
          value.push_back(raw[i]);
        }
      }
      // Drop the parameter and one separator beside it.
      const std::size_t from = at - 1;  // its '?' or '&'
      if (text[from] == '?' && end < text.size()) text.erase(at, end + 1 - at);
      else text.erase(from, end - from);
      std::size_t start = 0;
      while (start <= value.size()) {
        const std::size_t comma = std::min(value.find(',', start), value.size());
        const std::string_view method = std::string_view(value).substr(start, comma - start);
        if (method != "password" && method != "md5" && method != "scram-sha-256" && method != "none") {
          error = "invalid require_auth method \"" + std::string(method) +
                  "\" (expected a comma list of password, md5, scram-sha-256, none)";
          return false;
        }
        start = comma + 1;
      }
      return true;
    }
    at = end + 1;
  }
  return true;
}

}  // namespace

bool parse_server_url(std::string_view url, ServerAddress& out, std::string& error) {
  if (!starts_with_scheme(url)) {
    error = "expected a postgres:// or postgresql:// URL";
    return false;
  }
  std::string text(url);
  std::string require_auth;
  if (!take_require_auth(text, require_auth, error)) return false;
  if (text.find('\0') != std::string::npos) {
    error = "expected a postgres:// URL: it contains a NUL character";
    return false;
  }
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoFree> options(PQconninfoParse(text.c_str(), &raw_error));
  if (!options) {
    error = "expected a postgres:// URL: " +
            (raw_error != nullptr ? hide_password(trim_newlines(raw_error), url) : "out of memory");
    PQfreemem(raw_error);
    return false;
  }

  ServerAddress parsed;
  parsed.url = std::string(url);
  parsed.require_auth = require_auth;
  std::string host, hostaddr, port;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view key = o->keyword;
    if (key == "host") host = o->val;
    else if (key == "hostaddr") hostaddr = o->val;
    else if (key == "port") port = o->val;
    else if (key == "dbname") parsed.dbname = o->val;
    else if (key == "user") parsed.user = o->val;
    else if (key == "password") parsed.password = o->val;
    else if (key == "sslmode") parsed.sslmode = o->val;
    else parsed.options.emplace(std::string(key), o->val);
  }

  if (host.find(',') != std::string::npos || hostaddr.find(',') != std::string::npos ||
      port.find(',') != std::string::npos) {
    error = "multi-host URLs are not supported: give one server per URL (list replicas in replicas = [...])";
    return false;
  }
  if (host.empty() && hostaddr.empty()) {
    error = "the URL names no host; write postgres://HOST[:PORT]/DBNAME";
    return false;
  }
  if (!hostaddr.empty()) {
    parsed.host = hostaddr;
    if (!host.empty()) parsed.options.emplace("host", host);
  } else {
    parsed.host = host;
  }
  if (!port.empty() && !parse_port(port, parsed.port)) {
    error = "invalid port \"" + port + "\" (expected 1 to 65535)";
    return false;
  }
  if (!parsed.password.empty() && parsed.user.empty()) {
    error = "the URL has a password but no user";
    return false;
  }
  if (!parsed.sslmode.empty()) {
    bool known = false;
    for (const std::string_view m : kSslModes) known = known || parsed.sslmode == m;
    if (!known) {
      error = "invalid sslmode \"" + parsed.sslmode +
              "\" (expected disable, allow, prefer, require, verify-ca or verify-full)";
      return false;
    }
  }
  if (const auto cb = parsed.options.find("channel_binding"); cb != parsed.options.end() &&
      cb->second != "disable" && cb->second != "prefer" && cb->second != "require") {
    error = "invalid channel_binding \"" + cb->second + "\" (expected disable, prefer or require)";
    return false;
  }
  out = std::move(parsed);
  return true;
}

std::string redacted_url(const ServerAddress& a) {
  std::string s = "postgres://";
  if (!a.user.empty()) {
    s += percent_encode(a.user);
    if (!a.password.empty()) s += ":***";
    s += '@';
  }
  // With hostaddr, the host name (if any) sits in options["host"]: show it where it was.
  const auto name = a.options.find("host");
  const std::string& shown_host = name != a.options.end() ? name->second : a.host;
  if (shown_host.find(':') != std::string::npos && shown_host.front() != '/') s += "[" + shown_host + "]";
  else s += percent_encode(shown_host);
  s += ':' + std::to_string(a.port) + '/' + percent_encode(a.dbname);
  char sep = '?';
  const auto param = [&](std::string_view k, std::string_view v) {
    s += sep;
    s += percent_encode(k) + '=' + percent_encode(v);
    sep = '&';
  };
  if (name != a.options.end()) param("hostaddr", a.host);
  if (!a.sslmode.empty()) param("sslmode", a.sslmode);
  if (!a.require_auth.empty()) param("require_auth", a.require_auth);
  for (const auto& [k, v] : a.options) {
    if (k == "host") continue;
    param(k, is_secret_option(k) ? std::string_view() : std::string_view(v));
    if (is_secret_option(k)) s += "***";  // written as the password's, not percent-encoded
  }
  return s;
}

}  // namespace pgsidecar::config
