// Log values: client-supplied text must never end a line or forge a key.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "proxy/core/log.h"

using namespace pgsidecar::proxy;

namespace {

std::string logged(std::string_view value) {
  std::string line;
  append_log_value(line, value);
  return line;
}

}  // namespace

TEST_CASE("a plain word is written as it is") {
  CHECK(logged("app") == "app");
  CHECK(logged("server_lost") == "server_lost");
}

TEST_CASE("empty values and values with spaces, equals signs or quotes are quoted") {
  CHECK(logged("") == "\"\"");
  CHECK(logged("connection reset") == "\"connection reset\"");
  CHECK(logged("a=b") == "\"a=b\"");
  CHECK(logged("say \"hi\"") == "\"say \\\"hi\\\"\"");
  CHECK(logged("back\\slash") == "\"back\\\\slash\"");
}

TEST_CASE("line breaks and tabs are escaped, so a value never ends the line") {
  CHECK(logged("a\nlevel=error event=forged") == "\"a\\nlevel=error event=forged\"");
  CHECK(logged("a\rb") == "\"a\\rb\"");
  CHECK(logged("a\tb") == "\"a\\tb\"");
}

TEST_CASE("other control bytes and DEL are written as \\x escapes") {
  CHECK(logged("\x1b[31mred") == "\"\\x1b[31mred\"");
  CHECK(logged(std::string_view("a\0b", 3)) == "\"a\\x00b\"");
  CHECK(logged("\x7f") == "\"\\x7f\"");
  CHECK(logged("\x01\x1f") == "\"\\x01\\x1f\"");
}

TEST_CASE("no escaped value holds a raw control byte") {
  std::string every;
  for (int c = 0; c < 256; ++c) every.push_back(static_cast<char>(c));
  const std::string line = logged(every);
  for (char c : line) {
    CAPTURE(static_cast<int>(static_cast<unsigned char>(c)));
    CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
  }
  CHECK(line.front() == '"');
  CHECK(line.back() == '"');
}

TEST_CASE("bytes above 0x7f pass through: UTF-8 text stays readable") {
  CHECK(logged("caf\xc3\xa9") == "caf\xc3\xa9");
}
