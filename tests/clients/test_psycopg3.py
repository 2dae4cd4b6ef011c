#!/usr/bin/python3
"""psycopg 3 through pgsidecar: server-side prepared statements under pool churn,
pipeline mode, and COPY in both directions.

psycopg names its prepared statements _pg3_0, _pg3_1, ... per connection, so every
connection here uses the same names for different statements: in transaction mode, a
server that another client prepared _pg3_0 on must never run this client's _pg3_0.

usage: test_psycopg3.py [transaction|session]...   (default: both)
"""

import hashlib
import random
import threading
import time

import psycopg
from psycopg import errors, pq, sql

from harness import Proxy, expect, expect_equal, log, run_modes, unique_name

MAIN_TRANSACTIONS = 500
CHURN_THREADS = 30
COPY_ROWS = 10_000


def connect(dsn, **kwargs):
    kwargs.setdefault("connect_timeout", 10)
    return psycopg.connect(dsn, **kwargs)


# --- prepared statements reused while other connections churn the pool ----------------

def churn(dsn, index, stop, errors_seen, counts):
    """Connects, runs a few short transactions with its own prepared statements, leaves;
    again and again until stop is set."""
    rng = random.Random(index)
    done = 0
    try:
        while not stop.is_set():
            with connect(dsn, autocommit=True, prepare_threshold=0) as conn:
                # Different texts under the names the main connection also uses.
                for _ in range(rng.randint(1, 8)):
                    n = rng.randint(-10_000, 10_000)
                    with conn.transaction():
                        got = conn.execute("SELECT %s::int + 1000, 'churn'", (n,)).fetchone()
                        expect_equal(got, (n + 1000, "churn"), f"churn {index} statement 1")
                        got = conn.execute("SELECT %s::text || '-churn'", (str(n),)).fetchone()
                        expect_equal(got, (f"{n}-churn",), f"churn {index} statement 2")
                    done += 1
                    # Short pauses: the pool is shared, not monopolised by 30 busy loops.
                    time.sleep(rng.uniform(0.02, 0.1))
    except Exception as e:  # reported by the main thread
        errors_seen.append(f"churn thread {index}: {type(e).__name__}: {e}")
    counts[index] = done


def check_prepared_under_churn(proxy, mode):
    dsn = proxy.dsn
    stop = threading.Event()
    errors_seen = []
    counts = [0] * CHURN_THREADS
    threads = [threading.Thread(target=churn, args=(dsn, i, stop, errors_seen, counts), daemon=True)
               for i in range(CHURN_THREADS)]
    for t in threads:
        t.start()
    try:
        backends = set()
        with connect(dsn, autocommit=True, prepare_threshold=0) as conn:
            started = time.monotonic()
            for i in range(MAIN_TRANSACTIONS):
                with conn.transaction():
                    got = conn.execute("SELECT %s::int * 2, %s::text, pg_backend_pid()",
                                       (i, f"main-{i}")).fetchone()
                    expect_equal(got[:2], (i * 2, f"main-{i}"), f"transaction {i}, statement 1")
                    backends.add(got[2])
                    rows = conn.execute(
                        "SELECT g, g * %s::int FROM generate_series(1, 3) g", (i,)).fetchall()
                    expect_equal(rows, [(1, i), (2, 2 * i), (3, 3 * i)], f"transaction {i}, statement 2")
                got = conn.execute("SELECT %s::bigint - 1", (i,)).fetchone()
                expect_equal(got, (i - 1,), f"autocommit statement after transaction {i}")
                if errors_seen:
                    break
            elapsed = time.monotonic() - started
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    expect(not errors_seen, "churn connections failed:\n  " + "\n  ".join(errors_seen[:10]))
    expect(all(not t.is_alive() for t in threads), "a churn thread did not finish")
    log(f"prepared: {MAIN_TRANSACTIONS} transactions in {elapsed:.1f}s while "
        f"{CHURN_THREADS} connections ran {sum(counts)} transactions")
    expect(sum(counts) >= CHURN_THREADS, f"the churn threads hardly ran: {counts}")
    if mode == "session":
        expect_equal(len(backends), 1, "server processes one session-mode client ran on")
    else:
        # Otherwise the test never made the proxy re-prepare a statement elsewhere.
        expect(len(backends) > 1, "the main connection ran every transaction on one server "
                                  "although 30 others churned the pool")
    log(f"prepared: the main connection ran on {len(backends)} server process(es)")


def check_bad_prepared_statement(proxy):
    """A statement that fails to prepare is reported, and the connection goes on."""
    with connect(proxy.dsn, autocommit=True, prepare_threshold=0) as conn:
        try:
            conn.execute("SELECT no_such_column FROM generate_series(1, 2) g WHERE g = %s", (1,))
            raise AssertionError("a statement naming a missing column succeeded")
        except errors.UndefinedColumn:
            pass
        try:
            conn.execute("SELECT 1 / %s::int", (0,))
            raise AssertionError("division by zero succeeded")
        except errors.DivisionByZero:
            pass
        for i in range(20):
            expect_equal(conn.execute("SELECT 1 / %s::int", (1,)).fetchone(), (1,),
                         f"the statement that failed once, run again ({i})")


