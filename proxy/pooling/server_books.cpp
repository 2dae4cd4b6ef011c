// ServerConn, its books: what the leasing client sends (Parse, Close, Bind of statements
// it holds or not), what its commands leave on the connection that outlives their
// transaction, and the reset and settings injected before another client's first
// request. The server's replies are matched against these books in server_conn.cpp.
#include "protocol/backend.h"
#include "protocol/messages.h"
#include "proxy/pooling/pool_shard.h"
#include "proxy/pooling/server_conn.h"

namespace pgsidecar::proxy {

namespace {

// What removes each kind of leftover state. RESET ALL leaves role and session
// authorization alone; RESET SESSION AUTHORIZATION also ends a SET ROLE, and RESET ROLE
// makes sure of it.
constexpr std::string_view kResetSettings = "RESET SESSION AUTHORIZATION;RESET ROLE;RESET ALL;";
constexpr std::string_view kResetSqlStatements = "DEALLOCATE ALL;";
constexpr std::string_view kResetListens = "UNLISTEN *;";

std::string reset_sql(SessionLeftovers leftovers) {
  std::string sql;
  if (leftovers.settings) sql += kResetSettings;
  if (leftovers.sql_statements) sql += kResetSqlStatements;
  if (leftovers.listens) sql += kResetListens;
  return sql;
}

}  // namespace

void ServerConn::client_sent_close(char kind, std::string_view name) {
  const bool statement = kind == 'S' && !name.empty();
  if (statement) statements_.erase(name);
  expectations_.expect('3', false, statement ? std::string(name) : std::string());
}

// A Close of statement `name` ahead of the client's bytes, its CloseComplete swallowed.
void ServerConn::inject_close(std::string_view name, OutboundBatch& to_server) {
  protocol::append_close(to_server.injected_out(), 'S', name);
  to_server.commit_injected();
  expectations_.expect('3', true, std::string(name));
}

void ServerConn::client_sent_parse(std::string_view name, StatementRef statement, OutboundBatch& to_server) {
  if (name.empty()) {
    unnamed_owner_ = session_->lessee_id();
  } else {
    // Another client's statement of the same name may live on this server: replace it.
    if (statements_.contains(name)) inject_close(name, to_server);
    statements_.set(name, std::move(statement));
  }
  expectations_.expect('1', false, std::string(name));
}

void ServerConn::ensure_statement(std::string_view name, const StatementRef& statement, OutboundBatch& to_server) {
  if (statements_.use(name, *statement)) return;
  if (statements_.contains(name)) inject_close(name, to_server);
  protocol::append_parse(to_server.injected_out(), name, statement->query, statement->param_types);
  to_server.commit_injected();
  expectations_.expect('1', true, std::string(name));
  statements_.set(name, statement);
}

void ServerConn::close_foreign_statement(std::string_view name, OutboundBatch& to_server) {
  if (name.empty()) {
    if (unnamed_owner_ == kNoSession || unnamed_owner_ == session_->lessee_id()) return;
    // Closed, unless the server skips the Close after an error: whose it is then is unknown.
    unnamed_owner_ = kUnknownSession;
  } else {
    if (!statements_.contains(name)) return;
    statements_.erase(name);
  }
  inject_close(name, to_server);
}

bool ServerConn::statements_over_limit() const {
  return statements_.size() > static_cast<std::size_t>(pool_.settings().max_statements_per_server);
}

void ServerConn::trim_statements(OutboundBatch& to_server) {
  if (!statements_over_limit()) return;
  const auto limit = static_cast<std::size_t>(pool_.settings().max_statements_per_server);
  while (statements_.size() > limit) {
    const std::string name(statements_.least_recently_used());
    statements_.erase(name);
    protocol::append_close(to_server.injected_out(), 'S', name);
    expectations_.expect('3', true, name);
    ++statements_evicted_;
  }
  // Its own Sync: the Closes end before whatever the client sends first, a Query too.
  protocol::append_sync(to_server.injected_out());
  to_server.commit_injected();
  expectations_.expect('Z', true);
}

// A Parse or Close the server skipped after an error (or a Parse that failed): what its
// statement name holds now.
void ServerConn::note_skipped(const ResponseExpectations::Entry& skipped) {
  if (skipped.statement.empty()) {
    // The unnamed statement: an earlier one may still be there, whoever made it. (A
    // portal's Close frees no statement; an unnamed Close is injected with the owner unknown.)
    if (skipped.reply == '1') unnamed_owner_ = kUnknownSession;
  } else if (skipped.reply == '3') {
    statements_.set_unknown(skipped.statement);  // still there, whichever it is
  } else if (statements_.find(skipped.statement) != nullptr) {
    statements_.erase(skipped.statement);  // never made (a skipped Close before it left one unknown)
  }
}

void ServerConn::carry(bool SessionLeftovers::*kind) {
  // Another session's leftovers were reset before this one's first request went out.
  carried_.*kind = true;
  carried_owner_ = session_->lessee_id();
}

void ServerConn::inject_query(std::string_view sql, OutboundBatch& to_server) {
  protocol::append_query(to_server.injected_out(), sql);
  to_server.commit_injected();
  expectations_.expect('Z', true);
  unnamed_owner_ = kNoSession;  // a simple Query drops the unnamed statement; this one runs first
}

void ServerConn::sync_settings(SessionLeftovers leftovers, std::string_view settings_sql, uint64_t defaults_fp,
                               std::shared_ptr<const ParamList> client_settings, OutboundBatch& to_server) {
  if (leftovers.any()) {
    inject_query(reset_sql(leftovers), to_server);
    // Booked now, not at the swallowed reply: the client's own Parses noted after this
    // point run after the reset on the server.
    if (leftovers.sql_statements) statements_.clear();
    if (leftovers.settings) carried_.settings = false;
    if (leftovers.sql_statements) carried_.sql_statements = false;
    if (leftovers.listens) carried_.listens = false;
    if (!carried_.any()) carried_owner_ = kNoSession;
  }
  if (!settings_sql.empty()) inject_query(settings_sql, to_server);
  defaults_fp_ = defaults_fp;
  synced_settings_ = std::move(client_settings);
  synced_version_ = params_version_;
}

// What a command of the leasing client left on this connection, from its tag.
void ServerConn::note_command_complete(std::span<const std::byte> body) {
  std::string_view command;
  protocol::parse_command_complete(body, command);
  if (command == "DISCARD ALL" || command == "DEALLOCATE ALL") {
    statements_.clear();
    carried_.sql_statements = false;
    if (command == "DISCARD ALL") {
      defaults_fp_ = 0;
      carried_.settings = false;
      carried_.listens = false;
    }
    session_->on_statements_reset();
  } else if (command == "SET" || command == "RESET") {
    carry(&SessionLeftovers::settings);  // SET ROLE and SET SESSION AUTHORIZATION too
  } else if (command == "LISTEN") {
    carry(&SessionLeftovers::listens);
  } else if (command == "PREPARE" || command == "DEALLOCATE") {
    // An SQL statement only this client may run; or a DEALLOCATE of a name the books
    // may have missed (deallocate_target reads only the plain forms).
    carry(&SessionLeftovers::sql_statements);
  }
}

bool ServerConn::notification_for_lessee() const {
  return carried_.listens && carried_owner_ == session_->lessee_id();
}

}  // namespace pgsidecar::proxy
