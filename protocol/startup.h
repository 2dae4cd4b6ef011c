#pragma once

// The first packet of a connection: StartupMessage, SSLRequest, GSSENCRequest or
// CancelRequest, told apart by the Int32 after the length word.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgsidecar::protocol {

constexpr int32_t kProtocolVersion3 = 196608;        // 3.0: (3 << 16) | 0
constexpr int32_t kCancelRequestCode = 80877102;     // (1234 << 16) | 5678
constexpr int32_t kSSLRequestCode = 80877103;        // (1234 << 16) | 5679
constexpr int32_t kGSSENCRequestCode = 80877104;     // (1234 << 16) | 5680

constexpr int protocol_major(int32_t version) { return static_cast<int>(static_cast<uint32_t>(version) >> 16); }
constexpr int protocol_minor(int32_t version) { return static_cast<int>(version & 0xffff); }

enum class StartupKind { StartupMessage, SSLRequest, GSSENCRequest, CancelRequest };

struct StartupMessage {
  // 3.x; a minor above 0 is accepted and the caller answers NegotiateProtocolVersion.
  int32_t protocol_version = 0;
  // In arrival order, excluding user and database. Protocol options ("_pq_." names)
  // and "options" are kept here too.
  std::vector<std::pair<std::string, std::string>> parameters;
  std::string user;
  std::string database;  // defaults to user when absent or empty
  std::string options;   // the "options" parameter (command-line switches), if any

  int minor() const { return protocol_minor(protocol_version); }
  // Looks among parameters (not user/database); nullptr when absent.
  const std::string* find(std::string_view name) const;
};

struct CancelRequest {
  int32_t process_id = 0;
  int32_t secret_key = 0;
};

struct StartupPacket {
  StartupKind kind{};
  StartupMessage startup;  // kind == StartupMessage
  CancelRequest cancel;    // kind == CancelRequest
};

// `body` is the packet after its length word (Frame::body from next_startup_packet).
// False with a message for the client on: an unsupported protocol version (major
// other than 3), a request code with the wrong packet size, no user, a name or value
// without its NUL, no terminating NUL (or bytes after it), a duplicate parameter.
bool parse_startup_packet(std::span<const std::byte> body, StartupPacket& out, std::string& error);

// The "options" startup parameter holds backend command-line switches. This returns
// the run-time parameters they set, in order, following PostgreSQL's rules: split on
// whitespace with backslash escaping the next character, then "-c name=value",
// "-cname=value" and "--name=value" (dashes in the name become underscores). Other
// switches and malformed ones are skipped.
// "-c a=b --c=d -c x=y\ z" -> {(a, b), (c, d), (x, "y z")}
std::vector<std::pair<std::string, std::string>> parse_options_switches(std::string_view options);

}  // namespace pgsidecar::protocol
