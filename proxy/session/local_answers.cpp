#include "proxy/session/local_answers.h"

#include <array>
#include <optional>

#include "protocol/error_response.h"
#include "protocol/framer.h"
#include "protocol/frontend.h"
#include "protocol/messages.h"
#include "protocol/sqlstate.h"
#include "protocol/tags.h"
#include "protocol/wire.h"
#include "proxy/session/client_statements.h"

namespace pgsidecar::proxy {

using protocol::FrontendTag;
using protocol::tag;

namespace {

// Bind (F): String portal, String statement, Int16 n + n Int16 parameter formats,
// Int16 n + n parameter values, Int16 n + n Int16 result formats. Accepted with no
// parameter values and text results only, on the unnamed portal.
bool plain_bind(std::span<const std::byte> body, std::string_view& statement) {
  protocol::Reader r(body);
  std::string_view portal;
  int16_t formats = 0, params = 0, results = 0;
  if (!r.read_cstring(portal) || !r.read_cstring(statement) || !portal.empty()) return false;
  std::span<const std::byte> skipped;
  if (!r.read_i16(formats) || formats < 0 || !r.read_bytes(static_cast<std::size_t>(formats) * 2, skipped)) return false;
  if (!r.read_i16(params) || params != 0 || !r.read_i16(results) || results < 0) return false;
  for (int16_t i = 0; i < results; ++i) {
    int16_t f = 0;
    if (!r.read_i16(f) || f != 0) return false;
  }
  return r.remaining() == 0;
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\f\v";
  const auto b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  return true;
}

// Steps through an extended-protocol request; NeedMore while the Sync is still to come.
PeekLocal peek_extended(std::span<const std::byte> in, const ClientStatements& statements, LocalRequest& out) {
  enum class Next { ParseOrBind, Bind, DescribeOrExecute, Sync };
  Next next = Next::ParseOrBind;
  std::size_t at = 0;
  std::string_view parsed;
  out = LocalRequest{};
  out.extended = true;
  for (;;) {
    protocol::FrameHeader h;
    const auto rest = in.subspan(at);
    const auto status = protocol::peek_header(rest, h, kLocalRequestMaxBytes);
    if (status == protocol::FrameStatus::Invalid) return PeekLocal::No;
    if (at + (status == protocol::FrameStatus::Ready ? h.total_size() : 5) > kLocalRequestMaxBytes) return PeekLocal::No;
    if (status == protocol::FrameStatus::NeedMore || rest.size() < h.total_size()) return PeekLocal::NeedMore;
    const auto body = rest.subspan(5, h.body_size());
    at += h.total_size();
    if (h.tag == tag(FrontendTag::Parse) && next == Next::ParseOrBind) {
      protocol::ParseMessage parse;
      // A named Parse here makes a statement: left to the normal path.
      if (!protocol::parse_parse(body, parse) || !parse.name.empty() || parse.param_count != 0) return PeekLocal::No;
      // Most statements are none of these: the rest of the request need not be read.
      if (!may_be_local(parse.query) && !is_ping(parse.query)) return PeekLocal::No;
      parsed = parse.query;
      out.parse = true;
      next = Next::Bind;
    } else if (h.tag == tag(FrontendTag::Bind) && (next == Next::ParseOrBind || next == Next::Bind)) {
      std::string_view name;
      if (!plain_bind(body, name)) return PeekLocal::No;
      if (name.empty()) {
        if (!out.parse) return PeekLocal::No;  // an unnamed statement of an earlier request
        out.sql = parsed;
      } else {
        const PreparedStatement* stmt = statements.find(name);
        if (out.parse || stmt == nullptr || !stmt->statement->param_types.empty()) return PeekLocal::No;
        out.sql = stmt->statement->query;
      }
      next = Next::DescribeOrExecute;
    } else if (h.tag == tag(FrontendTag::Describe) && next == Next::DescribeOrExecute && !out.describe) {
      char kind = 0;
      std::string_view portal;
      if (!protocol::parse_describe(body, kind, portal) || kind != 'P' || !portal.empty()) return PeekLocal::No;
      out.describe = true;
    } else if (h.tag == tag(FrontendTag::Execute) && next == Next::DescribeOrExecute) {
      std::string_view portal;
      int32_t max_rows = 0;
      if (!protocol::parse_execute(body, portal, max_rows) || !portal.empty() || max_rows != 0) return PeekLocal::No;
      next = Next::Sync;
    } else if (h.tag == tag(FrontendTag::Sync) && next == Next::Sync) {
      out.bytes = at;
      return PeekLocal::Found;
    } else {
      return PeekLocal::No;
    }
  }
}

constexpr int32_t kInt4Oid = 23;

void append_ping_row_description(std::vector<std::byte>& out) {
  // RowDescription (B) of SELECT 1: one int4 column named ?column?, not from a table.
  const std::size_t at = protocol::begin_message(out, tag(protocol::BackendTag::RowDescription));
  protocol::put_i16(out, 1);
  protocol::put_cstring(out, "?column?");
  protocol::put_i32(out, 0);  // table oid
  protocol::put_i16(out, 0);  // column attribute number
  protocol::put_i32(out, kInt4Oid);
  protocol::put_i16(out, 4);   // typlen
  protocol::put_i32(out, -1);  // typmod
  protocol::put_i16(out, 0);   // text
  protocol::end_message(out, at);
}

}  // namespace

PeekLocal peek_local_request(std::span<const std::byte> in, const ClientStatements& statements, LocalRequest& out) {
  protocol::FrameHeader h;
  const auto status = protocol::peek_header(in, h, UINT32_MAX);
  if (status != protocol::FrameStatus::Ready) return PeekLocal::No;
  if (h.tag == tag(FrontendTag::Query)) {
    if (h.total_size() > kLocalRequestMaxBytes) return PeekLocal::No;
    if (in.size() < h.total_size()) return PeekLocal::NeedMore;
    std::string_view sql;
    if (!protocol::parse_query(in.subspan(5, h.body_size()), sql)) return PeekLocal::No;
    out = LocalRequest{};
    out.sql = sql;
    out.bytes = h.total_size();
    return PeekLocal::Found;
  }
  if (h.tag == tag(FrontendTag::Parse) || h.tag == tag(FrontendTag::Bind)) return peek_extended(in, statements, out);
  return PeekLocal::No;
}

bool may_be_local(std::string_view sql) {
  static constexpr std::array<std::string_view, 12> kFirstWords = {
      "begin", "start", "commit", "end", "rollback", "abort", "discard", "reset", "deallocate", "unlisten", "close", "set"};
  // These statements are short; a long text (classified once elsewhere, and perhaps not
  // cached) is not worth parsing again for them.
  if (sql.size() > kLocalSqlMaxBytes) return false;
  const std::string_view s = trim(sql);
  if (s.empty() || s.front() == ';' || s.starts_with("--") || s.starts_with("/*")) return true;
  std::size_t n = 0;
  while (n < s.size() && ((s[n] | 0x20) >= 'a' && (s[n] | 0x20) <= 'z')) ++n;
  for (std::string_view w : kFirstWords)
    if (iequals(s.substr(0, n), w)) return true;
  return false;
}

bool is_ping(std::string_view sql) {
  std::string_view s = trim(sql);
  if (s.ends_with(';')) s = trim(s.substr(0, s.size() - 1));
  return iequals(s, "select 1");
}

std::string_view local_command_tag(sql::LocalStatement s) {
  using sql::LocalStatement;
  switch (s) {
    case LocalStatement::Begin: return "BEGIN";
    case LocalStatement::StartTransaction: return "START TRANSACTION";
    case LocalStatement::Commit: return "COMMIT";
    case LocalStatement::Rollback: return "ROLLBACK";
    case LocalStatement::DiscardAll: return "DISCARD ALL";
    case LocalStatement::ResetAll: return "RESET";
    case LocalStatement::DeallocateAll: return "DEALLOCATE ALL";
    case LocalStatement::UnlistenAll: return "UNLISTEN";
    case LocalStatement::CloseAll: return "CLOSE CURSOR ALL";
    case LocalStatement::Set: return "SET";
    case LocalStatement::Reset: return "RESET";
    case LocalStatement::Empty:
    case LocalStatement::None: break;
  }
  return {};
}

void append_local_reply(std::vector<std::byte>& out, const LocalRequest& request, const LocalReply& reply) {
  if (request.parse) protocol::append_parse_complete(out);
  if (request.extended) protocol::append_bind_complete(out);
  if (request.describe) {
    if (reply.ping_row) {
      append_ping_row_description(out);
    } else {
      protocol::append_no_data(out);
    }
  }
  // A simple Query describes its rows itself; an Execute only after a Describe did.
  if (reply.ping_row && !request.extended) append_ping_row_description(out);
  if (reply.ping_row) {
    const std::array<std::optional<std::string_view>, 1> one{std::string_view("1")};
    protocol::append_data_row(out, one);
  }
  if (reply.no_transaction_warning)
    protocol::append_notice_response(
        out, protocol::make_error("WARNING", protocol::sqlstate::kNoActiveSqlTransaction, "there is no transaction in progress"));
  if (reply.command_tag.empty() && !reply.ping_row) {
    protocol::append_empty_query_response(out);
  } else {
    protocol::append_command_complete(out, reply.ping_row ? std::string_view("SELECT 1") : reply.command_tag);
  }
  for (const auto& [name, value] : reply.parameter_status) protocol::append_parameter_status(out, name, value);
  protocol::append_ready_for_query(out, reply.status);
}

}  // namespace pgsidecar::proxy
