// What a server connection, and the pool that leases it, may call on the session holding
// the lease. None of these runs the session's request processing: a session records what
// happened and continues on the next loop turn (io::Loop::defer), so no callback ever
// re-enters a session that is still inside its own.
#pragma once

#include "proxy/pooling/layer.h"

#include "proxy/io/tls_stream.h"

#include <uv.h>

#include <string_view>

#include "proxy/core/errors.h"
#include "proxy/core/ids.h"

namespace pgsidecar::proxy {

class ServerConn;

class ServerLessee {
 public:
  virtual SessionId lessee_id() const = 0;
  // Where the server's replies go.
  virtual io::Sink client_stream() = 0;

  // From the pool: `server` is now leased to this session (it waited in the queue).
  virtual void on_server_assigned(ServerConn& server) = 0;
  // From the pool: no server for this request (query_wait_timeout, server unreachable).
  virtual void on_server_unavailable(const ProxyError& why) = 0;

  // From the leased server connection.
  // It closed while leased; `why` is the FATAL error the client gets unless the request
  // is replayed (ServerLost, or ServerAbandoned / QueryTimeout when pgsidecar gave up on it).
  virtual void on_server_lost(const ProxyError& why) = 0;
  virtual void on_ready_for_query(char tx_status) = 0;       // after forwarding ReadyForQuery
  virtual void on_parameter_status(std::string_view name, std::string_view value) = 0;
  // One of the client's statements ended: CommandComplete, EmptyQueryResponse or
  // PortalSuspended; or an ErrorResponse ended the rest of its request.
  virtual void on_statement_done() = 0;
  virtual void on_statement_failed() = 0;
  virtual void on_statements_reset() = 0;                    // DISCARD ALL / DEALLOCATE ALL ran
  virtual void on_response_started() = 0;                    // a first byte of an answer was forwarded
  virtual void on_copy_in(bool active) = 0;                  // the server asked for COPY data, or ended it
  // True while the request could be replayed on another server: then a dying server's
  // error is kept from the client.
  virtual bool replay_possible() const = 0;

 protected:
  ~ServerLessee() = default;
};

// A worker's sessions, as a pool finds the one a waiter stands for.
class LesseeDirectory {
 public:
  virtual ServerLessee* find_lessee(SessionId id) = 0;

 protected:
  ~LesseeDirectory() = default;
};

}  // namespace pgsidecar::proxy
