// ClientSession, part three: routing each transaction (read or write, which server, wait
// for the primary) and replaying a read whose server died before its answer started.
#include "protocol/frontend.h"
#include "protocol/tags.h"
#include "protocol/wire.h"
#include "proxy/core/log.h"
#include "proxy/pooling/server_conn.h"
#include "proxy/session/client_session.h"
#include "sql/classify_cache.h"
#include "sql/classify_quick.h"

namespace pgsidecar::proxy {

using protocol::FrontendTag;
using protocol::tag;

namespace {

// A replayed read request is at most this big; a larger one is not retried.
constexpr std::size_t kMaxRetryBytes = 64 * 1024;

ProxyErrc route_failure_error(Route::Failure f) {
  switch (f) {
    case Route::Failure::NoHealthyServer: return ProxyErrc::NoHealthyServer;
    case Route::Failure::PrimaryUnavailable:
    case Route::Failure::None: break;
  }
  return ProxyErrc::PrimaryUnavailable;
}

}  // namespace

// Read or write, from the first message of a transaction. When in doubt: write.
Intent ClientSession::transaction_intent(char t, std::span<const std::byte> in, const protocol::FrameHeader& h) {
  head_parse_ = {};
  // Without replicas every transaction goes to the primary (and waits for it): no need to know.
  if (database_->replicas.empty()) return Intent::Write;
  const std::string* default_ro = params_.find("default_transaction_read_only");
  const bool read_only_default = default_ro != nullptr && *default_ro == "on";
  TextRoute route = TextRoute::Unknown;
  if (in.size() >= h.total_size()) {
    const auto body = in.subspan(5, h.body_size());
    std::string_view sql;
    if (t == tag(FrontendTag::Query)) {
      if (protocol::parse_query(body, sql) && !sql.empty()) route = text_route(sql);
    } else if (t == tag(FrontendTag::Parse)) {
      protocol::ParseMessage parse;
      if (protocol::parse_parse(body, parse) && !parse.query.empty()) {
        route = text_route(parse.query);
        head_parse_ = {route, parse.query.size()};  // kept with the statement by handle_parse
      }
    } else if (t == tag(FrontendTag::Bind) || t == tag(FrontendTag::Describe)) {
      std::string_view portal, name;
      char kind = 'S';
      const bool ok = t == tag(FrontendTag::Bind)
                          ? protocol::peek_bind_names(body, h.body_size(), portal, name) == protocol::PeekStatus::Ok
                          : protocol::parse_describe(body, kind, name);
      // A named statement carries its route from its first classification on.
      PreparedStatement* stmt = ok && kind == 'S' ? statements_.find(name) : nullptr;
      if (stmt != nullptr && !stmt->statement->query.empty()) {
        if (stmt->route == TextRoute::Unknown) stmt->route = text_route(stmt->statement->query);
        route = stmt->route;
      }
    }
  }
  switch (route) {
    case TextRoute::Read: return Intent::Read;
    case TextRoute::Write: return Intent::Write;
    case TextRoute::ReadIfSessionReadOnly:
    case TextRoute::Unknown: break;
  }
  return read_only_default ? Intent::Read : Intent::Write;
}

TextRoute ClientSession::text_route(std::string_view sql) {
  switch (sql::quick_classify(sql)) {
    case sql::QuickVerdict::Read: return TextRoute::Read;
    case sql::QuickVerdict::Write: return TextRoute::Write;
    case sql::QuickVerdict::Unsure: break;
  }
  const sql::Classification& c = host_.resources().classifier.classify(sql);
  // Write first: BEGIN READ WRITE or SERIALIZABLE READ ONLY must not reach a replica.
  if (c.kind == sql::StatementKind::Write) return TextRoute::Write;
  if (c.begins_read_only) return TextRoute::Read;
  // A plain BEGIN may be followed by anything, unless the session defaults to read-only.
  if (c.transaction_control) return TextRoute::ReadIfSessionReadOnly;
  return TextRoute::Read;
}

// Picks the server for this transaction and asks its pool for a connection. Afterwards
// lease_ says what happened: Linked (a server at once), WaitingInPool, WaitingForRoute;
// or None with pending_error_ set (refused); or, logging in, the login has finished or failed.
void ClientSession::route_and_acquire(Intent intent) {
  const DatabaseTopology* topology = host_.topology().find(database_->name);
  if (topology == nullptr || topology->servers.empty()) {
    route_wait_.clear();
    fail_route(make_error(ProxyErrc::NoServerKnown, {database_->name}));
    return;
  }
  if (!route_wait_.since) route_wait_.since = host_.loop().now();
  Route r = route_transaction(intent, *database_, *topology, retry_.avoid, rotation_++);
  const bool replica_reads = database_->on_primary_down == config::PrimaryDownPolicy::ReplicaReads;
  if (phase_ == ClientPhase::LoggingIn && r.kind != Route::Kind::Server && (replica_reads || r.kind == Route::Kind::Paused)) {
    // A login needs only the servers' parameters: in transaction mode (and during a
    // pause) any pool's last ones will do. Otherwise it waits like a write. With
    // on_primary_down = "fail" it fails like any request.
    if ((!session_mode_ || r.kind == Route::Kind::Paused) && finish_login_from_cache(*topology)) return;
    if (r.kind == Route::Kind::Paused) {
      // Nothing cached: a pause holds transactions, not logins, so one server login
      // fetches the parameters (no query runs there).
      DatabaseTopology unpaused = *topology;
      unpaused.paused = false;
      r = route_transaction(intent, *database_, unpaused, retry_.avoid, rotation_++);
    }
    if (r.kind == Route::Kind::Fail && replica_reads) r.kind = Route::Kind::WaitForPrimary;
  }
  switch (r.kind) {
    case Route::Kind::Server: {
      routed_server_ = r.server;
      routed_intent_ = intent;
      retry_.capturing = intent == Intent::Read && !retry_.used && topology->servers.size() > 1 &&
                         database_->on_primary_down == config::PrimaryDownPolicy::ReplicaReads;
      retry_.bytes.clear();
      const ServerStatus& target = topology->servers[static_cast<std::size_t>(r.server)];
      if (intent == Intent::Read && r.server != topology->primary) ++db_counters_->replica_reads;
      if (write_held_) {
        write_held_ = false;
        ++db_counters_->writes_resumed;
      }
      // No lookup per transaction: the pool of the server routed to last time is kept.
      if (cached_pool_ == nullptr || cached_pool_->key().server != target.key)
        cached_pool_ = &host_.pool_for(config_, *database_, *user_, target.address);
      acquire_from(*cached_pool_);
      return;
    }
    case Route::Kind::WaitForPrimary:
      // The first wait of a request has the primary probed at once: it may be back (or
      // its database created) since the last probe.
      if (!route_wait_.deadline && topology->primary >= 0)
        host_.runtime().suspect(topology->servers[static_cast<std::size_t>(topology->primary)].key);
      wait_for_route(false);
      return;
    case Route::Kind::Paused:
      wait_for_route(true);
      return;
    case Route::Kind::Fail:
      route_wait_.clear();
      fail_route(make_error(route_failure_error(r.failure), {database_->name}));
      return;
  }
}

void ClientSession::wait_for_route(bool pause) {
  const auto now = host_.loop().now();
  route_wait_.pause = pause;
  const auto bound = pause ? database_->pool.query_wait_timeout : database_->write_wait;
  if (!route_wait_.deadline) route_wait_.deadline = route_wait_.since.value_or(now) + bound;
  if (*route_wait_.deadline <= now) {
    ProxyError e = route_wait_error();
    route_wait_.clear();
    fail_route(std::move(e));
    return;
  }
  lease_ = Lease::WaitingForRoute;
  write_held_ = !pause;
  if (timing_.wait_started == 0) timing_.wait_started = uv_hrtime();
  host_.wait_for_route(id_, *route_wait_.deadline);
}

// The ParameterStatus values of the last server login of this database and user, on any
// of its servers (the primary's first).
bool ClientSession::finish_login_from_cache(const DatabaseTopology& topology) {
  ParamMap server_params;
  for (const ServerStatus& s : topology.servers) {
    if (!host_.pool_for(config_, *database_, *user_, s.address).limits().load_server_params(server_params)) continue;
    route_wait_.clear();
    finish_login(server_params);
    return true;
  }
  return false;
}

void ClientSession::acquire_from(PoolShard& pool) {
  pool_ = &pool;
  if (phase_ == ClientPhase::LoggingIn) {
    ParamMap server_params;
    if (pool.limits().load_server_params(server_params)) {
      route_wait_.clear();
      finish_login(server_params);
      return;
    }
  }
  if (timing_.wait_started == 0) timing_.wait_started = uv_hrtime();
  Acquired got = pool.acquire(*this);
  switch (got.kind) {
    case Acquired::Kind::Leased:
      note_wait_over(pool);
      if (phase_ == ClientPhase::LoggingIn) {
        // Only the server's parameters were wanted: give it straight back.
        const ParamMap params = got.server->params();
        got.server->detach();
        pool.release(*got.server, ReleaseKind::Reusable);
        route_wait_.clear();
        finish_login(params);
        return;
      }
      link_server(*got.server);
      return;
    case Acquired::Kind::Queued:
      lease_ = Lease::WaitingInPool;
      return;
    case Acquired::Kind::Refused:
      fail_route(std::move(got.error));
      return;
  }
}

void ClientSession::fail_route(ProxyError e) {
  lease_ = Lease::None;
  route_wait_.clear();
  timing_.wait_started = 0;
  if (write_held_ && e.code == ProxyErrc::WriteWaitExpired) ++db_counters_->writes_failed;
  write_held_ = false;
  if (phase_ == ClientPhase::LoggingIn) {
    send_error(e.as_fatal(), false);
    return;
  }
  pending_error_ = std::make_unique<ProxyError>(std::move(e));
}

void ClientSession::retry_route() {
  if (lease_ != Lease::WaitingForRoute || closed()) return;
  lease_ = Lease::None;
  if (phase_ == ClientPhase::LoggingIn) {
    route_and_acquire(login_intent());
    if (phase_ != ClientPhase::Ready) return;
  }
  process_input();
}

ProxyError ClientSession::route_wait_error() const {
  if (route_wait_.pause)
    return make_error(ProxyErrc::SwitchoverPauseExpired,
                      {database_->name, std::to_string(database_->pool.query_wait_timeout.count())});
  if (route_wait_.last_error) return *route_wait_.last_error;
  // write_wait 0: nothing waited, the primary is simply down.
  if (database_->write_wait.count() == 0) return make_error(ProxyErrc::PrimaryUnavailable, {database_->name});
  return make_error(ProxyErrc::WriteWaitExpired, {database_->name, std::to_string(database_->write_wait.count())});
}

void ClientSession::route_wait_expired() {
  if (lease_ != Lease::WaitingForRoute || closed()) return;
  ProxyError e = route_wait_error();
  route_wait_.clear();
  fail_route(std::move(e));
  process_input();
}

// A read whose server dies before any byte of its answer reached the client is replayed
// once on another server: keep a copy of what was sent until the answer starts.
void ClientSession::capture_for_retry(const std::byte* p, std::size_t n) {
  if (!retry_.capturing) return;
  if (retry_.bytes.size() + n > kMaxRetryBytes) {
    retry_.capturing = false;
    retry_.bytes.clear();
    return;
  }
  retry_.bytes.insert(retry_.bytes.end(), p, p + n);
}

void ClientSession::on_response_started() {
  retry_.capturing = false;
  retry_.bytes.clear();
}

void ClientSession::replay_request() {
  retry_.replay_pending = false;
  input_.prepend(retry_.bytes);
  retry_.bytes.clear();
}

}  // namespace pgsidecar::proxy
