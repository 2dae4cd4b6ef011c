// Conservative read-only statement classifier, on PostgreSQL's own grammar (libpg_query,
// PostgreSQL 15). Routing sends a statement outside an explicit transaction to a replica
// only when this says Read; when in doubt the answer is Write. docs/classifier.md lists
// the rules and the functions known to be read-only.
#pragma once

#include "sql/layer.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sql/session_effects.h"

namespace pgsidecar::sql {

enum class StatementKind { Read, Write };

// A lone statement whose answer the proxy knows, or which it may hold back until the
// next one (docs/pooling.md, "Round trips saved"). None for anything else, including
// several statements in one string and COMMIT/ROLLBACK AND CHAIN.
enum class LocalStatement : uint8_t {
  None,
  Empty,             // no statement at all: whitespace, comments, ";"
  Begin,             // BEGIN [modes]
  StartTransaction,  // START TRANSACTION [modes]
  Commit,            // COMMIT, END
  Rollback,          // ROLLBACK, ABORT
  DiscardAll,
  ResetAll,
  DeallocateAll,     // DEALLOCATE [PREPARE] ALL
  UnlistenAll,       // UNLISTEN *
  CloseAll,          // CLOSE ALL
  Set,               // SET name = value, SET name TO DEFAULT (not LOCAL)
  Reset,             // RESET name
};

struct Classification {
  StatementKind kind = StatementKind::Write;
  // Why, in a few words: "SELECT", "SELECT ... FOR UPDATE", "nextval() writes",
  // "parse error: treated as write". For a multi-statement string, the first Write
  // statement's reason, else the first statement's.
  std::string reason;
  // BEGIN/START/COMMIT/ROLLBACK/SAVEPOINT/RELEASE/PREPARE TRANSACTION/..., SET TRANSACTION
  // and SET transaction_read_only. Read, except two-phase commit and the modes a hot
  // standby refuses (see below).
  bool transaction_control = false;
  // BEGIN READ ONLY / START TRANSACTION READ ONLY (the last mode given wins). The mode
  // only: a BEGIN that a hot standby refuses (any READ WRITE or SERIALIZABLE mode, even
  // SERIALIZABLE READ ONLY) is Write, so check `kind` before this flag.
  bool begins_read_only = false;
  // SET TRANSACTION READ ONLY, SET [LOCAL] transaction_read_only = on.
  bool sets_transaction_read_only = false;
  // SET [SESSION] default_transaction_read_only = on/off, or SET SESSION CHARACTERISTICS
  // AS TRANSACTION READ ONLY/READ WRITE (the same setting under another name).
  std::optional<bool> sets_default_read_only;
  // RESET default_transaction_read_only, SET ... TO DEFAULT, RESET ALL, DISCARD ALL: the
  // setting returns to the session's default, which only the server knows.
  bool resets_default_read_only = false;
  // A set_config(name, value, is_local) whose is_local is not the constant true: the
  // value outlives the transaction. Also a DO block naming set_config (its body is parsed
  // only when it runs). Found only in text that may_set_session_config() accepts.
  bool sets_session_config = false;
  LocalStatement local = LocalStatement::None;
  // What each statement leaves on the session (sql/session_effects.h), one entry per
  // statement, in order; empty when none has any effect. Filled only for text that
  // may_affect_session() or may_control_transaction() accepts.
  std::vector<StatementEffects> session_effects;

  friend bool operator==(const Classification&, const Classification&) = default;
};

// Classifies a whole simple-Query string, or the text of one Parse. A string of several
// statements is Read only if every statement is; the flags collect all statements (for
// the default_transaction_read_only ones, the last wins). Empty or comment-only: Read.
// Parse errors and text holding a NUL byte: Write. Thread-safe.
Classification classify_sql(std::string_view sql);

}  // namespace pgsidecar::sql
