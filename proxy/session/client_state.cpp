// ClientSession, what its statements leave on the session past their transaction:
// settings followed onto every server it uses, state that pins it to its server
// (session_state = "pin") or is refused (session_state = "refuse"). SessionTracker keeps
// the books; docs/pooling.md says what each statement does.
#include "protocol/frontend.h"
#include "protocol/messages.h"
#include "protocol/tags.h"
#include "proxy/core/log.h"
#include "proxy/pooling/server_conn.h"
#include "proxy/session/client_session.h"
#include "proxy/session/settings_sync.h"
#include "sql/classify_cache.h"
#include "sql/session_effects.h"

namespace pgsidecar::proxy {

using protocol::FrontendTag;
using protocol::tag;

namespace {

bool has_lasting_effect(const std::vector<sql::StatementEffects>& statements) {
  for (const auto& effects : statements)
    for (const auto& e : effects)
      if (!sql::is_transaction_control(e.kind)) return true;
  return false;
}

// How a refused statement is named in the error.
std::string refused_name(const sql::SessionEffect& e) {
  if (e.kind != sql::EffectKind::UntrackedSetting) return e.value;
  if (e.name == "DO") return "a DO block that changes a setting";
  return "a setting whose value only the server knows (" + e.name + ")";
}

}  // namespace

std::vector<sql::StatementEffects> ClientSession::session_effects(std::string_view sql) {
  const bool watching = tracker_.watching_transaction();
  if (!(watching ? sql::may_control_transaction(sql) : sql::may_affect_session(sql))) return {};
  const sql::Classification& c = host_.resources().classifier.classify(sql);
  if (c.session_effects.empty() || (!watching && !has_lasting_effect(c.session_effects))) return {};
  return c.session_effects;
}

void ClientSession::note_query_effects(std::string_view sql) {
  const std::vector<sql::StatementEffects> effects = sql.empty() ? std::vector<sql::StatementEffects>{} : session_effects(sql);
  if (effects.empty()) {
    tracker_.sent_query_without_effects();
    return;
  }
  for (const auto& statement : effects) tracker_.sent_statement(&statement);
  tracker_.query_end();
}

void ClientSession::note_statement_effects(const protocol::ParseMessage& parse) {
  const std::vector<sql::StatementEffects> effects = session_effects(parse.query);
  tracker_.statement_prepared(parse.name, effects.empty() ? nullptr : &effects.front(), parse.param_types_raw);
}

std::string ClientSession::refused_statement(const protocol::FrameHeader& h, std::span<const std::byte> in) {
  if (session_mode_ || database_ == nullptr || database_->pool.session_state != config::SessionStatePolicy::Refuse)
    return {};
  const auto body = in.subspan(5, std::min(h.body_size(), in.size() - 5));
  std::string_view sql;
  protocol::ParseMessage parse;
  if (h.tag == tag(FrontendTag::Query)) {
    if (body.size() < h.body_size() || !protocol::parse_query(body, sql)) return {};
  } else {
    if (!protocol::parse_parse(body, parse)) return {};
    sql = parse.query;
  }
  if (!sql::may_affect_session(sql)) return {};
  for (const auto& effects : host_.resources().classifier.classify(sql).session_effects)
    for (const auto& e : effects)
      if (sql::creates_pinned_state(e.kind)) return refused_name(e);
  return {};
}

// Inside a transaction the refusal comes from the server, so that the transaction is
// aborted as the client is told: the request (up to its Sync) is replaced by a DO block
// that raises the error.
ClientSession::Step ClientSession::refuse_linked(const protocol::FrameHeader& h, std::span<const std::byte> in) {
  head_parse_ = {};
  const std::size_t n = std::min(h.total_size(), in.size());
  input_.consume(n);
  passthrough_ = 0;
  discard_ = h.total_size() - n;
  if (h.tag != tag(FrontendTag::Sync) && h.tag != tag(FrontendTag::Query)) return Step::Next;
  const ProxyError e = std::move(*refusing_);
  refusing_.reset();
  ++host_.resources().counters.errors[e.sqlstate];
  std::string sql = "DO $pgsidecar$BEGIN RAISE EXCEPTION USING ERRCODE = ";
  append_string_literal(sql, e.sqlstate);
  sql += ", MESSAGE = ";
  append_string_literal(sql, e.message);
  sql += ", HINT = ";
  append_string_literal(sql, e.hint);
  sql += "; END$pgsidecar$";
  forward_dest_ = server_->stream();
  protocol::append_query(forward().injected_out(), sql);
  forward().commit_injected();
  server_->client_sent_sync();
  tracker_.sent_query_without_effects();
  exchange_.extended = false;
  return Step::Next;
}

void ClientSession::take_tracker_outcome() {
  if (!tracker_.outcome_pending()) return;  // after nearly every reply
  SessionTracker::Outcome o = tracker_.take_outcome();
  const uint64_t fp = tracker_.fingerprint();
  if (o.settings_changed && server_ != nullptr && server_->defaults_fp() == followed_fp_) server_->settings_now(fp);
  followed_fp_ = fp;
  // Every setting in the books was accepted by a server (or answered here as one had).
  if (o.settings_changed && accepted_settings_ != nullptr)
    for (const auto& [k, v] : tracker_.settings()) accepted_settings_->learn(k, v);
  if (o.resync) {
    if (server_ != nullptr) server_->settings_now(ServerConn::kSettingsUnknown);
    settings_dirty_ = true;
  }
  for (const auto& [k, v] : o.restore_reported) params_.set(k, v);
  const uint8_t now = session_mode_ ? 0 : tracker_.pin_reasons();
  if (now == pin_reasons_) return;
  const uint8_t added = now & static_cast<uint8_t>(~pin_reasons_);
  for (int i = 0; i < kPinReasons; ++i)
    if ((added & (1u << i)) != 0) ++host_.resources().counters.pins[std::string(pin_reason_name(i))];
  const bool released = now == 0;
  pin_reasons_ = now;
  log_info(released ? "client_unpinned" : "client_pinned")
      .kv("worker", host_.loop().id())
      .kv("session", static_cast<long long>(id_))
      .kv("user", user_name_)
      .kv("database", database_name_)
      .kv("reason", pin_reasons_text(now));
}

}  // namespace pgsidecar::proxy
