// pgjdbc through pgsidecar: server-side prepared statements (prepareThreshold=1) reused
// 1,000 times per connection across autocommit transactions, from several connections at
// once whose statements share names (pgjdbc calls them S_1, S_2, ... per connection) but
// not texts; then a 10,000-row addBatch/executeBatch insert and a count.
//
// Arguments: JDBC_URL USER PASSWORD TABLE. Exits non-zero on the first failure.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;

public final class PgjdbcClientTest {
  private static final int EXECUTIONS = 1000;
  private static final int THREADS = 6;
  private static final int BATCH_ROWS = 10_000;

  private static String url;
  private static Properties props;

  static void check(boolean condition, String message) {
    if (!condition) throw new AssertionError(message);
  }

  static Connection connect() throws SQLException {
    return DriverManager.getConnection(url, props);
  }

  // One connection: three statements prepared in a thread-specific order, each executed
  // EXECUTIONS times in autocommit mode, the results checked every time. Returns the
  // server processes it ran on.
  static Set<Integer> reuseStatements(int thread) throws SQLException {
    Set<Integer> backends = new HashSet<>();
    try (Connection c = connect()) {
      check(c.getAutoCommit(), "a new connection is not in autocommit mode");
      String[] texts = {
        "SELECT ?::int * 3, pg_backend_pid()",
        "SELECT ?::text || '/' || ?::int",
        "SELECT count(*) FROM generate_series(1, ?::int)",
      };
      PreparedStatement[] ps = new PreparedStatement[texts.length];
      // Rotate the order: pgjdbc's S_1 is a different statement on different connections.
      for (int k = 0; k < texts.length; k++) {
        int which = (k + thread) % texts.length;
        ps[which] = c.prepareStatement(texts[which]);
      }
      for (int i = 0; i < EXECUTIONS; i++) {
        int n = thread * 100_000 + i;
        ps[0].setInt(1, n);
        try (ResultSet rs = ps[0].executeQuery()) {
          check(rs.next(), "no row from statement 0");
          check(rs.getInt(1) == n * 3, "thread " + thread + " execution " + i + ": " + rs.getInt(1) + " != " + n * 3);
          backends.add(rs.getInt(2));
        }
        ps[1].setString(1, "t" + thread);
        ps[1].setInt(2, i);
        try (ResultSet rs = ps[1].executeQuery()) {
          check(rs.next(), "no row from statement 1");
          String want = "t" + thread + "/" + i;
          check(want.equals(rs.getString(1)), "thread " + thread + " execution " + i + ": " + rs.getString(1) + " != " + want);
        }
        int rows = i % 17 + 1;
        ps[2].setInt(1, rows);
        try (ResultSet rs = ps[2].executeQuery()) {
          check(rs.next(), "no row from statement 2");
          check(rs.getLong(1) == rows, "thread " + thread + " execution " + i + ": count " + rs.getLong(1) + " != " + rows);
        }
        // Now and then an explicit transaction around the same statements.
        if (i % 100 == 99) {
          c.setAutoCommit(false);
          ps[0].setInt(1, -i);
          try (ResultSet rs = ps[0].executeQuery()) {
            check(rs.next() && rs.getInt(1) == -3 * i, "statement 0 inside a transaction");
          }
          c.commit();
          c.setAutoCommit(true);
        }
      }
    }
    return backends;
  }

