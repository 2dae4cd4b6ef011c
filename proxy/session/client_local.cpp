// ClientSession, part four: requests answered without a server, each a round trip to the
// database the client no longer waits for (docs/pooling.md, "Round trips saved"). In
// transaction mode, while the client holds no server:
// - BEGIN / START TRANSACTION is answered at once and held; it goes to the server in the
//   same write as the transaction's first statement, which it also helps route. A COMMIT
//   or ROLLBACK straight after it never reaches a server.
// - COMMIT/ROLLBACK outside a transaction, DISCARD ALL, RESET ALL, DEALLOCATE ALL,
//   UNLISTEN *, CLOSE ALL: answered as PostgreSQL would, their effect made on the books.
// - A session SET / RESET of an unreported setting to a value the pool's servers accepted
//   before: answered with its tag, the setting sent with the next statement.
// - With answer_pings, the empty query and SELECT 1 while the route's server is up.
#include <algorithm>
#include <cctype>
#include <utility>

#include "protocol/frontend.h"
#include "protocol/tags.h"
#include "proxy/pooling/server_conn.h"
#include "proxy/session/client_session.h"
#include "sql/classify_cache.h"

namespace pgsidecar::proxy {

using protocol::FrontendTag;
using protocol::tag;
using sql::LocalStatement;

namespace {

bool ends_transaction(LocalStatement s) { return s == LocalStatement::Commit || s == LocalStatement::Rollback; }

// PostgreSQL's order of settings (guc_name_compare): by name, ignoring the case of letters.
bool less_ignoring_case(std::string_view a, std::string_view b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) < std::tolower(static_cast<unsigned char>(y));
  });
}

}  // namespace

ClientSession::Local ClientSession::answer_locally(std::span<const std::byte> in) {
  using Phase = DeferredBegin::Phase;
  if (session_mode_ || (deferred_.phase == Phase::None && exchange_.tx_status != 'I')) return Local::No;
  const bool aborted = deferred_.phase == Phase::Aborted;
  LocalRequest request;
  switch (peek_local_request(in, statements_, request)) {
    case PeekLocal::Found:
      break;
    case PeekLocal::NeedMore:
      // Room for the whole request: a full buffer would stop reading short of it.
      if (forward_empty() && input_.reserve_unread(kLocalRequestMaxBytes, kLocalRequestMaxBytes + 1))
        return Local::Wait;
      [[fallthrough]];
    case PeekLocal::No:
      if (!aborted) return Local::No;
      // A COMMIT or ROLLBACK prepared by name (PostgreSQL allows Parse of those alone in a
      // failed transaction): recorded here, its Bind then ends the transaction here.
      if (protocol::FrameHeader h; protocol::peek_header(in, h, config_->limits.max_message_size) ==
                                       protocol::FrameStatus::Ready &&
                                   h.tag == tag(FrontendTag::Parse)) {
        const LocalPrepare prepared = try_prepare_locally(in, h);
        if (prepared == LocalPrepare::Done) return Local::Answered;
        if (prepared == LocalPrepare::NeedMore) return Local::Wait;
      }
      pending_error_ = std::make_unique<ProxyError>(make_error(ProxyErrc::InFailedTransaction));
      return Local::Refused;
  }
  const sql::Classification* c = may_be_local(request.sql) && request.sql.find('\0') == std::string_view::npos
                                     ? &host_.resources().classifier.classify(request.sql)
                                     : nullptr;
  const LocalStatement kind = c != nullptr ? c->local : LocalStatement::None;
  LocalReply reply;
  switch (deferred_.phase) {
    case Phase::None:
      if (!answer_outside_transaction(kind, kind == LocalStatement::None && is_ping(request.sql), request.sql, c,
                                      reply))
        return Local::No;
      break;
    case Phase::Held:
      // BEGIN; COMMIT: nothing ran, nothing to send.
      if (!ends_transaction(kind)) return Local::No;
      reply.command_tag = local_command_tag(kind);
      deferred_ = DeferredBegin{};
      break;
    case Phase::Aborted:
      if (!ends_transaction(kind)) {
        pending_error_ = std::make_unique<ProxyError>(make_error(ProxyErrc::InFailedTransaction));
        return Local::Refused;
      }
      reply.command_tag = local_command_tag(LocalStatement::Rollback);  // COMMIT of a failed transaction too
      deferred_ = DeferredBegin{};
      break;
  }
  std::vector<std::byte> out;
  append_local_reply(out, request, reply);
  send_own(std::move(out));
  input_.consume(request.bytes);
  head_parse_ = {};
  exchange_.tx_status = reply.status;
  last_activity_ = host_.loop().now();
  ++db_counters_->local_answers;
  return Local::Answered;
}

