// pgjdbc through pgsidecar in transaction mode: session state kept, pinned or refused
// (docs/pooling.md), the checks of harness.check_states for pgjdbc. test_session_state_pgjdbc.py
// starts the proxy, keeps its pool of 4 busy with 40 churning clients, and runs this once
// per policy:
//
//   pin      each state made, used over 30 transactions, never seen by an observer,
//            released by its documented statement (SHOW CLIENTS' pinned column, admin console)
//   refuse   each pinning statement answers 0A000, in a transaction too (pgjdbc's own
//            BEGIN, autocommit off); the connection goes on
//   reset    RESET and RESET ALL return to the startup value (options=-c ...)
//
// pgjdbc sends every statement with the extended protocol; with prepareThreshold=1 each one
// is a named server statement (S_1, S_2, ...) from its first use.
//
// Arguments: POLICY HOST PORT DATABASE USER PASSWORD. Exits non-zero on the first failure.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Properties;
import java.util.Set;
import java.util.function.IntFunction;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

public final class PgjdbcSessionStateTest {
  private static final int USES = 30;
  private static final String STARTUP_TIMEOUT = "4321ms";

  private static String host;
  private static String port;
  private static String database;
  private static String user;
  private static String password;

  // A statement and its parameters.
  record Sql(String text, Object... params) {}

  // Made, used (and what use i answers), what an observer runs and must get (an SQLSTATE or a value; null for the
  // LISTEN state, whose observer notifies instead), released.
  record State(String name, Sql make, Sql use, IntFunction<Object> answer, Sql observe, Object unseen, Sql release, boolean pins) {}

  private static final Sql ONE = new Sql("SELECT ?::int", 1);
  private static final List<State> STATES = List.of(
      new State("session SET", new Sql("SET statement_timeout = '4321ms'"), new Sql("SELECT current_setting(?)", "statement_timeout"),
                i -> STARTUP_TIMEOUT, new Sql("SHOW statement_timeout"), "0", new Sql("RESET statement_timeout"), false),
      new State("set_config of a parameter", new Sql("SELECT set_config('app.tenant', ?, false)", "acme"),
                new Sql("SELECT current_setting(?)", "app.tenant"), i -> "acme",
                new Sql("SELECT coalesce(current_setting('app.tenant', true), '')"), "", new Sql("RESET app.tenant"), false),
      new State("temp table", new Sql("CREATE TEMP TABLE ss_t AS SELECT 1 AS v"), new Sql("SELECT count(*) FROM ss_t WHERE v = ?", 1),
                i -> 1L, new Sql("SELECT count(*) FROM ss_t"), "42P01", new Sql("DISCARD TEMP"), true),
      new State("advisory lock", new Sql("SELECT pg_advisory_lock(?)", 4242L), ONE, i -> 1,
                new Sql("SELECT pg_try_advisory_xact_lock(?)", 4242L), Boolean.FALSE, new Sql("SELECT pg_advisory_unlock(?)", 4242L), true),
      new State("LISTEN", new Sql("LISTEN ss_ch"), ONE, i -> 1, null, null, new Sql("UNLISTEN *"), true),
      new State("SQL PREPARE", new Sql("PREPARE ss_p AS SELECT 7"), new Sql("EXECUTE ss_p"), i -> 7,
                new Sql("EXECUTE ss_p"), "26000", new Sql("DEALLOCATE ss_p"), true),
      new State("WITH HOLD cursor", new Sql("DECLARE ss_c CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, ?) g", 100),
                new Sql("FETCH 1 FROM ss_c"), i -> i + 1, new Sql("FETCH 1 FROM ss_c"), "34000", new Sql("CLOSE ss_c"), true));

  static void check(boolean condition, String message) {
    if (!condition) throw new AssertionError(message);
  }

  static void checkEqual(Object actual, Object expected, String what) {
    if (!Objects.equals(actual, expected)) throw new AssertionError(what + ": expected " + expected + ", got " + actual);
  }

  static Connection connect(String db, String... extra) throws SQLException {
    Properties props = new Properties();
    props.setProperty("user", user);
    props.setProperty("password", password);
    props.setProperty("prepareThreshold", "1");
    props.setProperty("sslmode", "disable");
    props.setProperty("connectTimeout", "10");
    for (int i = 0; i + 1 < extra.length; i += 2) props.setProperty(extra[i], extra[i + 1]);
    return DriverManager.getConnection("jdbc:postgresql://" + host + ":" + port + "/" + db, props);
  }

