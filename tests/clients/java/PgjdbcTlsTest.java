// pgjdbc through pgsidecar over TLS: sslmode=verify-full with sslrootcert (the test CA;
// pgjdbc checks the certificate's chain and the URL's host name), server-side prepared
// statements (prepareThreshold=1) reused from several connections at once, a batch insert
// in a transaction; then logins that must fail: sslmode=disable (pgsidecar requires TLS)
// and a root certificate of another CA.
//
// pgjdbc before 42.7.4 has no channelBinding property and logs in with SCRAM-SHA-256 (the
// n flag) although SCRAM-SHA-256-PLUS is offered: that must be accepted.
//
// Arguments: JDBC_URL USER PASSWORD TABLE CA_FILE OTHER_CA_FILE. Exits non-zero on the
// first failure.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ConcurrentLinkedQueue;

public final class PgjdbcTlsTest {
  private static final int THREADS = 4;
  private static final int EXECUTIONS = 300;
  private static final int BATCH_ROWS = 2_000;

  static void check(boolean condition, String message) {
    if (!condition) throw new AssertionError(message);
  }

  static Properties props(String user, String password, String sslmode, String rootCert) {
    Properties p = new Properties();
    p.setProperty("user", user);
    p.setProperty("password", password);
    p.setProperty("sslmode", sslmode);
    if (rootCert != null) p.setProperty("sslrootcert", rootCert);
    p.setProperty("prepareThreshold", "1");
    p.setProperty("connectTimeout", "30");
    return p;
  }

  static void statements(String url, Properties p, int thread) throws SQLException {
    try (Connection c = DriverManager.getConnection(url, p);
         PreparedStatement ps = c.prepareStatement("SELECT ?::int * 7, repeat('y', ?::int)")) {
      for (int i = 0; i < EXECUTIONS; i++) {
        int n = thread * 10_000 + i;
        ps.setInt(1, n);
        ps.setInt(2, i * 10);
        try (ResultSet rs = ps.executeQuery()) {
          check(rs.next(), "no row");
          check(rs.getInt(1) == n * 7, "thread " + thread + " execution " + i + ": " + rs.getInt(1));
          check(rs.getString(2).length() == i * 10, "thread " + thread + " execution " + i + ": wrong text");
        }
      }
    }
  }

  static void refused(String url, Properties p, String expected, String what) {
    try {
      DriverManager.getConnection(url, p).close();
    } catch (SQLException e) {
      StringBuilder all = new StringBuilder();
      for (Throwable t = e; t != null; t = t.getCause()) all.append(t).append(" / ");
      check(all.toString().contains(expected), what + ": unexpected error " + all);
      return;
    }
    throw new AssertionError(what + ": the login succeeded");
  }

  public static void main(String[] args) throws Exception {
    String url = args[0];
    String user = args[1];
    String password = args[2];
    String table = args[3];
    String ca = args[4];
    String otherCa = args[5];
    Properties verified = props(user, password, "verify-full", ca);

    ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < THREADS; t++) {
      final int thread = t;
      Thread th = new Thread(() -> {
        try {
          statements(url, verified, thread);
        } catch (Throwable e) {
          failures.add(e);
        }
      });
      th.start();
      threads.add(th);
    }
    for (Thread th : threads) th.join();
    if (!failures.isEmpty()) {
      Throwable first = failures.peek();
      throw new AssertionError(failures.size() + " of " + THREADS + " connections failed: " + first, first);
    }
    System.out.println("pgjdbc: verify-full, " + THREADS + " connections x " + EXECUTIONS + " prepared executions");

    try (Connection c = DriverManager.getConnection(url, verified)) {
      try (Statement s = c.createStatement()) {
        s.execute("CREATE TABLE " + table + " (id int PRIMARY KEY, v text)");
      }
      try {
        c.setAutoCommit(false);
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + table + " VALUES (?, ?)")) {
          for (int i = 0; i < BATCH_ROWS; i++) {
            ps.setInt(1, i);
            ps.setString(2, "row " + i);
            ps.addBatch();
          }
          ps.executeBatch();
        }
        c.commit();
        c.setAutoCommit(true);
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT count(*) FROM " + table)) {
          check(rs.next() && rs.getInt(1) == BATCH_ROWS, "the batch's rows are not all there");
        }
      } finally {
        c.setAutoCommit(true);
        try (Statement s = c.createStatement()) {
          s.execute("DROP TABLE IF EXISTS " + table);
        }
      }
    }
    System.out.println("pgjdbc: a " + BATCH_ROWS + "-row batch in a transaction over TLS");

    refused(url, props(user, password, "disable", null), "requires TLS", "a plain login");
    refused(url, props(user, password, "verify-full", otherCa), "PKIX", "a certificate checked against another CA");
    System.out.println("pgjdbc: a plain login and another CA refused");
  }
}
