#include "sql/classify_quick.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace pgsidecar::sql {
namespace {

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$'; }

bool iequals(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != lower[i]) return false;
  return true;
}

// Statements that write whatever follows their first keyword (or that the router sends to
// the primary anyway).
constexpr std::array<std::string_view, 30> kWriteKeywords = {
    "insert", "update", "delete", "merge", "create", "alter", "drop", "truncate", "grant", "revoke",
    "copy", "call", "do", "vacuum", "analyze", "cluster", "reindex", "lock", "listen", "notify",
    "unlisten", "prepare", "execute", "deallocate", "discard", "set", "reset", "comment", "refresh", "load"};

// Words that make a SELECT need the parser: locking clauses, INTO, and set operations or
// keywords that could hide one (kept short: anything else unusual has a parenthesis).
constexpr std::array<std::string_view, 3> kSelectRisky = {"for", "into", "with"};

// Skips white space and comments; false on an unterminated comment.
bool skip_space(std::string_view s, std::size_t& i) {
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      int depth = 1;  // PostgreSQL's block comments nest
      i += 2;
      while (i < s.size() && depth > 0) {
        if (s[i] == '/' && i + 1 < s.size() && s[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (s[i] == '*' && i + 1 < s.size() && s[i + 1] == '/') {
          --depth;
          i += 2;
        } else {
          ++i;
        }
      }
      if (depth > 0) return false;
    } else {
      return true;
    }
  }
  return true;
}

// Whether `s` holds `lower` at `at`, ignoring ASCII case.
bool holds_at(std::string_view s, std::size_t at, std::string_view lower) {
  return at + lower.size() <= s.size() && iequals(s.substr(at, lower.size()), lower);
}

}  // namespace

// DO [LANGUAGE name] 'code': the word, then a string or LANGUAGE. (ON CONFLICT DO
// NOTHING / DO UPDATE are followed by a word.)
bool do_statement_at(std::string_view sql, std::size_t i) {
  if (!holds_at(sql, i, "do") || (i > 0 && ident_char(sql[i - 1]))) return false;
  std::size_t j = i + 2;
  if (j < sql.size() && ident_char(sql[j])) return false;
  if (!skip_space(sql, j) || j >= sql.size()) return false;
  return sql[j] == '$' || sql[j] == '\'' || holds_at(sql, j, "e'") || holds_at(sql, j, "u&'") ||
         holds_at(sql, j, "language");
}

bool may_set_session_config(std::string_view sql) {
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = static_cast<char>(sql[i] | 0x20);
    if (c == 's' && holds_at(sql, i, "set_config")) return true;
    if (c == 'u' && holds_at(sql, i, "u&\"")) return true;
    if (c == 'd' && i + 1 < sql.size() && (sql[i + 1] | 0x20) == 'o' && do_statement_at(sql, i)) return true;
  }
  return false;
}

bool plpgsql_may_set(std::string_view body) {
  // What may come right before a statement's first word: nothing, ';', a quote, or a
  // block keyword.
  constexpr std::array<std::string_view, 7> kBefore = {"begin", "then", "else", "loop", "declare", "end", "exception"};
  std::string_view previous;  // the word before ("" after a sign, or at the start)
  char previous_sign = ';';   // the sign before, when not a word
  for (std::size_t i = 0; i < body.size();) {
    const char c = body[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (ident_start(c)) {
      std::size_t j = i;
      while (j < body.size() && ident_char(body[j])) ++j;
      const std::string_view word = body.substr(i, j - i);
      if (iequals(word, "set_config")) return true;
      if (iequals(word, "set") || iequals(word, "reset")) {
        const bool starts = previous.empty() ? (previous_sign == ';' || previous_sign == '\'')
                                             : std::any_of(kBefore.begin(), kBefore.end(), [&](std::string_view k) {
                                                 return iequals(previous, k);
                                               });
        if (starts) return true;
      }
      previous = word;
      i = j;
      continue;
    }
    previous = {};
    previous_sign = c;
    ++i;
  }
  return false;
}

QuickVerdict quick_classify(std::string_view sql) {
  std::size_t i = 0;
  if (!skip_space(sql, i) || i >= sql.size() || !ident_start(sql[i])) return QuickVerdict::Unsure;
  std::size_t start = i;
  while (i < sql.size() && ident_char(sql[i])) ++i;
  const std::string_view first = sql.substr(start, i - start);
  for (auto kw : kWriteKeywords)
    if (iequals(first, kw)) return QuickVerdict::Write;
  if (!iequals(first, "select")) return QuickVerdict::Unsure;
  bool ended = false;  // saw the terminating ';'
  while (i < sql.size()) {
    if (!skip_space(sql, i)) return QuickVerdict::Unsure;
    if (i >= sql.size()) break;
    const char c = sql[i];
    if (ended) return QuickVerdict::Unsure;  // a second statement
    if (ident_start(c)) {
      start = i;
      while (i < sql.size() && ident_char(sql[i])) ++i;
      const std::string_view word = sql.substr(start, i - start);
      if (i < sql.size() && sql[i] == '\'') return QuickVerdict::Unsure;  // E'..', U&'..', typed literals
      for (auto kw : kSelectRisky)
        if (iequals(word, kw)) return QuickVerdict::Unsure;
    } else if (c == '\'') {  // standard string literal; '' is a quote
      for (++i;; ++i) {
        if (i >= sql.size()) return QuickVerdict::Unsure;
        if (sql[i] == '\'') {
          if (i + 1 < sql.size() && sql[i + 1] == '\'') {
            ++i;
            continue;
          }
          ++i;
          break;
        }
      }
    } else if (c == '"') {  // quoted identifier
      for (++i;; ++i) {
        if (i >= sql.size()) return QuickVerdict::Unsure;
        if (sql[i] == '"') {
          if (i + 1 < sql.size() && sql[i + 1] == '"') {
            ++i;
            continue;
          }
          ++i;
          break;
        }
      }
    } else if (c == ';') {
      ended = true;
      ++i;
    } else if (c == '(' || c == '$' || c == '\\') {
      // Calls, subqueries, dollar quotes, psql-style escapes: the parser decides.
      if (c == '$' && i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
        i += 2;  // a $1 parameter
        while (i < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i]))) ++i;
        continue;
      }
      return QuickVerdict::Unsure;
    } else {
      ++i;  // numbers, operators, commas, dots, ...
    }
  }
  return QuickVerdict::Read;
}

}  // namespace pgsidecar::sql
