// libFuzzer target for the read-only statement classifier: any bytes as a Query string.
// Checks that nothing crashes, that the cache agrees with a fresh classification, and that
// the verdict cannot be turned into Read by text the server would never see.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sql/classify.h"
#include "sql/classify_cache.h"
#include "sql/classify_quick.h"

using pgsidecar::sql::Classification;
using pgsidecar::sql::ClassificationCache;
using pgsidecar::sql::classify_sql;
using pgsidecar::sql::StatementKind;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view sql(reinterpret_cast<const char*>(data), size);
  const Classification direct = classify_sql(sql);
  if (direct.reason.empty()) std::abort();
  // The session looks for set_config with may_set_session_config() before asking the
  // classifier: a call it would miss must never be found.
  if (direct.sets_session_config && !pgsidecar::sql::may_set_session_config(sql)) std::abort();

  // Small, so eviction runs often across inputs.
  static ClassificationCache cache(8, 256);
  if (!(cache.classify(sql) == direct)) std::abort();
  if (!(cache.classify(sql) == direct)) std::abort();  // a hit when kept

  // Text with a NUL in it is never Read, whatever surrounds the NUL.
  std::string with_nul(sql);
  with_nul += '\0';
  with_nul += "select 1";
  if (classify_sql(with_nul).kind != StatementKind::Write) std::abort();

  // A Read string followed by a data-modifying statement is a Write. The newline ends a
  // trailing -- comment; checking `sql` + "\n;" first skips inputs that end inside a
  // string or block comment, which would swallow the suffix.
  if (direct.kind == StatementKind::Read &&
      classify_sql(std::string(sql) + "\n;").kind == StatementKind::Read) {
    if (classify_sql(std::string(sql) + "\n;delete from t").kind != StatementKind::Write)
      std::abort();
  }
  return 0;
}
