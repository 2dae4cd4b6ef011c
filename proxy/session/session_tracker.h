// What a client's session holds past its transactions, followed from what the server
// confirms. Settings (SET, RESET, set_config(..., false), SET ROLE, SET SESSION
// AUTHORIZATION, SET SESSION CHARACTERISTICS) count once their statement completed and
// its transaction committed: a SET inside a transaction that rolls back (or a savepoint
// rolled back to) is undone, as PostgreSQL undoes it. They are replayed on any other
// server the client uses. State that cannot be replayed cheaply (temporary tables,
// session advisory locks, WITH HOLD cursors, LISTEN, SQL PREPARE) pins the client to its
// server connection until it is released (docs/pooling.md).
//
// Statements are matched to the server's replies in order: each CommandComplete,
// EmptyQueryResponse or PortalSuspended ends one statement, an ErrorResponse ends the
// rest of its request, a ReadyForQuery its request. Requests with no effects cost a count.
#pragma once

#include "proxy/session/layer.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/io/ring_queue.h"
#include "proxy/pooling/parameters.h"
#include "sql/session_effects.h"

namespace pgsidecar::proxy {

// Why a client is pinned to its server connection; each a bit.
enum PinReason : uint8_t {
  kPinTempTable = 1,
  kPinAdvisoryLock = 2,
  kPinHoldCursor = 4,
  kPinListen = 8,
  kPinSqlPrepare = 16,
  kPinUntrackedSetting = 32,
};
inline constexpr int kPinReasons = 6;
// "temp table", "advisory lock", "WITH HOLD cursor", "LISTEN", "SQL PREPARE", "untracked setting".
std::string_view pin_reason_name(int bit_index);
// The names of the bits set, joined with ", ".
std::string pin_reasons_text(uint8_t reasons);

struct Pins {
  bool temp_tables = false;
  int advisory_locks = 0;           // counted lock calls minus unlock calls
  bool advisory_uncounted = false;  // a lock call that may have run any number of times
  std::vector<std::string> hold_cursors, listens, sql_statements;
  bool untracked_setting = false;
  uint8_t reasons() const;
};

class SessionTracker {
 public:
  // The client's startup settings: those PostgreSQL does not report (its session defaults)
  // and the reported ones it gave.
  void set_startup(ParamList defaults, ParamList reported);

  // The client's non-reported settings now: startup defaults, then its session SETs in
  // the order they were last made. A server that carries exactly these has fingerprint().
  const ParamList& settings() const { return settings_; }
  uint64_t fingerprint() const { return fingerprint_; }
  const Pins& pins() const { return pins_; }
  // A session SET or RESET answered without a server, outside a transaction: it counts
  // at once, and the client's next server is made to carry it.
  void answered_here(const sql::SessionEffect& e) { commit(e); }
  uint8_t pin_reasons() const { return pins_.reasons(); }

  // Sent to the server. `effects` are one statement's (an Execute's portal, or one
  // statement of a Query); a Query's statements come one by one, then query_end().
  void sent_statement(const sql::StatementEffects* effects);  // null or empty: none
  void sent_query_without_effects();  // a Query none of whose statements has any
  void query_end() { request_end(); }
  void sent_sync() { request_end(); }  // Sync or FunctionCall
  // Whether COMMIT, ROLLBACK and savepoints must be read now: effects may still be undone.
  bool watching_transaction() const { return !staged_.empty() || effectful_slots_ > 0; }
  // Statements prepared or bound with effects, for their later Execute. `param_types`:
  // the Parse's Int32 type oids, as on the wire; a set_config() parameter declared other
  // than text, varchar or unknown (0 or 705) is not read as the text it was sent as.
  void statement_prepared(std::string_view name, const sql::StatementEffects* effects,
                          std::span<const std::byte> param_types = {});
  // Whether a Bind of `statement` sets a setting from its parameter values
  // (set_config('x', $1, false)): portal_bound needs the Bind's whole body then.
  bool binds_settings(std::string_view statement) const;
  // `bind`: the Bind's body, whole, or empty when it was not read whole. Settings made from
  // its parameters are followed like constant ones; a value that cannot be read here
  // (not whole, or a NUL byte in it) leaves an untracked setting.
  void portal_bound(std::string_view portal, std::string_view statement, std::span<const std::byte> bind = {});
  const sql::StatementEffects* portal_effects(std::string_view portal) const;

  // From the server.
  void statement_done();        // CommandComplete, EmptyQueryResponse, PortalSuspended
  void statement_failed();      // ErrorResponse
  void ready(char tx_status);   // ReadyForQuery
  void server_lost();           // its replies will never come

  // What the replies so far changed, taken once.
  struct Outcome {
    bool settings_changed = false;  // fingerprint() changed and the server carries the new settings
    bool resync = false;            // the server went back to its own default for one of ours
    ParamList restore_reported;     // reported settings back to the client's startup value
    bool pins_changed = false;
  };
  Outcome take_outcome() { return std::exchange(outcome_, Outcome{}); }
  // Whether take_outcome() has anything: most replies change nothing.
  bool outcome_pending() const {
    return outcome_.settings_changed || outcome_.resync || outcome_.pins_changed || !outcome_.restore_reported.empty();
  }

 private:
  struct Slot {
    enum Type : uint8_t { Statement, PlainQuery, Ready } type = Statement;
    std::shared_ptr<const sql::StatementEffects> effects;
  };
  void request_end();
  void push_pending_plain();
  void apply(const sql::SessionEffect& e);
  void stage(const sql::SessionEffect& e) { staged_.push_back(e); }
  void commit_staged();
  void commit(const sql::SessionEffect& e);
  void set(const std::string& name, const std::string& value);
  void reset(const std::string& name);
  void reset_all();
  void role_follows(std::string_view name);
  void rebuild_settings();
  void pins_touched(uint8_t before);

  ParamList defaults_, reported_;
  ParamList session_sets_;  // oldest first
  ParamList settings_;
  uint64_t fingerprint_ = 0;
  Pins pins_;

  RingQueue<Slot> slots_;
  std::size_t effectful_slots_ = 0;
  int plain_requests_ahead_ = 0;   // requests sent with no slot: their replies come first
  int open_plain_statements_ = 0;  // Executes of the request not yet ended, sent with no slot
  std::vector<sql::SessionEffect> staged_;  // waiting for the transaction to commit
  std::vector<std::pair<std::string, std::size_t>> savepoints_;  // name, staged_ size then
  bool aborted_ = false;  // an error since the transaction (or its last savepoint rollback) began

  std::vector<std::pair<std::string, std::shared_ptr<const sql::StatementEffects>>> statements_, portals_;
  Outcome outcome_;
};

}  // namespace pgsidecar::proxy
