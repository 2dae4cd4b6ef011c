#!/usr/bin/python3
"""psycopg2 through pgsidecar: commit and rollback visibility, recovering from an error
on the same connection, a 10 MB bytea round trip, and cancelling a running query.

usage: test_psycopg2.py [transaction|session]...   (default: both)
"""

import hashlib
import os
import threading
import time

import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions
from psycopg2 import sql

from harness import Proxy, direct, expect, expect_equal, log, run_modes, unique_name

BYTEA_SIZE = 10 * 1024 * 1024


def connect(dsn, autocommit=False):
    conn = psycopg2.connect(dsn, connect_timeout=10)
    conn.autocommit = autocommit
    return conn


def scalar(conn, query, args=None):
    with conn.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchone()[0]


def count_rows(conn, table, where="TRUE"):
    return scalar(conn, sql.SQL("SELECT count(*) FROM {} WHERE " + where).format(sql.Identifier(table)))


# --- transactions -----------------------------------------------------------------------

def check_transactions(proxy, table):
    ident = sql.Identifier(table)
    writer = connect(proxy.dsn)
    reader = connect(proxy.dsn, autocommit=True)
    primary = connect(direct(), autocommit=True)
    try:
        with writer.cursor() as cur:
            cur.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, note text)").format(ident))
        writer.commit()

        # Uncommitted work is visible only to its own transaction.
        with writer.cursor() as cur:
            cur.execute(sql.SQL("INSERT INTO {} VALUES (1, 'first'), (2, 'second')").format(ident))
            expect_equal(count_rows(writer, table), 2, "rows seen by the inserting transaction")
        expect_equal(count_rows(reader, table), 0, "rows seen by another client before COMMIT")
        expect_equal(count_rows(primary, table), 0, "rows seen on the primary before COMMIT")
        writer.commit()
        expect_equal(count_rows(reader, table), 2, "rows seen by another client after COMMIT")
        expect_equal(count_rows(primary, table), 2, "rows seen on the primary after COMMIT")

        # Rolled back work is gone for everybody, the writer included.
        with writer.cursor() as cur:
            cur.execute(sql.SQL("INSERT INTO {} VALUES (3, 'rolled back')").format(ident))
            cur.execute(sql.SQL("UPDATE {} SET note = 'changed' WHERE id = 1").format(ident))
        writer.rollback()
        expect_equal(count_rows(writer, table), 2, "rows after ROLLBACK, seen by the writer")
        expect_equal(count_rows(primary, table, "id = 3"), 0, "rolled-back row on the primary")
        expect_equal(scalar(reader, sql.SQL("SELECT note FROM {} WHERE id = 1").format(ident)), "first",
                     "a rolled-back UPDATE")
        writer.commit()

        # An error, a rollback, then success on the same connection.
        with writer.cursor() as cur:
            cur.execute(sql.SQL("INSERT INTO {} VALUES (10, 'before the error')").format(ident))
            try:
                cur.execute(sql.SQL("INSERT INTO {} VALUES (1, 'duplicate key')").format(ident))
                raise AssertionError("a duplicate primary key was accepted")
            except psycopg2.errors.UniqueViolation as e:
                expect_equal(e.pgcode, psycopg2.errorcodes.UNIQUE_VIOLATION, "SQLSTATE of the duplicate key")
            expect_equal(writer.get_transaction_status(), psycopg2.extensions.TRANSACTION_STATUS_INERROR,
                         "transaction status after the error")
            try:
                cur.execute("SELECT 1")
                raise AssertionError("a statement in an aborted transaction succeeded")
            except psycopg2.errors.InFailedSqlTransaction:
                pass
        writer.rollback()
        expect_equal(writer.get_transaction_status(), psycopg2.extensions.TRANSACTION_STATUS_IDLE,
                     "transaction status after ROLLBACK")
        with writer.cursor() as cur:
            cur.execute(sql.SQL("INSERT INTO {} VALUES (11, 'after the error') RETURNING id").format(ident))
            expect_equal(cur.fetchone(), (11,), "INSERT after recovering from the error")
        writer.commit()
        expect_equal(count_rows(primary, table, "id = 10"), 0, "row of the failed transaction on the primary")
        expect_equal(count_rows(primary, table, "id = 11"), 1, "row committed after the rollback")

        # Many short transactions alternating commit and rollback.
        for i in range(100, 300):
            with writer.cursor() as cur:
                cur.execute(sql.SQL("INSERT INTO {} VALUES (%s, 'loop')").format(ident), (i,))
            if i % 2:
                writer.rollback()
            else:
                writer.commit()
        expect_equal(count_rows(primary, table, "note = 'loop'"), 100, "committed rows of the loop")
        expect_equal(count_rows(primary, table, "note = 'loop' AND id % 2 = 1"), 0,
                     "rolled-back rows of the loop")
        log("transactions: commit, rollback and recovery from an error behave")
    finally:
        with primary.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        for c in (writer, reader, primary):
            c.close()


# --- large bytea ------------------------------------------------------------------------

