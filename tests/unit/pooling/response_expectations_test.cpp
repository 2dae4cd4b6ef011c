// ResponseExpectations: the replies a server still owes, in order, and what an
// ErrorResponse or a ReadyForQuery does to them.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/pooling/response_expectations.h"

using pgsidecar::proxy::ResponseExpectations;

namespace {

// Records the statements of skipped messages, in order: "1:name" for a Parse, "3:name"
// for a Close.
struct Skipped {
  std::vector<std::string> names;
  auto sink() {
    return [this](const ResponseExpectations::Entry& e) { names.push_back(std::string(1, e.reply) + ":" + e.statement); };
  }
};

// The queue's replies as a string ("13Z"), popping them all.
std::string drain(ResponseExpectations& e) {
  std::string replies;
  while (!e.empty()) replies.push_back(e.pop().reply);
  return replies;
}

}  // namespace

TEST_CASE("an empty ResponseExpectations owes nothing") {
  ResponseExpectations e;
  CHECK(e.empty());
  CHECK(e.front() == nullptr);
  CHECK(e.pending_ready() == 0);
  CHECK_FALSE(e.swallowing());
}

TEST_CASE("replies are expected in the order their messages were sent") {
  ResponseExpectations e;
  e.expect('1', false, "s1");
  e.expect('3', true);
  e.expect('Z', false);
  e.expect('1', true, "s2");
  e.expect('Z', true);
  CHECK_FALSE(e.empty());

  REQUIRE(e.front() != nullptr);
  CHECK(e.front()->reply == '1');
  CHECK(e.front()->statement == "s1");
  ResponseExpectations::Entry parse = e.pop();
  CHECK(parse.reply == '1');
  CHECK_FALSE(parse.swallow);
  CHECK(parse.statement == "s1");

  ResponseExpectations::Entry close = e.pop();
  CHECK(close.reply == '3');
  CHECK(close.swallow);
  CHECK(close.statement.empty());

  CHECK(e.pop().reply == 'Z');
  ResponseExpectations::Entry reparse = e.pop();
  CHECK(reparse.reply == '1');
  CHECK(reparse.swallow);
  CHECK(reparse.statement == "s2");
  CHECK(drain(e) == "Z");
  CHECK(e.empty());
}

TEST_CASE("FIFO order holds over many pipelined exchanges") {
  ResponseExpectations e;
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    e.expect('1', false, "s" + std::to_string(i));
    e.expect('Z', false);
    expected += "1Z";
    if (i % 3 == 0) {  // the server answers some while more are sent
      CHECK(e.pop().reply == '1');
      CHECK(e.pop().reply == 'Z');
      expected.erase(0, 2);
    }
  }
  CHECK(drain(e) == expected);
}

TEST_CASE("pending_ready counts the ReadyForQuery entries still owed") {
  ResponseExpectations e;
  e.expect('1', false, "s1");
  CHECK(e.pending_ready() == 0);
  e.expect('Z', false);
  e.expect('3', false);
  e.expect('Z', true);
  e.expect('Z', false);
  CHECK(e.pending_ready() == 3);
  e.pop();  // '1'
  CHECK(e.pending_ready() == 3);
  e.pop();  // 'Z'
  CHECK(e.pending_ready() == 2);
  Skipped dropped;
  e.on_error(dropped.sink());  // drops the '3'
  CHECK(e.pending_ready() == 2);
  CHECK(e.on_ready(dropped.sink()));
  CHECK(e.pending_ready() == 1);
  e.clear();
  CHECK(e.pending_ready() == 0);
  CHECK(e.empty());
}

