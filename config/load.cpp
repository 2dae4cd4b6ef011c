#include "config/load.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <span>
#include <tuple>

#include "config/duration.h"
#include "config/url.h"
#include "protocol/scram.h"

namespace pgsidecar::config {

std::string Problem::to_string() const {
  std::string where;
  if (line > 0) where = "line " + std::to_string(line) + ", col " + std::to_string(column);
  std::string s = key_path;
  if (!where.empty()) s += s.empty() ? where : " (" + where + ")";
  if (!s.empty()) s += ": ";
  return s + message;
}

namespace {

using KeyList = std::span<const std::string_view>;

constexpr std::string_view kTopKeys[] = {"listen", "http",          "auth",   "tls",    "limits",
                                         "admin",  "users",         "pool_defaults", "health", "databases"};
constexpr std::string_view kListenKeys[] = {"address", "port", "unix_socket_dir", "workers",
                                            "max_client_connections", "admin_reserved_connections",
                                            "drain_timeout", "shutdown_delay"};
constexpr std::string_view kHttpKeys[] = {"address", "port"};
constexpr std::string_view kAuthKeys[] = {"method", "login_timeout"};
constexpr std::string_view kTlsKeys[] = {"cert_file", "key_file", "ca_file", "client_tls", "min_protocol"};
constexpr std::string_view kLimitsKeys[] = {"max_message_size", "max_client_buffer", "max_scram_iterations"};
constexpr std::string_view kAdminKeys[] = {"users"};
constexpr std::string_view kUserKeys[] = {"name", "password", "server_password", "auth_method"};
constexpr std::string_view kPoolKeys[] = {"mode",
                                          "size",
                                          "min_idle",
                                          "query_wait_timeout",
                                          "server_connect_timeout",
                                          "server_idle_timeout",
                                          "server_lifetime",
                                          "client_idle_timeout",
                                          "idle_in_transaction_timeout",
                                          "query_timeout",
                                          "session_state",
                                          "pinned_idle_timeout",
                                          "max_prepared_statements",
                                          "max_prepared_bytes_per_client",
                                          "max_statements_per_server",
                                          "max_concurrent_logins",
                                          "min_size",
                                          "defer_begin",
                                          "answer_pings"};
constexpr std::string_view kHealthKeys[] = {"interval",
                                            "timeout",
                                            "failures_before_down",
                                            "successes_before_up",
                                            "suspect_after",
                                            "tcp_user_timeout",
                                            "tcp_keepalive_idle",
                                            "tcp_keepalive_interval",
                                            "tcp_keepalive_count"};
constexpr std::string_view kDatabaseKeys[] = {"name",       "primary",         "replicas",
                                              "reads",      "on_primary_down", "write_wait",
                                              "max_replica_lag", "fleet_max_connections"};

constexpr std::array kPoolModes{PoolMode::Session, PoolMode::Transaction};
constexpr std::array kSessionStatePolicies{SessionStatePolicy::Pin, SessionStatePolicy::Refuse};
constexpr std::array kAuthMethods{AuthMethod::ScramSha256, AuthMethod::Md5, AuthMethod::Trust, AuthMethod::Cert};
constexpr std::array kClientTlsModes{ClientTlsMode::Disable, ClientTlsMode::Allow, ClientTlsMode::Require};
constexpr std::string_view kTlsVersions[] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
constexpr std::array kReadPolicies{ReadPolicy::Primary, ReadPolicy::Replicas, ReadPolicy::Any};
constexpr std::array kPrimaryDownPolicies{PrimaryDownPolicy::Fail, PrimaryDownPolicy::ReplicaReads};

constexpr std::string_view kAdminDatabase = "pgsidecar";
constexpr std::size_t kMaxFileSize = 16u * 1024u * 1024u;

enum class Zero { Allowed, Rejected };

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// A key as it would be written in TOML: bare when it can be, else quoted.
std::string key_segment(std::string_view key) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  if (bare) return std::string(key);
  std::string s = "\"";
  for (const char c : key) {
    if (c == '"' || c == '\\') s += '\\';
    s += c;
  }
  return s + '"';
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? key_segment(key) : path + "." + key_segment(key);
}

std::string element(const std::string& path, std::size_t index) { return path + "[" + std::to_string(index) + "]"; }

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

bool contains(KeyList list, std::string_view key) { return std::find(list.begin(), list.end(), key) != list.end(); }

std::string quoted_list(const std::vector<std::string>& items) {
  std::string s;
  for (std::size_t i = 0; i < items.size(); ++i) s += (i == 0 ? "\"" : ", \"") + items[i] + "\"";
  return s;
}

bool is_ip_address(const std::string& text) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 || inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

bool is_wildcard(const std::string& address) { return address == "0.0.0.0" || address == "::"; }

// Secrets as PostgreSQL stores them in pg_authid.rolpassword.
enum class SecretKind { Plain, Md5Hash, ScramVerifier, MalformedScramVerifier };

bool is_base64(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return false;
  const std::size_t body = s.find_first_of('=');
  if (body != std::string_view::npos && (s.size() - body > 2 || s.find_first_not_of('=', body) != s.npos))
    return false;
  return std::all_of(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(std::min(body, s.size())), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
  });
}

// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, keys base64 of 32 bytes.
bool is_well_formed_verifier(std::string_view v) {
  v.remove_prefix(std::string_view("SCRAM-SHA-256$").size());
  const std::size_t colon1 = v.find(':');
  const std::size_t dollar = v.find('$');
  const std::size_t colon2 = v.find(':', dollar == v.npos ? v.size() : dollar);
  if (colon1 == v.npos || dollar == v.npos || colon2 == v.npos || colon1 > dollar) return false;
  const std::string_view iterations = v.substr(0, colon1);
  const std::string_view salt = v.substr(colon1 + 1, dollar - colon1 - 1);
  const std::string_view stored_key = v.substr(dollar + 1, colon2 - dollar - 1);
  const std::string_view server_key = v.substr(colon2 + 1);
  const bool digits = !iterations.empty() && iterations.size() <= 9 && iterations.front() != '0' &&
                      std::all_of(iterations.begin(), iterations.end(), [](char c) { return c >= '0' && c <= '9'; });
  return digits && is_base64(salt) && is_base64(stored_key) && stored_key.size() == 44 && is_base64(server_key) &&
         server_key.size() == 44;
}

SecretKind classify_secret(std::string_view s) {
  if (s.starts_with("SCRAM-SHA-256$"))
    return is_well_formed_verifier(s) ? SecretKind::ScramVerifier : SecretKind::MalformedScramVerifier;
  if (s.size() == 35 && s.starts_with("md5") &&
      std::all_of(s.begin() + 3, s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
    return SecretKind::Md5Hash;
  return SecretKind::Plain;
}

// Typed access to TOML values. Each reader leaves its output untouched when the key is
// absent or its value is invalid (the default stays), and returns the node it used, or
// nullptr; every invalid value becomes a Problem at the value's position.
class Reader {
 public:
  Reader(const EnvLookup& env, std::vector<Problem>& problems) : env_(env), problems_(problems) {}

  void report(std::string path, const toml::source_region& at, std::string message) {
    problems_.push_back(
        {std::move(path), static_cast<int>(at.begin.line), static_cast<int>(at.begin.column), std::move(message)});
  }
  void report(std::string path, std::string message) {
    problems_.push_back({std::move(path), 0, 0, std::move(message)});
  }

  void check_keys(const toml::table& t, const std::string& path, KeyList known, KeyList more = {}) {
    for (auto&& [key, node] : t) {
      const std::string_view k = key.str();
      if (contains(known, k) || contains(more, k)) continue;
      std::string message = "unknown key";
      std::string_view best;
      std::size_t best_distance = 3;  // suggest only close misspellings
      for (const KeyList list : {known, more}) {
        for (const std::string_view candidate : list) {
          const std::size_t d = edit_distance(k, candidate);
          if (d < best_distance && d < k.size()) best = candidate, best_distance = d;
        }
      }
      if (!best.empty()) message += " (did you mean \"" + std::string(best) + "\"?)";
      report(child(path, k), key.source(), std::move(message));
    }
  }

  const toml::table* table(const toml::table& parent, const std::string& path, std::string_view key) {
    const toml::node* n = parent.get(key);
    if (n == nullptr) return nullptr;
    if (const toml::table* t = n->as_table()) return t;
    report(child(path, key), n->source(), "expected a table, got " + type_name(*n));
    return nullptr;
  }

  const toml::array* array(const toml::table& parent, const std::string& path, std::string_view key) {
    const toml::node* n = parent.get(key);
    if (n == nullptr) return nullptr;
    if (const toml::array* a = n->as_array()) return a;
    report(child(path, key), n->source(), "expected an array, got " + type_name(*n));
    return nullptr;
  }

  // Every string value passes through ${VAR} interpolation.
  bool string_value(const toml::node& n, const std::string& path, std::string& out) {
    const toml::value<std::string>* s = n.as_string();
    if (s == nullptr) {
      report(path, n.source(), "expected a string, got " + type_name(n));
      return false;
    }
    std::vector<std::string> missing, malformed;
    std::string value = interpolate_env(s->get(), env_, missing, &malformed);
    for (const std::string& m : malformed)
      report(path, n.source(),
             "malformed variable reference \"" + m + "\"; write ${NAME} (letters, digits, _) or $$ for a literal $");
    if (missing.size() == 1) report(path, n.source(), "environment variable \"" + missing[0] + "\" is not set");
    if (missing.size() > 1) report(path, n.source(), "environment variables " + quoted_list(missing) + " are not set");
    if (!missing.empty() || !malformed.empty()) return false;
    out = std::move(value);
    return true;
  }

  const toml::node* string(const toml::table& t, const std::string& path, std::string_view key, std::string& out) {
    const toml::node* n = t.get(key);
    return n != nullptr && string_value(*n, child(path, key), out) ? n : nullptr;
  }

  template <class T>
  const toml::node* integer(const toml::table& t, const std::string& path, std::string_view key, int64_t lo,
                            int64_t hi, T& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return nullptr;
    const toml::value<int64_t>* v = n->as_integer();
    if (v == nullptr) {
      report(child(path, key), n->source(), "expected an integer, got " + type_name(*n));
      return nullptr;
    }
    const int64_t x = v->get();
    if (x < lo || x > hi) {
      const std::string got = ", got " + std::to_string(x);
      report(child(path, key), n->source(),
             hi == INT_MAX ? "must be at least " + std::to_string(lo) + got
                           : "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + got);
      return nullptr;
    }
    out = static_cast<T>(x);
    return n;
  }

  const toml::node* boolean(const toml::table& t, const std::string& path, std::string_view key, bool& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return nullptr;
    const toml::value<bool>* v = n->as_boolean();
    if (v == nullptr) {
      report(child(path, key), n->source(), "expected true or false, got " + type_name(*n));
      return nullptr;
    }
    out = v->get();
    return n;
  }

  // Durations are strings with a unit; the only bare number allowed is 0.
  const toml::node* duration(const toml::table& t, const std::string& path, std::string_view key, Zero zero,
                             Duration& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return nullptr;
    const std::string p = child(path, key);
    Duration d{0};
    if (const toml::value<int64_t>* i = n->as_integer(); i != nullptr && i->get() != 0) {
      report(p, n->source(), "expected a duration with a unit, such as \"" + std::to_string(i->get()) +
                                 "ms\" or \"" + std::to_string(i->get()) + "s\", got an integer");
      return nullptr;
    } else if (i == nullptr) {
      if (!n->is_string()) {
        report(p, n->source(), "expected a duration such as \"5s\" or \"500ms\", got " + type_name(*n));
        return nullptr;
      }
      std::string text, error;
      if (!string_value(*n, p, text)) return nullptr;
      if (!parse_duration(text, d, error)) {
        report(p, n->source(), "invalid duration \"" + text + "\": " + error);
        return nullptr;
      }
    }
    if (zero == Zero::Rejected && d.count() == 0) {
      report(p, n->source(), "must be longer than 0");
      return nullptr;
    }
    out = d;
    return n;
  }

  template <class E, std::size_t N>
  const toml::node* choice(const toml::table& t, const std::string& path, std::string_view key,
                           const std::array<E, N>& values, E& out) {
    const toml::node* n = t.get(key);
    std::string text;
    if (n == nullptr || !string_value(*n, child(path, key), text)) return nullptr;
    std::vector<std::string> allowed;
    for (const E v : values) {
      if (to_string(v) == text) {
        out = v;
        return n;
      }
      allowed.emplace_back(to_string(v));
    }
    report(child(path, key), n->source(), "expected one of " + quoted_list(allowed) + ", got \"" + text + "\"");
    return nullptr;
  }

  bool url_value(const toml::node& n, const std::string& path, ServerAddress& out) {
    std::string text, error;
    if (!string_value(n, path, text)) return false;
    if (parse_server_url(text, out, error)) return true;
    report(path, n.source(), error);
    return false;
  }

  // The tables of a required [[key]] array, each with its path; absence is a problem.
  std::vector<std::pair<const toml::table*, std::string>> required_tables(const toml::table& root,
                                                                          std::string_view key) {
    std::vector<std::pair<const toml::table*, std::string>> tables;
    const toml::node* n = root.get(key);
    const std::string path(key);
    const std::string expected = "expected an array of tables ([[" + path + "]] sections)";
    if (n == nullptr) {
      report(path, "missing: at least one [[" + path + "]] section is required");
    } else if (const toml::array* a = n->as_array(); a == nullptr) {
      report(path, n->source(), expected + ", got " + type_name(*n));
    } else if (a->empty()) {
      report(path, n->source(), "at least one [[" + path + "]] section is required");
    } else {
      for (std::size_t i = 0; i < a->size(); ++i) {
        const toml::node& e = *a->get(i);
        if (const toml::table* t = e.as_table()) tables.emplace_back(t, element(path, i));
        else report(element(path, i), e.source(), "expected a table, got " + type_name(e));
      }
    }
    return tables;
  }

 private:
  const EnvLookup& env_;
  std::vector<Problem>& problems_;
};

void read_listen(Reader& r, const toml::table& t, Listen& out) {
  const std::string p = "listen";
  r.check_keys(t, p, kListenKeys);
  if (const toml::node* n = r.string(t, p, "address", out.address); n != nullptr && !is_ip_address(out.address))
    r.report(child(p, "address"), n->source(),
             "expected an IPv4 or IPv6 address such as \"127.0.0.1\" or \"0.0.0.0\", got \"" + out.address + "\"");
  r.integer(t, p, "port", 1, 65535, out.port);
  r.integer(t, p, "workers", 0, 256, out.workers);
  r.integer(t, p, "max_client_connections", 1, INT_MAX, out.max_client_connections);
  r.integer(t, p, "admin_reserved_connections", 0, 1000, out.admin_reserved_connections);
  r.duration(t, p, "drain_timeout", Zero::Allowed, out.drain_timeout);
  r.duration(t, p, "shutdown_delay", Zero::Allowed, out.shutdown_delay);
  if (const toml::node* n = r.string(t, p, "unix_socket_dir", out.unix_socket_dir);
      n != nullptr && !out.unix_socket_dir.empty()) {
    // The socket is <dir>/.s.PGSQL.<port>, as PostgreSQL names it, and must fit sun_path.
    const std::string socket = out.unix_socket_dir + "/.s.PGSQL." + std::to_string(out.port);
    if (out.unix_socket_dir.front() != '/')
      r.report(child(p, "unix_socket_dir"), n->source(), "expected an absolute path (starting with /)");
    else if (socket.size() >= sizeof(sockaddr_un{}.sun_path))
      r.report(child(p, "unix_socket_dir"), n->source(),
               "too long: the socket path \"" + socket + "\" must be shorter than " +
                   std::to_string(sizeof(sockaddr_un{}.sun_path)) + " bytes");
  }
}

void read_http(Reader& r, const toml::table& t, const Listen& listen, Http& out) {
  const std::string p = "http";
  r.check_keys(t, p, kHttpKeys);
  if (const toml::node* n = r.string(t, p, "address", out.address); n != nullptr && !is_ip_address(out.address))
    r.report(child(p, "address"), n->source(),
             "expected an IPv4 or IPv6 address such as \"127.0.0.1\" or \"0.0.0.0\", got \"" + out.address + "\"");
  const toml::node* port = r.integer(t, p, "port", 0, 65535, out.port);
  const bool overlap = out.address == listen.address || is_wildcard(out.address) || is_wildcard(listen.address);
  if (port != nullptr && out.port != 0 && out.port == listen.port && overlap)
    r.report(child(p, "port"), port->source(), "the same as listen.port (" + std::to_string(listen.port) + ")");
}

// password and server_password, which must suit the user's authentication method.
void read_secrets(Reader& r, const toml::table& t, const std::string& p, AuthMethod method, User& u) {
  // A certificate login checks no password; the server login may still need one.
  if (method == AuthMethod::Cert) method = AuthMethod::Trust;
  const toml::node* password = r.string(t, p, "password", u.password);
  const SecretKind kind = classify_secret(u.password);
  const auto bad_password = [&](const char* why) { r.report(child(p, "password"), password->source(), why); };
  if (!t.contains("password")) {
    if (method != AuthMethod::Trust)
      r.report(p, t.source(), "missing required key \"password\" (only auth_method = \"trust\" or \"cert\" needs none)");
  } else if (password == nullptr) {
    // wrong type or unset variable: reported already
  } else if (u.password.empty() && method != AuthMethod::Trust) {
    bad_password("must not be empty");
  } else if (kind == SecretKind::MalformedScramVerifier) {
    bad_password("malformed SCRAM-SHA-256 verifier (expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)");
  } else if (method == AuthMethod::Md5 && kind == SecretKind::ScramVerifier) {
    bad_password("a SCRAM-SHA-256 verifier cannot check md5 logins; give the plain password or an md5 hash");
  } else if (method == AuthMethod::ScramSha256 && kind == SecretKind::Md5Hash) {
    bad_password("an md5 hash cannot check scram-sha-256 logins; give the plain password or a SCRAM-SHA-256 verifier");
  }
  if (const toml::node* server = r.string(t, p, "server_password", u.server_password)) {
    if (classify_secret(u.server_password) != SecretKind::Plain)
      r.report(child(p, "server_password"), server->source(),
               "must be the plain-text password: a verifier or hash cannot log in to a server");
  } else if (!t.contains("server_password") && kind == SecretKind::Plain) {
    u.server_password = u.password;
  }
}

void read_tls(Reader& r, const toml::table& t, Tls& out) {
  const std::string p = "tls";
  r.check_keys(t, p, kTlsKeys);
  const toml::node* cert = r.string(t, p, "cert_file", out.cert_file);
  const toml::node* key = r.string(t, p, "key_file", out.key_file);
  r.string(t, p, "ca_file", out.ca_file);
  if (!out.cert_file.empty()) out.client_tls = ClientTlsMode::Allow;
  const toml::node* mode = r.choice(t, p, "client_tls", kClientTlsModes, out.client_tls);
  if (const toml::node* n = r.string(t, p, "min_protocol", out.min_protocol);
      n != nullptr && !contains(kTlsVersions, out.min_protocol))
    r.report(child(p, "min_protocol"), n->source(),
             "expected one of \"TLSv1\", \"TLSv1.1\", \"TLSv1.2\", \"TLSv1.3\", got \"" + out.min_protocol + "\"");
  if (out.cert_file.empty() != out.key_file.empty()) {
    const toml::node* given = cert != nullptr ? cert : key;
    r.report(child(p, cert != nullptr ? "key_file" : "cert_file"), given != nullptr ? given->source() : t.source(),
             "cert_file and key_file go together: set both or neither");
  }
  if (out.enabled() && out.cert_file.empty())
    r.report(child(p, "client_tls"), mode != nullptr ? mode->source() : t.source(),
             "client_tls = \"" + std::string(to_string(out.client_tls)) + "\" needs cert_file and key_file");
}

// auth_method = "cert" checks a client certificate: only with TLS toward clients and a CA.
void check_cert_logins(Reader& r, const Config& cfg) {
  const auto check = [&](const std::string& path) {
    if (!cfg.tls.enabled() || cfg.tls.ca_file.empty())
      r.report(path, "auth_method \"cert\" needs [tls] with cert_file, key_file and ca_file (the CA that signs "
                     "client certificates), and client_tls other than \"disable\"");
  };
  if (cfg.auth.method == AuthMethod::Cert) check("auth.method");
  for (std::size_t i = 0; i < cfg.users.size(); ++i)
    if (cfg.users[i].auth_method == AuthMethod::Cert) check(element("users", i) + ".auth_method");
}

void read_users(Reader& r, const toml::table& root, Config& cfg) {
  std::map<std::string, int, std::less<>> first_line;
  for (const auto& [t, p] : r.required_tables(root, "users")) {
    r.check_keys(*t, p, kUserKeys);
    User u;
    if (!t->contains("name")) {
      r.report(p, t->source(), "missing required key \"name\"");
    } else if (const toml::node* n = r.string(*t, p, "name", u.name)) {
      const int line = static_cast<int>(n->source().begin.line);
      if (u.name.empty()) r.report(child(p, "name"), n->source(), "must not be empty");
      else if (const auto [it, fresh] = first_line.emplace(u.name, line); !fresh)
        r.report(child(p, "name"), n->source(),
                 "duplicate user \"" + u.name + "\" (first defined on line " + std::to_string(it->second) + ")");
    }
    AuthMethod method{};
    if (r.choice(*t, p, "auth_method", kAuthMethods, method)) u.auth_method = method;
    read_secrets(r, *t, p, cfg.auth_method_for(u), u);
    cfg.users.push_back(std::move(u));
  }
}

void read_admin(Reader& r, const toml::table& t, Config& cfg) {
  const std::string p = "admin";
  r.check_keys(t, p, kAdminKeys);
  const toml::array* users = r.array(t, p, "users");
  if (users == nullptr) return;
  for (std::size_t i = 0; i < users->size(); ++i) {
    const toml::node& n = *users->get(i);
    const std::string path = element(child(p, "users"), i);
    std::string name;
    if (!r.string_value(n, path, name)) continue;
    const User* user = cfg.find_user(name);
    if (user == nullptr)
      r.report(path, n.source(), "\"" + name + "\" is not a defined user (no [[users]] entry has that name)");
    else if (cfg.auth_method_for(*user) == AuthMethod::Trust)
      r.report(path, n.source(),
               "admin user \"" + name + "\" would log in with trust: anyone reaching listen.address over TCP " +
                   "would get the admin console; give the user a password and auth_method \"scram-sha-256\" " +
                   "or \"md5\"");
    cfg.admin_users.push_back(std::move(name));
  }
}

// The keys of [pool_defaults], read from either that table or a [[databases]] entry.
struct PoolNodes {
  const toml::node* size = nullptr;
  const toml::node* min_idle = nullptr;
  const toml::node* min_size = nullptr;
};

PoolNodes read_pool(Reader& r, const toml::table& t, const std::string& p, PoolSettings& s) {
  PoolNodes nodes;
  r.choice(t, p, "mode", kPoolModes, s.mode);
  nodes.size = r.integer(t, p, "size", 1, INT_MAX, s.size);
  nodes.min_idle = r.integer(t, p, "min_idle", 0, INT_MAX, s.min_idle);
  r.duration(t, p, "query_wait_timeout", Zero::Rejected, s.query_wait_timeout);
  r.duration(t, p, "server_connect_timeout", Zero::Rejected, s.server_connect_timeout);
  r.duration(t, p, "server_idle_timeout", Zero::Allowed, s.server_idle_timeout);
  r.duration(t, p, "server_lifetime", Zero::Allowed, s.server_lifetime);
  r.duration(t, p, "client_idle_timeout", Zero::Allowed, s.client_idle_timeout);
  r.duration(t, p, "idle_in_transaction_timeout", Zero::Allowed, s.idle_in_transaction_timeout);
  r.duration(t, p, "query_timeout", Zero::Allowed, s.query_timeout);
  r.choice(t, p, "session_state", kSessionStatePolicies, s.session_state);
  r.duration(t, p, "pinned_idle_timeout", Zero::Allowed, s.pinned_idle_timeout);
  r.integer(t, p, "max_prepared_statements", 0, INT_MAX, s.max_prepared_statements);
  r.integer(t, p, "max_prepared_bytes_per_client", 1024, INT_MAX, s.max_prepared_bytes_per_client);
  r.integer(t, p, "max_statements_per_server", 1, INT_MAX, s.max_statements_per_server);
  r.integer(t, p, "max_concurrent_logins", 1, INT_MAX, s.max_concurrent_logins);
  nodes.min_size = r.integer(t, p, "min_size", 1, INT_MAX, s.min_size);
  r.boolean(t, p, "defer_begin", s.defer_begin);
  r.boolean(t, p, "answer_pings", s.answer_pings);
  return nodes;
}

// `key` (min_idle or min_size) must not exceed size. Reported where the offending value
// was written; a pair inherited whole from [pool_defaults] was reported there already.
void check_not_above_size(Reader& r, const std::string& p, std::string_view key, int value, const toml::node* node,
                          const PoolSettings& s, const PoolNodes& nodes) {
  if (value <= s.size) return;
  const toml::node* at = node != nullptr ? node : nodes.size;
  if (at == nullptr) return;
  r.report(child(p, node != nullptr ? key : "size"), at->source(),
           std::string(key) + " (" + std::to_string(value) + ") must not exceed size (" + std::to_string(s.size) + ")");
}

void check_pool(Reader& r, const std::string& p, const PoolSettings& s, const PoolNodes& nodes) {
  check_not_above_size(r, p, "min_idle", s.min_idle, nodes.min_idle, s, nodes);
  check_not_above_size(r, p, "min_size", s.min_size, nodes.min_size, s, nodes);
}

void read_health(Reader& r, const toml::table& t, Health& out) {
  const std::string p = "health";
  r.check_keys(t, p, kHealthKeys);
  r.duration(t, p, "interval", Zero::Rejected, out.interval);
  r.duration(t, p, "timeout", Zero::Rejected, out.timeout);
  r.integer(t, p, "failures_before_down", 1, INT_MAX, out.failures_before_down);
  r.integer(t, p, "successes_before_up", 1, INT_MAX, out.successes_before_up);
  r.duration(t, p, "suspect_after", Zero::Allowed, out.suspect_after);
  r.duration(t, p, "tcp_user_timeout", Zero::Allowed, out.tcp_user_timeout);
  r.duration(t, p, "tcp_keepalive_idle", Zero::Allowed, out.tcp_keepalive_idle);
  r.duration(t, p, "tcp_keepalive_interval", Zero::Allowed, out.tcp_keepalive_interval);
  r.integer(t, p, "tcp_keepalive_count", 1, INT_MAX, out.tcp_keepalive_count);
}

void read_database_name(Reader& r, const toml::table& t, const std::string& p, Database& d,
                        std::map<std::string, int, std::less<>>& first_line) {
  if (!t.contains("name")) {
    r.report(p, t.source(), "missing required key \"name\"");
    return;
  }
  const toml::node* n = r.string(t, p, "name", d.name);
  if (n == nullptr) return;
  const int line = static_cast<int>(n->source().begin.line);
  if (d.name.empty())
    r.report(child(p, "name"), n->source(), "must not be empty");
  else if (d.name == kAdminDatabase)
    r.report(child(p, "name"), n->source(), "\"pgsidecar\" is reserved for the admin console");
  else if (const auto [it, fresh] = first_line.emplace(d.name, line); !fresh)
    r.report(child(p, "name"), n->source(),
             "duplicate database \"" + d.name + "\" (first defined on line " + std::to_string(it->second) + ")");
}

void read_databases(Reader& r, const toml::table& root, Config& cfg) {
  std::map<std::string, int, std::less<>> first_line;
  for (const auto& [t, p] : r.required_tables(root, "databases")) {
    r.check_keys(*t, p, kDatabaseKeys, kPoolKeys);
    Database d;
    d.pool = cfg.pool_defaults;
    read_database_name(r, *t, p, d, first_line);
    if (const toml::node* primary = t->get("primary"))
      r.url_value(*primary, child(p, "primary"), d.primary);
    else
      r.report(p, t->source(), "missing required key \"primary\"");
    const toml::array* replicas = r.array(*t, p, "replicas");
    for (std::size_t i = 0; replicas != nullptr && i < replicas->size(); ++i) {
      ServerAddress address;
      if (r.url_value(*replicas->get(i), element(child(p, "replicas"), i), address))
        d.replicas.push_back(std::move(address));
    }
    const toml::node* reads = r.choice(*t, p, "reads", kReadPolicies, d.reads);
    const bool no_replicas = t->get("replicas") == nullptr || (replicas != nullptr && replicas->empty());
    if (reads != nullptr && d.reads == ReadPolicy::Replicas && no_replicas)
      r.report(child(p, "reads"), reads->source(), "reads = \"replicas\" needs at least one entry in replicas");
    r.choice(*t, p, "on_primary_down", kPrimaryDownPolicies, d.on_primary_down);
    r.duration(*t, p, "write_wait", Zero::Allowed, d.write_wait);
    r.duration(*t, p, "max_replica_lag", Zero::Rejected, d.max_replica_lag);
    check_pool(r, p, d.pool, read_pool(r, *t, p, d.pool));
    // A budget below min_size would be exceeded by a single sidecar.
    if (const toml::node* n = r.integer(*t, p, "fleet_max_connections", 0, INT_MAX, d.fleet_max_connections);
        n != nullptr && d.fleet_max_connections > 0 && d.fleet_max_connections < d.pool.min_size)
      r.report(child(p, "fleet_max_connections"), n->source(),
               "fleet_max_connections (" + std::to_string(d.fleet_max_connections) + ") must be at least min_size (" +
                   std::to_string(d.pool.min_size) + ")");
    cfg.databases.push_back(std::move(d));
  }
}

void build(Reader& r, const toml::table& root, Config& cfg) {
  r.check_keys(root, "", kTopKeys);
  if (const toml::table* t = r.table(root, "", "listen")) read_listen(r, *t, cfg.listen);
  if (const toml::table* t = r.table(root, "", "http")) read_http(r, *t, cfg.listen, cfg.http);
  if (const toml::table* t = r.table(root, "", "auth")) {
    r.check_keys(*t, "auth", kAuthKeys);
    r.choice(*t, "auth", "method", kAuthMethods, cfg.auth.method);
    r.duration(*t, "auth", "login_timeout", Zero::Rejected, cfg.auth.login_timeout);
  }
  if (const toml::table* t = r.table(root, "", "tls")) read_tls(r, *t, cfg.tls);
  if (const toml::table* t = r.table(root, "", "limits")) {
    r.check_keys(*t, "limits", kLimitsKeys);
    r.integer(*t, "limits", "max_message_size", 1024, 1024 * 1024 * 1024, cfg.limits.max_message_size);
    r.integer(*t, "limits", "max_client_buffer", 16 * 1024, 1024 * 1024 * 1024, cfg.limits.max_client_buffer);
    r.integer(*t, "limits", "max_scram_iterations", 1, protocol::kScramIterationsCeiling,
              cfg.limits.max_scram_iterations);
  }
  read_users(r, root, cfg);  // after [auth]: a user's password rules depend on the method
  if (const toml::table* t = r.table(root, "", "admin")) read_admin(r, *t, cfg);
  if (const toml::table* t = r.table(root, "", "pool_defaults")) {
    r.check_keys(*t, "pool_defaults", kPoolKeys);
    check_pool(r, "pool_defaults", cfg.pool_defaults, read_pool(r, *t, "pool_defaults", cfg.pool_defaults));
  }
  if (const toml::table* t = r.table(root, "", "health")) read_health(r, *t, cfg.health);
  read_databases(r, root, cfg);  // after [pool_defaults], which each entry starts from
  check_cert_logins(r, cfg);
}

// toml++ walks tables in key order, not file order; sort so --check reads top to bottom.
void sort_problems(std::vector<Problem>& problems) {
  std::stable_sort(problems.begin(), problems.end(), [](const Problem& a, const Problem& b) {
    const auto key = [](const Problem& p) { return std::tuple(p.line == 0, p.line, p.column); };
    return key(a) < key(b);
  });
}

}  // namespace

LoadResult load_string(std::string_view toml_text, std::string source_name, const EnvLookup& env) {
  LoadResult result;
  try {
    toml::table root;
#if TOML_EXCEPTIONS
    try {
      root = toml::parse(toml_text, std::string_view(source_name));
    } catch (const toml::parse_error& e) {
      result.problems.push_back({"", static_cast<int>(e.source().begin.line),
                                 static_cast<int>(e.source().begin.column), std::string(e.description())});
      return result;
    }
#else
    toml::parse_result parsed = toml::parse(toml_text, std::string_view(source_name));
    if (!parsed) {
      const toml::parse_error& e = parsed.error();
      result.problems.push_back({"", static_cast<int>(e.source().begin.line),
                                 static_cast<int>(e.source().begin.column), std::string(e.description())});
      return result;
    }
    root = std::move(parsed).table();
#endif
    auto cfg = std::make_shared<Config>();
    cfg->source_path = std::move(source_name);
    Reader reader(env, result.problems);
    build(reader, root, *cfg);
    sort_problems(result.problems);
    if (result.problems.empty()) result.config = std::move(cfg);
  } catch (const std::exception& e) {  // allocation failure and the like: still no throw
    result.config.reset();
    result.problems.push_back({"", 0, 0, std::string("cannot load configuration: ") + e.what()});
  }
  return result;
}

LoadResult load_file(const std::string& path, const EnvLookup& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return {nullptr, {{"", 0, 0, "cannot read \"" + path + "\": " + std::strerror(err)}}};
  }
  // Chunked, and stopping past the limit, so a huge or endless file (/dev/zero) is refused.
  std::string text;
  std::array<char, 64 * 1024> chunk;
  while (text.size() <= kMaxFileSize && in.read(chunk.data(), chunk.size()).gcount() > 0)
    text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
  if (in.bad()) return {nullptr, {{"", 0, 0, "cannot read \"" + path + "\": read error (is it a directory?)"}}};
  if (text.size() > kMaxFileSize)
    return {nullptr, {{"", 0, 0, "cannot read \"" + path + "\": larger than 16 MiB, not a configuration file"}}};
  return load_string(text, path, env);
}

}  // namespace pgsidecar::config
