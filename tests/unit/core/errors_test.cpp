// The one table of errors pgsidecar reports: SQLSTATE, severity and message per code.
#include <doctest/doctest.h>

#include "proxy/core/errors.h"

using namespace pgsidecar::proxy;

TEST_CASE("an error takes its SQLSTATE, severity and message from the table") {
  const ProxyError e = make_error(ProxyErrc::WriteWaitExpired, {"app", "250"});
  CHECK(e.sqlstate == "25006");
  CHECK_FALSE(e.fatal());
  CHECK(e.message == "primary for database \"app\" is unavailable: this write waited 250 ms (write_wait) for it to return");
  const auto fields = e.fields();
  CHECK(fields.severity == "ERROR");
  CHECK(fields.sqlstate == "25006");
}

TEST_CASE("login errors are FATAL and others can be made so") {
  CHECK(make_error(ProxyErrc::PasswordFailed, {"bob"}).fatal());
  CHECK(make_error(ProxyErrc::PasswordFailed, {"bob"}).fields().severity == "FATAL");
  ProxyError e = make_error(ProxyErrc::QueryWaitTimeout, {"app", "bob", "5000", "20"});
  CHECK_FALSE(e.fatal());
  CHECK(e.as_fatal().fields().severity == "FATAL");
  CHECK(e.sqlstate == "53300");
}

TEST_CASE("routing failures are connection failures") {
  CHECK(sqlstate_of(ProxyErrc::PrimaryUnavailable) == "08006");
  CHECK(sqlstate_of(ProxyErrc::NoHealthyServer) == "08006");
  CHECK(sqlstate_of(ProxyErrc::NoServerKnown) == "08006");
  CHECK(sqlstate_of(ProxyErrc::SwitchoverPauseExpired) == "57P03");
}

TEST_CASE("missing placeholders stay empty and extra arguments are ignored") {
  CHECK(make_error(ProxyErrc::UnknownDatabase).message == "database \"\" does not exist");
  CHECK(make_error(ProxyErrc::UnknownDatabase, {"a", "b"}).message == "database \"a\" does not exist");
}

TEST_CASE("SQLSTATE classes: connection trouble and server exits") {
  CHECK(classify_sqlstate("08006") == ErrorClass::Connection);
  CHECK(classify_sqlstate("08P01") == ErrorClass::Connection);
  CHECK(classify_sqlstate("57P01") == ErrorClass::ServerExit);
  CHECK(classify_sqlstate("57P03") == ErrorClass::ServerExit);
  CHECK(classify_sqlstate("57014") == ErrorClass::Other);
  CHECK(classify_sqlstate("28P01") == ErrorClass::Other);
  CHECK(is_connection_trouble("57P02"));
  CHECK_FALSE(is_connection_trouble("42601"));
}

TEST_CASE("a failed server login passes the server's own SQLSTATE through only when it names the problem") {
  CHECK(login_failure_sqlstate("28P01") == "28P01");
  CHECK(login_failure_sqlstate("3D000") == "3D000");
  CHECK(login_failure_sqlstate("08004") == "08004");
  CHECK(login_failure_sqlstate("53300") == "08001");
  CHECK(login_failure_sqlstate("") == "08001");
}

TEST_CASE("a login refused for lack of room is told apart from other refusals") {
  CHECK(classify_login_refusal("53300") == LoginRefusal::Full);
  CHECK(classify_login_refusal("57P03") == LoginRefusal::NotNow);
  CHECK(classify_login_refusal("28P01") == LoginRefusal::None);
  CHECK(classify_login_refusal("08006") == LoginRefusal::None);
  CHECK(classify_login_refusal("") == LoginRefusal::None);
}

TEST_CASE("a client that waited out a database refusing connections gets 53300 saying so") {
  const ProxyError e =
      make_error(ProxyErrc::CapacityWaitTimeout, {"app", "too many connections for role \"app\"", "1", "1000"});
  CHECK(e.sqlstate == "53300");
  CHECK_FALSE(e.fatal());
  CHECK(e.message ==
        "the database refused more connections for database \"app\" (too many connections for role \"app\"), and "
        "none of the pool's 1 server connections became free within 1000 ms (query_wait_timeout)");
}

TEST_CASE("a statement the client never prepared is refused with PostgreSQL's own code and text") {
  const ProxyError e = make_error(ProxyErrc::UnknownPreparedStatement, {"s_probe"});
  CHECK(e.sqlstate == "26000");
  CHECK_FALSE(e.fatal());
  CHECK(e.message == "prepared statement \"s_probe\" does not exist");
}