  static void batchInsert(String table) throws SQLException {
    try (Connection c = connect()) {
      try (Statement s = c.createStatement()) {
        s.execute("CREATE TABLE " + table + " (id int PRIMARY KEY, label text NOT NULL, amount numeric NOT NULL)");
      }
      try {
        long started = System.nanoTime();
        // Autocommit batch: one implicit transaction per executeBatch round trip.
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + table + " VALUES (?, ?, ?)")) {
          for (int i = 0; i < BATCH_ROWS / 2; i++) {
            ps.setInt(1, i);
            ps.setString(2, "row " + i);
            ps.setBigDecimal(3, java.math.BigDecimal.valueOf(i, 2));
            ps.addBatch();
          }
          int[] counts = ps.executeBatch();
          check(counts.length == BATCH_ROWS / 2, "executeBatch returned " + counts.length + " counts");
          for (int n : counts) check(n == 1 || n == Statement.SUCCESS_NO_INFO, "a batch entry reported " + n);
        }
        // Batch inside an explicit transaction, then commit.
        c.setAutoCommit(false);
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + table + " VALUES (?, ?, ?)")) {
          for (int i = BATCH_ROWS / 2; i < BATCH_ROWS; i++) {
            ps.setInt(1, i);
            ps.setString(2, "row " + i);
            ps.setBigDecimal(3, java.math.BigDecimal.valueOf(i, 2));
            ps.addBatch();
          }
          ps.executeBatch();
        }
        c.commit();
        // A batch that fails on a duplicate key in the middle rolls back as a whole.
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + table + " VALUES (?, ?, ?)")) {
          for (int i = 0; i < 100; i++) {
            ps.setInt(1, i == 50 ? 7 : BATCH_ROWS + i);
            ps.setString(2, "doomed");
            ps.setBigDecimal(3, java.math.BigDecimal.ONE);
            ps.addBatch();
          }
          try {
            ps.executeBatch();
            throw new AssertionError("a batch with a duplicate key succeeded");
          } catch (java.sql.BatchUpdateException e) {
            check("23505".equals(e.getSQLState()), "the failed batch's SQLSTATE is " + e.getSQLState());
          }
        }
        c.rollback();
        c.setAutoCommit(true);
        try (Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SELECT count(*), sum(id), count(DISTINCT label), sum(amount) FROM " + table)) {
          check(rs.next(), "no row from the count");
          long n = rs.getLong(1);
          check(n == BATCH_ROWS, "after the batches the table has " + n + " rows, expected " + BATCH_ROWS);
          check(rs.getLong(2) == (long) BATCH_ROWS * (BATCH_ROWS - 1) / 2, "sum of ids " + rs.getLong(2));
          check(rs.getLong(3) == BATCH_ROWS, "distinct labels " + rs.getLong(3));
          java.math.BigDecimal want = java.math.BigDecimal.valueOf((long) BATCH_ROWS * (BATCH_ROWS - 1) / 2, 2);
          check(rs.getBigDecimal(4).compareTo(want) == 0, "sum of amounts " + rs.getBigDecimal(4) + " != " + want);
        }
        System.out.printf("pgjdbc: %d-row batch insert checked in %d ms%n", BATCH_ROWS,
            (System.nanoTime() - started) / 1_000_000);
      } finally {
        c.setAutoCommit(true);
        try (Statement s = c.createStatement()) {
          s.execute("DROP TABLE IF EXISTS " + table);
        }
      }
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: PgjdbcClientTest JDBC_URL USER PASSWORD TABLE MODE");
      System.exit(2);
    }
    url = args[0];
    props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    props.setProperty("prepareThreshold", "1");
    props.setProperty("sslmode", "disable");
    props.setProperty("connectTimeout", "10");
    String table = args[3];
    boolean sessionMode = args[4].equals("session");

    long started = System.nanoTime();
    ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
    List<Set<Integer>> backends = new ArrayList<>();
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < THREADS; t++) {
      final int thread = t;
      final Set<Integer> mine = new HashSet<>();
      backends.add(mine);
      Thread th = new Thread(() -> {
        try {
          mine.addAll(reuseStatements(thread));
        } catch (Throwable e) {
          failures.add(e);
        }
      });
      threads.add(th);
      th.start();
    }
    for (Thread th : threads) th.join(120_000);
    for (Thread th : threads) check(!th.isAlive(), "a statement thread did not finish within 120 s");
    if (!failures.isEmpty()) {
      for (Throwable e : failures) e.printStackTrace();
      throw new AssertionError(failures.size() + " of " + THREADS + " connections failed");
    }
    int maxBackends = 0;
    for (Set<Integer> b : backends) {
      maxBackends = Math.max(maxBackends, b.size());
      if (sessionMode) check(b.size() == 1, "a session-mode client ran on " + b.size() + " server processes");
    }
    if (!sessionMode) {
      check(maxBackends > 1, "no connection ever changed server: the test did not exercise re-preparing");
    }
    System.out.printf("pgjdbc: %d connections x %d executions of 3 prepared statements checked in %d ms "
        + "(up to %d server processes per connection)%n",
        THREADS, EXECUTIONS, (System.nanoTime() - started) / 1_000_000, maxBackends);

    batchInsert(table);
  }
}
