#include "proxy/session/session_tracker.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <strings.h>

#include "protocol/frontend.h"
#include "protocol/wire.h"
#include "proxy/session/settings_sync.h"

namespace pgsidecar::proxy {

using sql::EffectKind;
using sql::SessionEffect;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

template <typename List>
auto find_named(List& list, std::string_view name) {
  return std::find_if(list.begin(), list.end(), [name](const auto& e) { return iequals(e.first, name); });
}

void add_name(std::vector<std::string>& names, const std::string& name) {
  if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
}

void remove_name(std::vector<std::string>& names, const std::string& name) {
  names.erase(std::remove(names.begin(), names.end(), name), names.end());
}

// RESET ALL leaves these alone (GUC_NO_RESET_ALL); DISCARD ALL resets them too.
bool kept_by_reset_all(std::string_view name) { return name == "role" || name == "session_authorization"; }

// Effects that last whatever becomes of their transaction.
bool non_transactional(EffectKind k) {
  switch (k) {
    case EffectKind::AdvisoryLock:
    case EffectKind::AdvisoryLockUncounted:
    case EffectKind::AdvisoryUnlock:
    case EffectKind::AdvisoryUnlockAll:
    case EffectKind::Prepare:
    case EffectKind::Deallocate:
    case EffectKind::DeallocateAll:
    case EffectKind::DiscardAll:
      return true;
    default:
      return false;
  }
}

bool sets_from_params(const sql::StatementEffects& effects) {
  return std::any_of(effects.begin(), effects.end(), [](const SessionEffect& e) { return e.kind == EffectKind::SetFromParams; });
}

constexpr uint32_t kTextOid = 25, kVarcharOid = 1043, kUnknownOid = 705;

// Parameter types whose value reaches set_config() as the very bytes sent, in either
// format: unspecified (0, inferred as text), text, varchar, unknown.
bool text_as_sent(std::span<const std::byte> param_types, uint16_t param) {
  if (param == 0 || static_cast<std::size_t>(param) * 4 > param_types.size()) return true;
  const uint32_t oid = protocol::load_be32(param_types.data() + (param - 1u) * 4u);
  return oid == 0 || oid == kTextOid || oid == kVarcharOid || oid == kUnknownOid;
}

// The text of parameter `param` (1-based) of a whole Bind body; false when unreadable or
// holding a NUL byte (set_config would see it cut short). `null` for a NULL.
bool param_text(std::span<const std::byte> bind, uint16_t param, std::string& text, bool& null) {
  protocol::BindParameter p;
  if (bind.empty() || !protocol::read_bind_parameter(bind, param - 1u, p) || (p.format != 0 && p.format != 1))
    return false;
  const std::string_view v = protocol::as_string_view(p.value);
  if (v.find('\0') != std::string_view::npos) return false;
  null = p.null;
  text = v;
  return true;
}

// set_config() of parameters with the Bind's values: a Set, a Reset for a NULL value (as
// set_config takes it), or an untracked setting when a value cannot be read here.
SessionEffect resolved(const SessionEffect& e, std::span<const std::byte> bind) {
  SessionEffect out{EffectKind::Set, e.name, e.value};
  bool null_name = false, null_value = false;
  if ((e.name_param != 0 && !param_text(bind, e.name_param, out.name, null_name)) || null_name ||
      (e.value_param != 0 && !param_text(bind, e.value_param, out.value, null_value)))
    return SessionEffect{EffectKind::UntrackedSetting, "set_config", ""};
  for (char& c : out.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (null_value) return SessionEffect{EffectKind::Reset, out.name, ""};
  return out;
}

constexpr std::array<std::string_view, kPinReasons> kPinNames = {
    "temp table", "advisory lock", "WITH HOLD cursor", "LISTEN", "SQL PREPARE", "untracked setting"};

}  // namespace

std::string_view pin_reason_name(int bit_index) { return kPinNames.at(static_cast<std::size_t>(bit_index)); }

std::string pin_reasons_text(uint8_t reasons) {
  std::string out;
  for (int i = 0; i < kPinReasons; ++i) {
    if ((reasons & (1u << i)) == 0) continue;
    if (!out.empty()) out += ", ";
    out += kPinNames[static_cast<std::size_t>(i)];
  }
  return out;
}

uint8_t Pins::reasons() const {
  uint8_t r = 0;
  if (temp_tables) r |= kPinTempTable;
  if (advisory_locks > 0 || advisory_uncounted) r |= kPinAdvisoryLock;
  if (!hold_cursors.empty()) r |= kPinHoldCursor;
  if (!listens.empty()) r |= kPinListen;
  if (!sql_statements.empty()) r |= kPinSqlPrepare;
  if (untracked_setting) r |= kPinUntrackedSetting;
  return r;
}

void SessionTracker::set_startup(ParamList defaults, ParamList reported) {
  defaults_ = std::move(defaults);
  reported_ = std::move(reported);
  rebuild_settings();
}

void SessionTracker::rebuild_settings() {
  settings_.clear();
  for (const auto& [k, v] : defaults_)
    if (find_named(session_sets_, k) == session_sets_.end()) settings_.emplace_back(k, v);
  for (const auto& kv : session_sets_) settings_.push_back(kv);
  fingerprint_ = defaults_fingerprint(settings_);
}

// ---- sent -------------------------------------------------------------------------------

void SessionTracker::push_pending_plain() {
  for (; open_plain_statements_ > 0; --open_plain_statements_) slots_.push_back(Slot{});
}

void SessionTracker::sent_statement(const sql::StatementEffects* effects) {
  const bool has = effects != nullptr && !effects->empty();
  if (!has && slots_.empty()) {
    ++open_plain_statements_;
    return;
  }
  push_pending_plain();
  Slot slot;
  if (has) {
    slot.effects = std::make_shared<const sql::StatementEffects>(*effects);
    ++effectful_slots_;
  }
  slots_.push_back(std::move(slot));
}

void SessionTracker::sent_query_without_effects() {
  if (slots_.empty()) {
    ++plain_requests_ahead_;
    return;
  }
  slots_.push_back(Slot{Slot::PlainQuery, nullptr});
}

void SessionTracker::request_end() {
  if (slots_.empty()) {
    ++plain_requests_ahead_;
    open_plain_statements_ = 0;
    return;
  }
  push_pending_plain();
  slots_.push_back(Slot{Slot::Ready, nullptr});
}

void SessionTracker::statement_prepared(std::string_view name, const sql::StatementEffects* effects,
                                        std::span<const std::byte> param_types) {
  auto it = find_named(statements_, name);
  if (effects == nullptr || effects->empty()) {
    if (it != statements_.end()) statements_.erase(it);
    return;
  }
  auto copy = std::make_shared<sql::StatementEffects>(*effects);
  for (SessionEffect& e : *copy)
    if (e.kind == EffectKind::SetFromParams &&
        (!text_as_sent(param_types, e.name_param) || !text_as_sent(param_types, e.value_param)))
      e = SessionEffect{EffectKind::UntrackedSetting, "set_config", ""};
  std::shared_ptr<const sql::StatementEffects> shared = std::move(copy);
  if (it != statements_.end()) it->second = std::move(shared);
  else statements_.emplace_back(std::string(name), std::move(shared));
}

bool SessionTracker::binds_settings(std::string_view statement) const {
  auto s = std::find_if(statements_.begin(), statements_.end(), [statement](const auto& e) { return e.first == statement; });
  return s != statements_.end() && sets_from_params(*s->second);
}

void SessionTracker::portal_bound(std::string_view portal, std::string_view statement, std::span<const std::byte> bind) {
  auto p = std::find_if(portals_.begin(), portals_.end(), [portal](const auto& e) { return e.first == portal; });
  auto s = std::find_if(statements_.begin(), statements_.end(), [statement](const auto& e) { return e.first == statement; });
  if (s == statements_.end()) {
    if (p != portals_.end()) portals_.erase(p);
    return;
  }
  std::shared_ptr<const sql::StatementEffects> effects = s->second;
  if (sets_from_params(*effects)) {
    auto bound = std::make_shared<sql::StatementEffects>(*effects);
    for (SessionEffect& e : *bound)
      if (e.kind == EffectKind::SetFromParams) e = resolved(e, bind);
    effects = std::move(bound);
  }
  if (p != portals_.end()) p->second = std::move(effects);
  else portals_.emplace_back(std::string(portal), std::move(effects));
}

const sql::StatementEffects* SessionTracker::portal_effects(std::string_view portal) const {
  for (const auto& [name, effects] : portals_)
    if (name == portal) return effects.get();
  return nullptr;
}

// ---- replies ----------------------------------------------------------------------------

void SessionTracker::statement_done() {
  if (plain_requests_ahead_ > 0) return;
  if (slots_.empty()) {
    if (open_plain_statements_ > 0) --open_plain_statements_;
    return;
  }
  if (slots_.front().type != Slot::Statement) return;  // a Query with no effects: any number
  const std::shared_ptr<const sql::StatementEffects> effects = std::move(slots_.front().effects);
  slots_.pop_front();
  if (effects == nullptr) return;
  --effectful_slots_;
  const uint8_t before = pins_.reasons();
  for (const SessionEffect& e : *effects) apply(e);
  pins_touched(before);
}

void SessionTracker::statement_failed() {
  if (plain_requests_ahead_ > 0) return;
  aborted_ = true;
  open_plain_statements_ = 0;
  // The rest of the request is skipped by the server; ready() drops its slots.
}

void SessionTracker::ready(char tx_status) {
  if (plain_requests_ahead_ > 0) {
    --plain_requests_ahead_;
  } else {
    while (!slots_.empty() && slots_.front().type == Slot::Statement) {
      if (slots_.front().effects != nullptr) --effectful_slots_;
      slots_.pop_front();
    }
    if (!slots_.empty()) slots_.pop_front();
  }
  if (tx_status == 'I') {
    const uint8_t before = pins_.reasons();
    if (!aborted_) commit_staged();
    staged_.clear();
    savepoints_.clear();
    aborted_ = false;
    pins_touched(before);
  } else {
    aborted_ = tx_status == 'E';
  }
}

void SessionTracker::server_lost() {
  slots_.clear();
  effectful_slots_ = 0;
  plain_requests_ahead_ = 0;
  open_plain_statements_ = 0;
  staged_.clear();
  savepoints_.clear();
  aborted_ = false;
}

void SessionTracker::pins_touched(uint8_t before) {
  if (pins_.reasons() != before) outcome_.pins_changed = true;
}

// ---- effects ----------------------------------------------------------------------------

void SessionTracker::apply(const SessionEffect& e) {
  switch (e.kind) {
    case EffectKind::Commit:
      if (!aborted_) commit_staged();
      staged_.clear();
      savepoints_.clear();
      aborted_ = false;
      return;
    case EffectKind::Rollback:
      staged_.clear();
      savepoints_.clear();
      aborted_ = false;
      return;
    case EffectKind::Savepoint:
      savepoints_.emplace_back(e.name, staged_.size());
      return;
    case EffectKind::RollbackTo:
    case EffectKind::Release: {
      auto it = std::find_if(savepoints_.rbegin(), savepoints_.rend(), [&](const auto& s) { return s.first == e.name; });
      if (it == savepoints_.rend()) return;
      const auto keep = static_cast<std::size_t>(savepoints_.rend() - it);  // up to and including it
      if (e.kind == EffectKind::RollbackTo) {
        staged_.resize(std::min(staged_.size(), it->second));
        savepoints_.resize(keep);
        aborted_ = false;
      } else {
        savepoints_.resize(keep - 1);
      }
      return;
    }
    default:
      break;
  }
  if (non_transactional(e.kind)) commit(e);
  else stage(e);
}

void SessionTracker::commit_staged() {
  for (const SessionEffect& e : staged_) commit(e);
  staged_.clear();
}

void SessionTracker::set(const std::string& name, const std::string& value) {
  auto it = find_named(session_sets_, name);
  if (it != session_sets_.end()) session_sets_.erase(it);
  session_sets_.emplace_back(name, value);
  rebuild_settings();
  outcome_.settings_changed = true;
}

void SessionTracker::reset(const std::string& name) {
  if (is_tracked_parameter(name)) {
    auto startup = find_named(reported_, name);
    if (startup != reported_.end()) {
      outcome_.restore_reported.push_back(*startup);
      outcome_.resync = true;
    }
    return;
  }
  auto it = find_named(session_sets_, name);
  if (it != session_sets_.end()) session_sets_.erase(it);
  if (find_named(defaults_, name) != defaults_.end()) outcome_.resync = true;
  rebuild_settings();
  outcome_.settings_changed = true;
}

// SET or RESET SESSION AUTHORIZATION also puts the role back to NONE on the server.
void SessionTracker::role_follows(std::string_view name) {
  if (name != "session_authorization") return;
  auto it = find_named(session_sets_, "role");
  if (it == session_sets_.end()) return;
  session_sets_.erase(it);
  rebuild_settings();
  outcome_.settings_changed = true;
}

void SessionTracker::reset_all() {
  for (const auto& kv : reported_) outcome_.restore_reported.push_back(kv);
  if (!reported_.empty() || !defaults_.empty()) outcome_.resync = true;
  rebuild_settings();
  outcome_.settings_changed = true;
  pins_.untracked_setting = false;
}

void SessionTracker::commit(const SessionEffect& e) {
  switch (e.kind) {
    case EffectKind::Set:
      role_follows(e.name);
      if (!is_tracked_parameter(e.name)) set(e.name, e.value);  // reported ones: ParameterStatus
      return;
    case EffectKind::Reset:
      role_follows(e.name);
      reset(e.name);
      return;
    case EffectKind::ResetAll:
      std::erase_if(session_sets_, [](const auto& kv) { return !kept_by_reset_all(kv.first); });
      reset_all();
      return;
    case EffectKind::DiscardAll:
      session_sets_.clear();
      reset_all();
      pins_ = Pins{};
      return;
    case EffectKind::UntrackedSetting:
    case EffectKind::SetFromParams:  // not bound to values read here
      pins_.untracked_setting = true;
      return;
    case EffectKind::TempTable: pins_.temp_tables = true; return;
    case EffectKind::DiscardTemp: pins_.temp_tables = false; return;
    case EffectKind::AdvisoryLock: ++pins_.advisory_locks; return;
    case EffectKind::AdvisoryLockUncounted: pins_.advisory_uncounted = true; return;
    case EffectKind::AdvisoryUnlock:
      if (pins_.advisory_locks > 0) --pins_.advisory_locks;
      return;
    case EffectKind::AdvisoryUnlockAll:
      pins_.advisory_locks = 0;
      pins_.advisory_uncounted = false;
      return;
    case EffectKind::HoldCursor: add_name(pins_.hold_cursors, e.name); return;
    case EffectKind::CloseCursor: remove_name(pins_.hold_cursors, e.name); return;
    case EffectKind::CloseAllCursors: pins_.hold_cursors.clear(); return;
    case EffectKind::Listen: add_name(pins_.listens, e.name); return;
    case EffectKind::Unlisten: remove_name(pins_.listens, e.name); return;
    case EffectKind::UnlistenAll: pins_.listens.clear(); return;
    case EffectKind::Prepare: add_name(pins_.sql_statements, e.name); return;
    case EffectKind::Deallocate: remove_name(pins_.sql_statements, e.name); return;
    case EffectKind::DeallocateAll: pins_.sql_statements.clear(); return;
    default: return;
  }
}

}  // namespace pgsidecar::proxy
