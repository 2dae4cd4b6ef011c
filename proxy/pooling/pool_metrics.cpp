#include "proxy/pooling/pool_metrics.h"

namespace pgsidecar::proxy {

std::string_view to_string(ServerCloseReason r) {
  switch (r) {
    case ServerCloseReason::Unclean: return "released_unclean";
    case ServerCloseReason::Lifetime: return "server_lifetime";
    case ServerCloseReason::IdleTimeout: return "server_idle_timeout";
    case ServerCloseReason::Rebalanced: return "rebalanced";
    case ServerCloseReason::NotATarget: return "not_a_target";
    case ServerCloseReason::Shutdown: return "shutdown";
    case ServerCloseReason::LoginFailed: return "login_failed";
    case ServerCloseReason::ServerGone: return "server_gone";
    case ServerCloseReason::ProtocolError: return "protocol_error";
    case ServerCloseReason::Abandoned: return "abandoned";
  }
  return "unknown";
}

}  // namespace pgsidecar::proxy
