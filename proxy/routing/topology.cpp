#include "proxy/routing/topology.h"

namespace pgsidecar::proxy {

const char* to_string(ServerRole r) {
  switch (r) {
    case ServerRole::Unknown: return "unknown";
    case ServerRole::Primary: return "primary";
    case ServerRole::Replica: return "replica";
  }
  return "unknown";
}

const char* to_string(ServerHealth h) {
  switch (h) {
    case ServerHealth::Unknown: return "unknown";
    case ServerHealth::Up: return "up";
    case ServerHealth::Down: return "down";
  }
  return "unknown";
}

std::string server_key(const config::ServerAddress& a) {
  return a.host + ":" + std::to_string(a.port) + "/" + a.dbname;
}

}  // namespace pgsidecar::proxy