# --- pipeline mode --------------------------------------------------------------------

def check_pipeline(proxy, table):
    with connect(proxy.dsn, autocommit=True, prepare_threshold=0) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, label text NOT NULL)")
                     .format(sql.Identifier(table)))
        try:
            count = 300
            with conn.pipeline() as pipeline:
                cursors = []
                for i in range(count):
                    cur = conn.cursor()
                    cur.execute(sql.SQL("INSERT INTO {} (id, label) VALUES (%s, %s) RETURNING id * 10")
                                .format(sql.Identifier(table)), (i, f"row-{i}"))
                    cursors.append(cur)
                    select = conn.cursor()
                    select.execute("SELECT %s::int + %s::int, %s::text", (i, 7, f"p{i}"))
                    cursors.append(select)
                pipeline.sync()
                for i in range(count):
                    expect_equal(cursors[2 * i].fetchone(), (i * 10,), f"pipelined INSERT {i}")
                    expect_equal(cursors[2 * i + 1].fetchone(), (i + 7, f"p{i}"), f"pipelined SELECT {i}")
            total = conn.execute(sql.SQL("SELECT count(*), sum(id) FROM {}")
                                 .format(sql.Identifier(table))).fetchone()
            expect_equal(total, (count, count * (count - 1) // 2), "rows inserted by the pipeline")

            # A pipeline in an explicit transaction, with executemany.
            with conn.pipeline():
                with conn.transaction():
                    with conn.cursor() as cur:
                        cur.executemany(sql.SQL("UPDATE {} SET label = %s WHERE id = %s")
                                        .format(sql.Identifier(table)),
                                        [(f"updated-{i}", i) for i in range(0, count, 3)])
            updated = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE label LIKE 'updated-%%'")
                                   .format(sql.Identifier(table))).fetchone()[0]
            expect_equal(updated, len(range(0, count, 3)), "rows updated by executemany in a pipeline")

            # An error in the middle of a pipeline: what follows it up to the next sync is
            # skipped, what comes after that runs, and the connection stays usable.
            after = conn.cursor()
            try:
                with conn.pipeline() as pipeline:
                    conn.execute("SELECT 1")
                    conn.execute("SELECT 1 / 0")
                    conn.execute("SELECT 2")
                    pipeline.sync()
                    after.execute("SELECT 42")
                raise AssertionError("a pipeline with 1 / 0 in it raised nothing")
            except errors.DivisionByZero:
                pass
            for i in range(5):
                expect_equal(conn.execute("SELECT %s::int", (i,)).fetchone(), (i,),
                             f"query after the failed pipeline ({i})")
            log(f"pipeline: {2 * count} pipelined statements checked")
        finally:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def check_pipeline_error_then_late_messages(mode):
    """Pipeline messages that reach the server after it reported an error are skipped by
    it up to the Sync, unanswered. Sent deliberately late here (Flush, wait for the error,
    then send more), as a pipelining client does by chance when its writes straddle the
    error. Afterwards the client must be in sync, and in transaction mode its server must
    go back to the pool once the client is idle."""
    with Proxy(mode=mode, pool_size=1, workers=1, extra_toml='query_wait_timeout = "3s"') as proxy:
        with connect(proxy.dsn, autocommit=True) as a:
            pg = a.pgconn
            pg.enter_pipeline_mode()
            pg.send_prepare(b"broken", b"SELEC 1")  # fails at Parse
            pg.send_flush_request()
            pg.flush()
            first = pg.get_result()
            expect_equal(first.error_field(pq.DiagnosticField.SQLSTATE), b"42601", "SQLSTATE of the bad Parse")
            # Only now, after the error came back: the server will skip all of this.
            pg.send_prepare(b"late", b"SELECT 2")
            pg.send_query_prepared(b"late", [])
            pg.pipeline_sync()
            pg.flush()
            statuses = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                r = pg.get_result()
                if r is None:
                    continue
                statuses.append(pq.ExecStatus(r.status).name)
                if r.status == pq.ExecStatus.PIPELINE_SYNC:
                    break
            expect_equal(statuses, ["PIPELINE_ABORTED", "PIPELINE_ABORTED", "PIPELINE_SYNC"],
                         "results of the messages sent after the error")
            pg.exit_pipeline_mode()
            for i in range(5):
                got = a.execute("SELECT %s::int * 10", (i,), prepare=True).fetchall()
                expect_equal(got, [(i * 10,)], f"prepared query after the aborted pipeline ({i})")
            if mode == "transaction":
                # a is idle: the only server must serve another client now.
                with connect(proxy.dsn, autocommit=True) as b:
                    t0 = time.monotonic()
                    try:
                        got = b.execute("SELECT 'b'").fetchone()
                    except psycopg.Error as e:
                        raise AssertionError(
                            f"after an aborted pipeline the idle client still holds the pool's only "
                            f"server: another client got {e.sqlstate} after {time.monotonic() - t0:.1f}s: {e}") from e
                    expect_equal(got, ("b",), "another client's query on the freed server")
            got = a.execute("SELECT %s::text", ("a again",), prepare=True).fetchone()
            expect_equal(got, ("a again",), "the first client's query after the other's")
        log("pipeline: messages skipped after an error leave the client and the pool in sync")


# --- COPY -----------------------------------------------------------------------------

def copy_row(i):
    # Characters COPY's text format must escape: tab, newline, backslash.
    return (i, f"payload {i}\twith\ttabs\\ and \"quotes\"\nline {i * 7919 % 10007}", i * 0.5)


def check_copy(proxy, table):
    ident = sql.Identifier(table)
    with connect(proxy.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, payload text NOT NULL, "
                             "ratio float8 NOT NULL)").format(ident))
        try:
            expected = hashlib.sha256()
            with conn.cursor() as cur:
                with cur.copy(sql.SQL("COPY {} (id, payload, ratio) FROM STDIN").format(ident)) as copy:
                    for i in range(COPY_ROWS):
                        row = copy_row(i)
                        copy.write_row(row)
                        expected.update(repr(row).encode())
                expect_equal(cur.rowcount, COPY_ROWS, "rows reported by COPY FROM")

            # The server's own view of what arrived.
            server_sum = conn.execute(sql.SQL(
                "SELECT count(*), sum(id), md5(string_agg(payload, '|' ORDER BY id)) FROM {}")
                .format(ident)).fetchone()
            local_md5 = hashlib.md5("|".join(copy_row(i)[1] for i in range(COPY_ROWS)).encode()).hexdigest()
            expect_equal(server_sum, (COPY_ROWS, COPY_ROWS * (COPY_ROWS - 1) // 2, local_md5),
                         "count, id sum and payload md5 on the server after COPY FROM")

            # COPY TO, row by row, in text format.
            got = hashlib.sha256()
            n = 0
            with conn.cursor() as cur:
                with cur.copy(sql.SQL("COPY (SELECT id, payload, ratio FROM {} ORDER BY id) TO STDOUT")
                              .format(ident)) as copy:
                    copy.set_types(["int4", "text", "float8"])
                    for row in copy.rows():
                        got.update(repr(row).encode())
                        n += 1
            expect_equal(n, COPY_ROWS, "rows read by COPY TO")
            expect_equal(got.hexdigest(), expected.hexdigest(), "checksum of the rows read back by COPY TO")

            # COPY TO in blocks, binary format, inside a transaction.
            with conn.transaction():
                with conn.cursor() as cur:
                    raw = bytearray()
                    with cur.copy(sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(ident)) as copy:
                        for block in copy:
                            raw += block
                    expect(raw.startswith(b"PGCOPY\n\xff\r\n\0"), "binary COPY output lacks its signature")
                    expect(len(raw) > COPY_ROWS * 20, f"binary COPY output is only {len(raw)} bytes")

            # Bad data in the middle of a COPY FROM: the server refuses it, nothing is
            # stored, and the connection is usable afterwards.
            try:
                with conn.cursor() as cur:
                    with cur.copy(sql.SQL("COPY {} (id, payload, ratio) FROM STDIN").format(ident)) as copy:
                        for i in range(COPY_ROWS, COPY_ROWS + 500):
                            copy.write(f"{i}\tok\t1.0\n")
                        copy.write("not-a-number\tbad\t1.0\n")
                        for i in range(COPY_ROWS + 501, COPY_ROWS + 1000):
                            copy.write(f"{i}\tok\t1.0\n")
                raise AssertionError("COPY FROM with a bad row succeeded")
            except errors.InvalidTextRepresentation:
                pass
            count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0]
            expect_equal(count, COPY_ROWS, "rows after the failed COPY FROM")

            # A COPY the client aborts: the exception inside the block sends CopyFail.
            try:
                with conn.cursor() as cur:
                    with cur.copy(sql.SQL("COPY {} (id, payload, ratio) FROM STDIN").format(ident)) as copy:
                        copy.write_row((COPY_ROWS + 5000, "never stored", 1.0))
                        raise KeyboardInterrupt("client aborts the COPY")
            except KeyboardInterrupt:
                pass
            except errors.QueryCanceled:
                pass
            count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0]
            expect_equal(count, COPY_ROWS, "rows after the client aborted a COPY FROM")
            log(f"copy: {COPY_ROWS} rows in and out, checksums equal")
        finally:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))


def main(mode):
    # In session mode each churn connection holds a server while it lives: it waits its
    # turn, which takes longer than the default query_wait_timeout allows under load.
    with Proxy(mode=mode, pool_size=10, workers=2, extra_toml='query_wait_timeout = "30s"') as proxy:
        check_prepared_under_churn(proxy, mode)
        proxy.expect_alive()
        check_bad_prepared_statement(proxy)
        check_pipeline(proxy, unique_name("pg3_pipeline"))
        check_copy(proxy, unique_name("pg3_copy"))
        proxy.expect_alive()
    check_pipeline_error_then_late_messages(mode)


if __name__ == "__main__":
    run_modes(main)
