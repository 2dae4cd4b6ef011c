// What one worker's shard of a pool counts: plain integers and histograms written only by
// that worker's loop. A scrape copies them on the loop (a mailbox task) and adds the
// copies of all workers and shards up elsewhere.
#pragma once

#include "proxy/pooling/layer.h"

#include <array>
#include <functional>
#include <map>
#include <string>
#include <cstdint>
#include <string_view>

#include "proxy/core/histogram.h"
#include "proxy/core/latency_window.h"

namespace pgsidecar::proxy {

// Why a server connection was closed: a bounded label for metrics, a word for logs.
enum class ServerCloseReason : uint8_t {
  Unclean,        // released in an unknown state (client left mid-transaction, say)
  Lifetime,       // server_lifetime reached
  IdleTimeout,    // server_idle_timeout reached
  Rebalanced,     // its slot went to another worker whose clients were waiting
  NotATarget,     // its server is no longer a target of the database (switchover)
  Shutdown,       // pgsidecar is stopping
  LoginFailed,    // connect or login failed
  ServerGone,     // the server closed it, or reading or writing failed
  ProtocolError,  // the server sent something invalid or unexpected
  Abandoned,      // its server was declared down, or a request ran past query_timeout
};
inline constexpr std::size_t kServerCloseReasons = 10;
std::string_view to_string(ServerCloseReason r);

struct PoolMetrics {
  LatencyHistogram client_wait;     // from asking for a server to having one
  LatencyHistogram query;           // from a request's first message to its ReadyForQuery
  LatencyHistogram transaction;     // from a transaction's first message to ReadyForQuery 'I'
  LatencyHistogram server_connect;  // from connect() to the login's ReadyForQuery
  LatencyWindow query_window;
  LatencyWindow transaction_window;
  uint64_t transactions = 0;
  uint64_t queries = 0;
  uint64_t bytes_received = 0;  // from clients, forwarded to this pool's servers
  uint64_t bytes_sent = 0;      // from this pool's servers, forwarded to clients
  uint64_t servers_opened = 0;
  // Writes of client requests to this pool's servers: each is one exchange over the
  // network to the server, the round trips a client waits for.
  uint64_t server_writes = 0;
  std::array<uint64_t, kServerCloseReasons> servers_closed{};
};

// What the sessions of one worker count per database entry and per error; a scrape
// copies it on the loop. Map nodes are stable, so a session keeps a pointer to its entry.
struct DatabaseCounters {
  uint64_t logins = 0;
  uint64_t replica_reads = 0;   // transactions routed to a replica
  uint64_t reads_replayed = 0;  // reads replayed on another server after theirs died
  uint64_t writes_resumed = 0;  // writes held by write_wait that then found the primary
  uint64_t writes_failed = 0;
  uint64_t local_answers = 0;    // requests answered without a server (BEGIN, pings, DISCARD ALL, ...)   // writes held by write_wait that timed out
};
struct SessionCounters {
  std::map<std::string, DatabaseCounters, std::less<>> databases;
  std::map<std::string, uint64_t, std::less<>> errors;          // by SQLSTATE, every error pgsidecar sent
  std::map<std::string, uint64_t, std::less<>> login_failures;  // by SQLSTATE
  std::map<std::string, uint64_t, std::less<>> pins;  // clients pinned to their server, by reason
  uint64_t statements_classified = 0;  // texts the classifier parsed (its cache's misses)
};

}  // namespace pgsidecar::proxy