// Status 'I', no server held: whether `kind` is answered here, and with what.
bool ClientSession::answer_outside_transaction(LocalStatement kind, bool ping, std::string_view sql,
                                               const sql::Classification* c, LocalReply& reply) {
  const config::PoolSettings& pool = database_->pool;
  reply.command_tag = local_command_tag(kind);
  switch (kind) {
    case LocalStatement::Begin:
    case LocalStatement::StartTransaction:
      if (!pool.defer_begin) return false;
      deferred_ = DeferredBegin{DeferredBegin::Phase::Held, std::string(sql), text_route(sql)};
      reply.status = 'T';
      return true;
    case LocalStatement::Commit:
    case LocalStatement::Rollback:
      // The WARNING is sent unless client_min_messages hides it: only the startup value is known here.
      if (server_state_left_ || defaults_has("client_min_messages")) return false;
      reply.no_transaction_warning = true;
      return true;
    case LocalStatement::DiscardAll:
    case LocalStatement::ResetAll:
      if (untracked_state_possible() || startup_settings_ == nullptr) return false;
      // Reported settings the client changed come back to their startup values, each
      // reported as the server would (ParameterStatus, in its order of settings).
      for (const auto& [k, v] : *startup_settings_) {
        const std::string* now = params_.find(k);
        if (now == nullptr || *now != v) reply.parameter_status.emplace_back(k, v);
      }
      std::sort(reply.parameter_status.begin(), reply.parameter_status.end(),
                [](const auto& a, const auto& b) { return less_ignoring_case(a.first, b.first); });
      for (const auto& [k, v] : reply.parameter_status) params_.set(k, v);
      tracker_.answered_here(sql::SessionEffect{
          kind == LocalStatement::DiscardAll ? sql::EffectKind::DiscardAll : sql::EffectKind::ResetAll, {}, {}});
      take_tracker_outcome();
      if (kind == LocalStatement::DiscardAll) statements_.clear();
      return true;
    case LocalStatement::DeallocateAll:
      if (untracked_state_possible()) return false;
      statements_.clear();
      return true;
    case LocalStatement::UnlistenAll:
    case LocalStatement::CloseAll:
      return !untracked_state_possible();
    case LocalStatement::Set:
    case LocalStatement::Reset:
      return c != nullptr && set_answered_here(*c, reply);
    case LocalStatement::Empty:
      if (!pool.answer_pings || !route_healthy()) return false;
      reply.command_tag = {};
      return true;
    case LocalStatement::None:
      if (!ping || !pool.answer_pings || !route_healthy()) return false;
      reply.ping_row = true;
      return true;
  }
  return false;
}

// A session SET (SET name TO DEFAULT, RESET name) of a setting PostgreSQL does not report:
// its whole answer is the tag. Answered here when this pool's servers accepted that value
// (or, for a default, that name) before; it goes to the books and travels with the next
// statement (settings_sync). Reported settings, whose canonical value the server reports
// back, and roles, which the server checks, always go to a server.
bool ClientSession::set_answered_here(const sql::Classification& c, LocalReply& reply) {
  if (accepted_settings_ == nullptr || c.session_effects.size() != 1 || c.session_effects[0].size() != 1) return false;
  const sql::SessionEffect& e = c.session_effects[0][0];
  if (e.kind != sql::EffectKind::Set && e.kind != sql::EffectKind::Reset) return false;
  if (e.name == "application_name") return application_name_answered_here(e, reply);
  if (is_tracked_parameter(e.name) || e.name == "role" || e.name == "session_authorization") return false;
  if (e.kind == sql::EffectKind::Set ? !accepted_settings_->accepts(e.name, e.value) : !accepted_settings_->knows(e.name))
    return false;
  tracker_.answered_here(e);
  take_tracker_outcome();
  return true;
}