TEST_CASE("an error drops Parse and Close entries up to the next ReadyForQuery and reports each") {
  ResponseExpectations e;
  e.expect('1', false, "s1");
  e.expect('1', false);  // the unnamed statement
  e.expect('3', false, "c1");  // a skipped Close leaves its statement in place
  e.expect('3', false);  // a portal's Close
  e.expect('1', true, "s2");  // an injected re-Parse is reported too
  e.expect('Z', false);
  e.expect('1', false, "s3");  // after the Sync: the server handles it
  e.expect('Z', false);

  Skipped dropped;
  e.on_error(dropped.sink());
  CHECK(dropped.names == std::vector<std::string>{"1:s1", "1:", "3:c1", "3:", "1:s2"});
  REQUIRE(e.front() != nullptr);
  CHECK(e.front()->reply == 'Z');
  CHECK(e.pending_ready() == 2);
  CHECK(drain(e) == "Z1Z");
}

TEST_CASE("an error with a ReadyForQuery at the front drops nothing") {
  ResponseExpectations e;
  e.expect('Z', false);
  e.expect('1', false, "s1");
  Skipped dropped;
  e.on_error(dropped.sink());
  CHECK(dropped.names.empty());
  CHECK(drain(e) == "Z1");
}

TEST_CASE("an error with no ReadyForQuery expected drops every Parse and Close") {
  ResponseExpectations e;
  e.expect('1', false, "a");
  e.expect('3', false);
  e.expect('1', false, "b");
  Skipped dropped;
  e.on_error(dropped.sink());
  CHECK(dropped.names == std::vector<std::string>{"1:a", "3:", "1:b"});
  CHECK(e.empty());
}

TEST_CASE("on_ready pops its ReadyForQuery and returns whether it was injected") {
  ResponseExpectations e;
  e.expect('Z', true);   // settings sync pgsidecar sent
  e.expect('Z', false);  // the client's query
  Skipped dropped;
  CHECK(e.on_ready(dropped.sink()));
  CHECK(e.pending_ready() == 1);
  CHECK_FALSE(e.on_ready(dropped.sink()));
  CHECK(e.pending_ready() == 0);
  CHECK(e.empty());
  CHECK(dropped.names.empty());
}

TEST_CASE("on_ready drops the Parse and Close entries the server skipped before its ReadyForQuery") {
  ResponseExpectations e;
  e.expect('1', false, "s1");
  e.expect('3', false);
  e.expect('Z', true);
  e.expect('1', false, "s2");
  e.expect('Z', false);
  Skipped dropped;
  CHECK(e.on_ready(dropped.sink()));  // the 'Z' popped is the injected one
  CHECK(dropped.names == std::vector<std::string>{"1:s1", "3:"});
  CHECK(drain(e) == "1Z");
}

TEST_CASE("on_ready with no ReadyForQuery expected returns false and empties the queue") {
  ResponseExpectations e;
  Skipped dropped;
  CHECK_FALSE(e.on_ready(dropped.sink()));
  e.expect('1', false, "s1");
  CHECK_FALSE(e.on_ready(dropped.sink()));
  CHECK(dropped.names == std::vector<std::string>{"1:s1"});
  CHECK(e.empty());
  CHECK(e.pending_ready() == 0);
}

TEST_CASE("swallowing() holds only while an injected ReadyForQuery is at the front") {
  ResponseExpectations e;
  e.expect('1', true, "s1");  // an injected re-Parse: its reply is dropped on its own
  e.expect('Z', true);
  e.expect('Z', false);
  e.expect('Z', true);
  CHECK_FALSE(e.swallowing());
  e.pop();
  CHECK(e.swallowing());
  e.pop();
  CHECK_FALSE(e.swallowing());
  e.pop();
  CHECK(e.swallowing());
  e.pop();
  CHECK_FALSE(e.swallowing());

  e.expect('3', true);
  CHECK_FALSE(e.swallowing());
}

TEST_CASE("clear forgets every entry") {
  ResponseExpectations e;
  e.expect('1', false, "s1");
  e.expect('Z', true);
  e.clear();
  CHECK(e.empty());
  CHECK(e.front() == nullptr);
  CHECK_FALSE(e.swallowing());
  Skipped dropped;
  e.on_error(dropped.sink());
  CHECK(dropped.names.empty());  // s1 is gone, not reported later
  // Usable again afterwards.
  e.expect('Z', false);
  CHECK(e.pending_ready() == 1);
  CHECK(drain(e) == "Z");
}
