// Startup-phase packets from arbitrary bytes: next_startup_packet, parse_startup_packet
// and parse_options_switches. An accepted StartupMessage rebuilt by
// append_startup_message must parse back to the same thing.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/framer.h"
#include "protocol/messages.h"
#include "protocol/startup.h"

using namespace pgsidecar::protocol;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_switches(std::string_view options) {
  for (const auto& [name, value] : parse_options_switches(options)) {
    check(!name.empty());
    check(name.find('-') == std::string::npos);
    check(name.find('=') == std::string::npos);
    (void)value;
  }
}

void check_startup(const StartupMessage& m) {
  check(protocol_major(m.protocol_version) == 3);
  check(!m.user.empty() && !m.database.empty());
  check_switches(m.options);
  if (m.protocol_version != kProtocolVersion3) return;  // the builder writes 3.0 only
  std::vector<std::pair<std::string, std::string>> params{{"user", m.user}, {"database", m.database}};
  params.insert(params.end(), m.parameters.begin(), m.parameters.end());
  std::vector<std::byte> rebuilt;
  append_startup_message(rebuilt, params);
  Frame f;
  std::size_t used = 0;
  check(next_startup_packet(rebuilt, f, used, UINT32_MAX) == FrameStatus::Ready && used == rebuilt.size());
  StartupPacket again;
  std::string error;
  check(parse_startup_packet(f.body, again, error));
  check(again.kind == StartupKind::StartupMessage);
  check(again.startup.user == m.user && again.startup.database == m.database);
  check(again.startup.parameters == m.parameters && again.startup.options == m.options);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  check_switches(std::string_view(reinterpret_cast<const char*>(data), size));

  // Packets back to back, as a client that sends SSLRequest then StartupMessage.
  std::size_t offset = 0;
  for (int packets = 0; packets < 8; ++packets) {
    Frame f;
    std::size_t used = 0;
    std::string error;
    const FrameStatus status = next_startup_packet(in.subspan(offset), f, used, 10000, &error);
    if (status == FrameStatus::Invalid) check(!error.empty());
    if (status != FrameStatus::Ready) break;
    check(used >= 8 && used <= 10000 && f.tag == 0 && f.body.size() + 4 == used);
    StartupPacket p;
    if (parse_startup_packet(f.body, p, error)) {
      if (p.kind == StartupKind::StartupMessage) check_startup(p.startup);
      if (p.kind == StartupKind::CancelRequest) check(f.body.size() == 12);
      if (p.kind == StartupKind::SSLRequest || p.kind == StartupKind::GSSENCRequest) check(f.body.size() == 4);
    } else {
      check(!error.empty());
    }
    offset += used;
  }
  return 0;
}