// application_name, the one reported setting whose value is the client's own text (when
// printable ASCII: the server replaces other bytes with '?'): PostgreSQL reports it back
// when it changed. Made on the next server by the settings sync, as any reported setting.
bool ClientSession::application_name_answered_here(const sql::SessionEffect& e, LocalReply& reply) {
  std::string value;
  if (e.kind == sql::EffectKind::Set) {
    if (!std::all_of(e.value.begin(), e.value.end(), [](char ch) { return ch >= 32 && ch <= 126; })) return false;
    value = e.value;
  } else {
    if (startup_settings_ == nullptr) return false;
    const auto startup = std::find_if(startup_settings_->begin(), startup_settings_->end(),
                                      [](const auto& kv) { return kv.first == "application_name"; });
    if (startup == startup_settings_->end()) return false;
    value = startup->second;
  }
  if (params_.set("application_name", value)) reply.parameter_status.emplace_back("application_name", value);
  return true;
}

// Session state the books do not follow (a SET of an unreported setting, LISTEN, an SQL
// PREPARE) may sit on a server this client used: a statement that resets it must run there.
bool ClientSession::untracked_state_possible() const { return server_state_left_; }

bool ClientSession::defaults_has(std::string_view name) const {
  for (const auto& [k, v] : tracker_.settings())  // startup defaults, and session SETs
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return (a | 0x20) == (b | 0x20);
        }))
      return true;
  return false;
}

// A ping is answered while a read would be routed to a server the health monitor sees up;
// otherwise it takes the normal path and gets the route's wait or error.
bool ClientSession::route_healthy() {
  const DatabaseTopology* topology = host_.topology().find(database_->name);
  if (topology == nullptr || topology->servers.empty()) return false;
  const Route r = route_transaction(Intent::Read, *database_, *topology, -1, rotation_);
  return r.kind == Route::Kind::Server &&
         topology->servers[static_cast<std::size_t>(r.server)].health == ServerHealth::Up;
}

// The route of a transaction whose BEGIN was held: its modes decide (READ ONLY reads,
// READ WRITE or SERIALIZABLE writes); after a plain BEGIN, the first statement may make
// it read-only (SET TRANSACTION READ ONLY), and otherwise it may write.
Intent ClientSession::deferred_intent(char t, std::span<const std::byte> in, const protocol::FrameHeader& h,
                                      Intent first) {
  if (database_->replicas.empty()) return first;
  if (deferred_.route == TextRoute::Read) return Intent::Read;
  if (deferred_.route == TextRoute::Write) return Intent::Write;
  const std::string* default_ro = params_.find("default_transaction_read_only");
  if (default_ro != nullptr && *default_ro == "on") return Intent::Read;
  std::string_view sql;
  if (in.size() >= h.total_size()) {
    const auto body = in.subspan(5, h.body_size());
    protocol::ParseMessage parse;
    if (t == tag(FrontendTag::Query)) protocol::parse_query(body, sql);
    if (t == tag(FrontendTag::Parse) && protocol::parse_parse(body, parse)) sql = parse.query;
  }
  if (!sql.empty()) {
    const sql::Classification& c = host_.resources().classifier.classify(sql);
    if (c.sets_transaction_read_only && c.kind == sql::StatementKind::Read) return Intent::Read;
  }
  return Intent::Write;
}

// The held BEGIN goes first in the batch of the transaction's first statement: one write,
// one round trip. Its replies (CommandComplete, ReadyForQuery 'T') were given already.
void ClientSession::send_deferred_begin() {
  server_->send_answered(deferred_.sql, forward());
  deferred_ = DeferredBegin{};
  // A replay elsewhere would lack the BEGIN, which the client believes ran.
  retry_.capturing = false;
  retry_.bytes.clear();
}

// The first statement after a held BEGIN could not get a server: the transaction failed
// before anything ran, as if its first statement had failed (status 'E' until it ends).
void ClientSession::deferred_begin_refused() {
  if (deferred_.phase != DeferredBegin::Phase::Held) return;
  deferred_.phase = DeferredBegin::Phase::Aborted;
  exchange_.tx_status = 'E';
}

}  // namespace pgsidecar::proxy