def check_large_bytea(proxy, table):
    ident = sql.Identifier(table)
    payload = os.urandom(BYTEA_SIZE // 2) + bytes(range(256)) * ((BYTEA_SIZE // 2) // 256)
    expect_equal(len(payload), BYTEA_SIZE, "payload size")
    digest = hashlib.md5(payload).hexdigest()
    conn = connect(proxy.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, data bytea NOT NULL)").format(ident))
            started = time.monotonic()
            cur.execute(sql.SQL("INSERT INTO {} VALUES (1, %s)").format(ident), (psycopg2.Binary(payload),))
            conn.commit()
            cur.execute(sql.SQL("SELECT length(data), md5(data) FROM {} WHERE id = 1").format(ident))
            expect_equal(cur.fetchone(), (BYTEA_SIZE, digest), "length and md5 of the bytea on the server")
            cur.execute(sql.SQL("SELECT data FROM {} WHERE id = 1").format(ident))
            back = bytes(cur.fetchone()[0])
            expect_equal(len(back), BYTEA_SIZE, "length of the bytea read back")
            expect(back == payload, "the bytea read back differs from what was written "
                                    f"(first difference at byte {first_difference(back, payload)})")
            # Straight back, without a table.
            cur.execute("SELECT %s::bytea", (psycopg2.Binary(payload),))
            echoed = bytes(cur.fetchone()[0])
            expect(echoed == payload, "SELECT of a 10 MB bytea parameter did not echo it "
                                      f"(first difference at byte {first_difference(echoed, payload)})")
            conn.commit()
            log(f"bytea: 10 MB written, read back and echoed in {time.monotonic() - started:.1f}s")
            cur.execute("SELECT 1")
            expect_equal(cur.fetchone(), (1,), "a small query after the large ones")
    finally:
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        conn.commit()
        conn.close()


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


# --- cancel -----------------------------------------------------------------------------

def cancel_running_sleep(conn, label):
    """Starts SELECT pg_sleep(10) on conn in a thread, cancels it from here; returns
    the seconds from cancel() to the query's end."""
    outcome = {}
    # Unique text, so that the wait below finds this query and no one else's.
    query = f"SELECT pg_sleep(10) -- {unique_name('cancel')}"

    def run():
        started = time.monotonic()
        try:
            with conn.cursor() as cur:
                cur.execute(query)
            outcome["error"] = None
        except Exception as e:  # examined below
            outcome["error"] = e
        outcome["ended"] = time.monotonic()
        outcome["took"] = outcome["ended"] - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    # Wait until the sleep really runs on a server (not before it left the client).
    deadline = time.monotonic() + 5
    monitor = connect(direct(), autocommit=True)
    try:
        while time.monotonic() < deadline:
            if scalar(monitor, "SELECT count(*) FROM pg_stat_activity WHERE query = %s AND state = 'active'",
                      (query,)) > 0:
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"{label}: SELECT pg_sleep(10) never showed up as active on the server")
    finally:
        monitor.close()
    cancelled_at = time.monotonic()
    conn.cancel()
    thread.join(timeout=12)
    expect(not thread.is_alive(), f"{label}: the query did not end within 12 s of the cancel")
    after = outcome["ended"] - cancelled_at
    error = outcome["error"]
    expect(error is not None, f"{label}: pg_sleep(10) finished without error after {outcome['took']:.1f}s: "
                              "the cancel request did not reach its server")
    expect(isinstance(error, psycopg2.errors.QueryCanceled),
           f"{label}: expected QueryCanceled, got {type(error).__name__}: {error}")
    expect_equal(error.pgcode, "57014", f"{label}: SQLSTATE of the cancelled query")
    expect(after < 2.0, f"{label}: the query ended {after:.1f}s after the cancel (limit 2 s)")
    return after


def check_cancel(proxy):
    # autocommit: the connection is usable straight away.
    conn = connect(proxy.dsn, autocommit=True)
    # A bystander sleeping at the same time on the same pool: a cancel must reach only
    # the server of the client that sent it.
    bystander = connect(proxy.dsn, autocommit=True)
    bystander_result = {}

    def bystand():
        try:
            bystander_result["value"] = scalar(bystander, "SELECT pg_sleep(1.5)::text || 'done'")
        except Exception as e:  # examined below
            bystander_result["error"] = e

    try:
        t = threading.Thread(target=bystand, daemon=True)
        t.start()
        took = cancel_running_sleep(conn, "autocommit")
        t.join(timeout=10)
        expect("error" not in bystander_result,
               f"another client's query was hit by the cancel: {bystander_result.get('error')!r}")
        expect_equal(bystander_result.get("value"), "done", "the bystander's pg_sleep(1.5)")
        for i in range(3):
            expect_equal(scalar(conn, "SELECT %s", (i,)), i, f"SELECT after the cancel ({i})")

        # A cancel with nothing running changes nothing.
        conn.cancel()
        time.sleep(0.2)
        expect_equal(scalar(conn, "SELECT 1"), 1, "SELECT 1 after a cancel with nothing running")

        # Inside a transaction: the transaction is aborted, ROLLBACK recovers.
        tx = connect(proxy.dsn)
        try:
            expect_equal(scalar(tx, "SELECT 1"), 1, "first statement of the transaction")
            took_tx = cancel_running_sleep(tx, "in a transaction")
            tx.rollback()
            expect_equal(scalar(tx, "SELECT 1"), 1, "SELECT 1 after the cancel and ROLLBACK")
            tx.commit()
        finally:
            tx.close()
        log(f"cancel: pg_sleep(10) ended {took:.2f}s / {took_tx:.2f}s after cancel(), bystander unharmed")
    finally:
        conn.close()
        bystander.close()


def main(mode):
    with Proxy(mode=mode, pool_size=10, workers=2) as proxy:
        check_transactions(proxy, unique_name("pg2_tx"))
        check_large_bytea(proxy, unique_name("pg2_bytea"))
        check_cancel(proxy)
        proxy.expect_alive()


if __name__ == "__main__":
    run_modes(main)
