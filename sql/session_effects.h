// What a statement leaves on its server connection past its transaction: session settings
// (SET, RESET, set_config(..., false), SET ROLE, SET SESSION AUTHORIZATION, SET SESSION
// CHARACTERISTICS) that pgsidecar replays on the client's next server, and state that
// cannot be replayed cheaply (temporary tables, session advisory locks, WITH HOLD
// cursors, LISTEN, SQL PREPARE) that pins the client to its server or is refused. Read
// from PostgreSQL's own parse tree (libpg_query). docs/pooling.md lists what each does.
#pragma once

#include "sql/layer.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgsidecar::sql {

enum class EffectKind : uint8_t {
  // Settings: `name` (lower case) and, for Set, `value` as set_config() takes it.
  Set,
  Reset,             // RESET name, SET name TO DEFAULT
  ResetAll,          // RESET ALL
  UntrackedSetting,  // a setting changed with a value only the server knows (set_config(f(), ...))
  // set_config(name, value, false) with the name, the value or both a parameter of the
  // statement ($n, or $n::text / $n::varchar): `name_param` / `value_param` number it
  // (1-based), else `name` / `value` hold the constant. Read with the Bind's values.
  SetFromParams,
  // State that lives on one server connection. `value` names the statement that made it.
  TempTable,              // CREATE TEMP TABLE / VIEW / SEQUENCE, SELECT INTO TEMP (not ON COMMIT DROP)
  DiscardTemp,            // DISCARD TEMP
  DiscardAll,             // DISCARD ALL: everything back to the connection's start
  AdvisoryLock,           // one call of pg_advisory_lock[_shared] or pg_try_advisory_lock[_shared]
  AdvisoryLockUncounted,  // such a call that may run any number of times (in a FROM, WHERE, ...)
  AdvisoryUnlock,         // one call of pg_advisory_unlock[_shared]
  AdvisoryUnlockAll,      // pg_advisory_unlock_all()
  HoldCursor,             // DECLARE name ... WITH HOLD
  CloseCursor,            // CLOSE name
  CloseAllCursors,        // CLOSE ALL
  Listen,                 // LISTEN name
  Unlisten,               // UNLISTEN name
  UnlistenAll,            // UNLISTEN *
  Prepare,                // PREPARE name
  Deallocate,             // DEALLOCATE name
  DeallocateAll,          // DEALLOCATE ALL
  // Transaction control, to know whether the effects above were committed.
  Commit,      // COMMIT, END, PREPARE TRANSACTION
  Rollback,    // ROLLBACK, ABORT
  Savepoint,   // SAVEPOINT name
  RollbackTo,  // ROLLBACK TO SAVEPOINT name
  Release,     // RELEASE SAVEPOINT name
};

struct SessionEffect {
  EffectKind kind = EffectKind::Set;
  std::string name;
  std::string value;
  uint16_t name_param = 0;  // SetFromParams only; 0: `name` is the constant
  uint16_t value_param = 0;
  friend bool operator==(const SessionEffect&, const SessionEffect&) = default;
};

using StatementEffects = std::vector<SessionEffect>;

// Whether `kind` creates state that keeps a client on its server connection.
bool creates_pinned_state(EffectKind kind);
// Transaction control only: Commit, Rollback, Savepoint, RollbackTo, Release.
bool is_transaction_control(EffectKind kind);

// A cheap look at the text: false when no statement in it can have any effect above other
// than transaction control (no keyword of one appears).
bool may_affect_session(std::string_view sql);
// Also true for the words of transaction control (COMMIT, ROLLBACK, END, ABORT, SAVEPOINT,
// RELEASE, PREPARE TRANSACTION).
bool may_control_transaction(std::string_view sql);

}  // namespace pgsidecar::sql
