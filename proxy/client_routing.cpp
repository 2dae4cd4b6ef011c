// ClientSession, part three: routing each transaction (read or write, which server, wait
// for the primary) and replaying a read whose server died before its answer started.
#include "config/schema.h"
#include "protocol/frontend.h"
#include "protocol/sqlstate.h"
#include "protocol/tags.h"
#include "protocol/wire.h"
#include "proxy/classify_cache.h"
#include "proxy/classify_quick.h"
#include "proxy/client_session.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/router.h"
#include "proxy/worker.h"

namespace pgsidecar::proxy {

using protocol::FrontendTag;
using protocol::tag;
namespace sqlstate = protocol::sqlstate;

namespace {

// A replayed read request is at most this big; a larger one is not retried.
constexpr std::size_t kMaxRetryBytes = 64 * 1024;

}  // namespace

// Read or write, from the first message of a transaction. When in doubt: write.
Intent ClientSession::transaction_intent(char t, std::span<const std::byte> in, const protocol::FrameHeader& h) {
  // Without replicas every transaction goes to the primary (and waits for it): no need to know.
  if (database_->replicas.empty()) return Intent::Write;
  const std::string* default_ro = params_.find("default_transaction_read_only");
  const bool read_only_default = default_ro != nullptr && *default_ro == "on";
  std::string_view sql;
  if (in.size() >= h.total_size()) {
    const auto body = in.subspan(5, h.body_size());
    if (t == tag(FrontendTag::Query)) {
      protocol::parse_query(body, sql);
    } else if (t == tag(FrontendTag::Parse)) {
      protocol::ParseMessage parse;
      if (protocol::parse_parse(body, parse)) sql = parse.query;
    } else if (t == tag(FrontendTag::Bind) || t == tag(FrontendTag::Describe)) {
      std::string_view portal, name;
      char kind = 'S';
      const bool ok = t == tag(FrontendTag::Bind)
                          ? protocol::peek_bind_names(body, h.body_size(), portal, name) == protocol::PeekStatus::Ok
                          : protocol::parse_describe(body, kind, name);
      if (ok && kind == 'S')
        if (const PreparedStatement* stmt = statements_.find(name)) sql = stmt->query;
    }
  }
  if (sql.empty()) return read_only_default ? Intent::Read : Intent::Write;
  switch (quick_classify(sql)) {
    case QuickVerdict::Read: return Intent::Read;
    case QuickVerdict::Write: return Intent::Write;
    case QuickVerdict::Unsure: break;
  }
  const Classification& c = worker_.classifier().classify(sql);
  // Write first: BEGIN READ WRITE or SERIALIZABLE READ ONLY must not reach a replica.
  if (c.kind == StatementKind::Write) return Intent::Write;
  if (c.begins_read_only) return Intent::Read;
  // A plain BEGIN may be followed by anything, unless the session defaults to read-only.
  if (c.transaction_control) return read_only_default ? Intent::Read : Intent::Write;
  return Intent::Read;
}

ClientSession::RouteOutcome ClientSession::route_and_acquire(Intent intent) {
  const DatabaseTopology* topology = worker_.topology().find(database_->name);
  Route r;
  if (topology != nullptr && !topology->servers.empty()) {
    r = route_transaction(intent, *database_, *topology, retry_.avoid, rotation_++);
  } else {
    r.kind = Route::Kind::Fail;
    r.sqlstate = sqlstate::kConnectionFailure;
    r.message = "no server is known for database \"" + database_->name + "\"";
  }
  switch (r.kind) {
    case Route::Kind::Server: {
      route_deadline_.reset();
      routed_server_ = r.server;
      routed_intent_ = intent;
      retry_.capturing = intent == Intent::Read && !retry_.used && topology->servers.size() > 1 &&
                         database_->on_primary_down == config::PrimaryDownPolicy::ReplicaReads;
      retry_.bytes.clear();
      const ServerStatus& target = topology->servers[static_cast<std::size_t>(r.server)];
      // No lookup per transaction: the pool of the server routed to last time is kept.
      if (cached_pool_ == nullptr || cached_pool_->key().server != target.key)
        cached_pool_ = &worker_.pool_for(*database_, *user_, target.address);
      pool_ = cached_pool_;
      if (login_probe_) {
        ParamMap server_params;
        if (pool_->limits().load_server_params(server_params)) {
          login_probe_ = false;
          finish_login(server_params);
          return RouteOutcome::Acquiring;
        }
      }
      waiting_ = true;
      acquiring_ = true;
      pool_->acquire(*this);  // may assign a server right away
      acquiring_ = false;
      return RouteOutcome::Acquiring;
    }
    case Route::Kind::WaitForPrimary:
    case Route::Kind::Paused: {
      const auto now = worker_.now();
      const auto bound = r.kind == Route::Kind::Paused ? database_->pool.query_wait_timeout : database_->write_wait;
      if (!route_deadline_) route_deadline_ = now + bound;
      route_wait_is_pause_ = r.kind == Route::Kind::Paused;
      if (*route_deadline_ <= now) {
        route_wait_expired();
        return RouteOutcome::Failed;
      }
      route_waiting_ = true;
      worker_.wait_for_route(id_, *route_deadline_);
      return RouteOutcome::Waiting;
    }
    case Route::Kind::Fail:
      route_deadline_.reset();
      fail_route(protocol::make_error(r.sqlstate, r.message));
      return RouteOutcome::Failed;
  }
  return RouteOutcome::Failed;
}

void ClientSession::fail_route(protocol::ErrorFields e) {
  if (state_ == ClientState::LoggingIn) {
    login_probe_ = false;
    e.severity = "FATAL";
    send_error(e, false);
    return;
  }
  pending_error_ = std::make_unique<protocol::ErrorFields>(std::move(e));
}

void ClientSession::retry_route() {
  if (!route_waiting_ || closing_) return;
  route_waiting_ = false;
  if (state_ == ClientState::LoggingIn) {
    route_and_acquire(Intent::Read);
    return;
  }
  process_input();
}

void ClientSession::route_wait_expired() {
  route_waiting_ = false;
  const bool pause = route_wait_is_pause_;
  const auto waited = pause ? database_->pool.query_wait_timeout : database_->write_wait;
  route_deadline_.reset();
  if (pause) {
    fail_route(protocol::make_error(sqlstate::kCannotConnectNow,
                                    "database \"" + database_->name + "\" is paused for a switchover that did not "
                                    "finish within " + std::to_string(waited.count()) + " ms"));
  } else {
    fail_route(protocol::make_error(sqlstate::kReadOnlySqlTransaction,
                                    "primary for database \"" + database_->name + "\" is unavailable: this write "
                                    "waited " + std::to_string(waited.count()) + " ms (write_wait) for it to return"));
  }
  if (!processing_) process_input();
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
  process_input();
}

}  // namespace pgsidecar::proxy