  // The first column of the first row; null without rows or without a result.
  static Object run(Connection c, Sql sql) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(sql.text())) {
      for (int i = 0; i < sql.params().length; i++) ps.setObject(i + 1, sql.params()[i]);
      if (!ps.execute()) return null;
      try (ResultSet rs = ps.getResultSet()) {
        return rs.next() ? rs.getObject(1) : null;
      }
    }
  }

  static String sqlstate(Connection c, Sql sql) throws SQLException {
    try {
      run(c, sql);
    } catch (SQLException e) {
      if (e.getSQLState() == null) throw e;
      return e.getSQLState();
    }
    return null;
  }

  static List<String> pinnedReasons(Connection admin) throws SQLException {
    List<String> reasons = new ArrayList<>();
    try (var st = admin.createStatement(); ResultSet rs = st.executeQuery("SHOW CLIENTS")) {
      int column = rs.findColumn("pinned");
      while (rs.next()) {
        String v = rs.getString(column);
        if (v != null && !v.isEmpty()) reasons.add(v);
      }
    }
    return reasons;
  }

  static void waitNotification(Connection c, String payload) throws SQLException {
    PGConnection pg = c.unwrap(PGConnection.class);
    List<String> received = new ArrayList<>();
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (!received.contains(payload)) {
      check(System.nanoTime() < deadline, "LISTEN: notification " + payload + " never arrived (received " + received + ")");
      PGNotification[] got = pg.getNotifications(100);  // reads the socket while idle
      if (got != null) for (PGNotification n : got) received.add(n.getParameter());
      if (!received.contains(payload)) run(c, ONE);
    }
  }

  static void pin() throws SQLException {
    try (Connection client = connect(database); Connection observer = connect(database);
         // The admin console takes simple queries only, and no SET: with a minimum server
         // version pgjdbc sends extra_float_digits in the startup packet instead.
         Connection admin = connect("pgsidecar", "preferQueryMode", "simple", "assumeMinServerVersion", "9.0")) {
      for (State s : STATES) {
        run(client, s.make());
        Set<Object> backends = new HashSet<>();
        for (int i = 0; i < USES; i++) {
          checkEqual(run(client, s.use()), s.answer().apply(i), s.name() + ": use " + i);
          backends.add(run(client, new Sql("SELECT pg_backend_pid()")));
          if (s.observe() == null) {
            run(observer, new Sql("SELECT pg_notify(?, ?)", "ss_ch", String.valueOf(i)));
            waitNotification(client, String.valueOf(i));
          } else {
            String state = sqlstate(observer, s.observe());
            Object seen = state != null ? state : run(observer, s.observe());
            checkEqual(seen, s.unseen(), s.name() + ": what the observer saw (" + s.observe().text() + ")");
          }
        }
        if (!s.pins()) check(backends.size() > 1, s.name() + ": " + USES + " transactions all ran on one server");
        if (s.pins()) checkEqual(backends.size(), 1, s.name() + ": servers used while pinned");
        checkEqual(pinnedReasons(admin), s.pins() ? List.of(s.name()) : List.of(), s.name() + ": SHOW CLIENTS before release");
        run(client, s.release());
        checkEqual(pinnedReasons(admin), List.of(), s.name() + ": SHOW CLIENTS after " + s.release().text());
        System.out.println("pin: " + s.name() + ": kept over " + USES + " transactions on " + backends.size()
                           + " server(s), released by " + s.release().text());
      }
    }
  }

  static void refuse() throws SQLException {
    try (Connection client = connect(database)) {
      for (State s : STATES) {
        if (!s.pins()) continue;
        checkEqual(sqlstate(client, s.make()), "0A000", "refuse: " + s.make().text());
        checkEqual(run(client, new Sql("SELECT ?::int", 2)), 2, "refuse: the connection after " + s.name());
        client.setAutoCommit(false);  // pgjdbc sends BEGIN in the same request as the statement
        checkEqual(sqlstate(client, s.make()), "0A000", "refuse in a transaction: " + s.make().text());
        checkEqual(sqlstate(client, new Sql("SELECT 1")), "25P02", "refuse: the transaction after " + s.name());
        client.rollback();
        client.setAutoCommit(true);
        checkEqual(run(client, new Sql("SELECT ?::int", 3)), 3, "refuse: the connection after ROLLBACK");
      }
    }
    System.out.println("refuse: every pinning statement answered 0A000, in a transaction too; the connection went on");
  }

  static void reset() throws SQLException {
    try (Connection client = connect(database, "options", "-c statement_timeout=4321")) {
      for (String statement : new String[] {"RESET statement_timeout", "RESET ALL"}) {
        run(client, new Sql("SET statement_timeout = 5"));
        run(client, new Sql(statement));
        for (int i = 0; i < 10; i++)
          checkEqual(run(client, new Sql("SHOW statement_timeout")), STARTUP_TIMEOUT, "after " + statement);
      }
    }
    System.out.println("reset: RESET and RESET ALL returned to the startup value");
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println("usage: PgjdbcSessionStateTest pin|refuse|reset HOST PORT DATABASE USER PASSWORD");
      System.exit(2);
    }
    host = args[1];
    port = args[2];
    database = args[3];
    user = args[4];
    password = args[5];
    switch (args[0]) {
      case "pin" -> pin();
      case "refuse" -> refuse();
      case "reset" -> reset();
      default -> {
        System.err.println("unknown policy " + args[0]);
        System.exit(2);
      }
    }
  }
}
