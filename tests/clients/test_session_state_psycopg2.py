#!/usr/bin/python3
"""psycopg2 through pgsidecar, session state under a busy pool (docs/pooling.md): 40
clients churn a pool of 4 while one client creates each kind of session state and uses it
over 30 transactions. With session_state = "pin" it keeps working and is released at the
documented moment (SHOW CLIENTS' pinned column empties); with "refuse" the creating statement fails with 0A000 and the
connection goes on; an observer never sees it. RESET and RESET ALL return to the
client's startup value, in both pool modes.

usage: test_session_state_psycopg2.py [transaction|session]...   (default: both)
"""

import threading

import psycopg2

from harness import Proxy, expect, expect_equal, libpq_url, log, run_modes

CHURNERS = 40
USES = 30


def connect(dsn, options=None):
    conn = psycopg2.connect(dsn, connect_timeout=10, options=options) if options else \
        psycopg2.connect(dsn, connect_timeout=10)
    conn.autocommit = True
    return conn


def scalar(conn, query):
    with conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchone()[0] if cur.description else None


def sqlstate_of(conn, query):
    try:
        scalar(conn, query)
    except psycopg2.Error as e:
        return e.pgcode
    return None


class Churn:
    """CHURNERS clients running short transactions until stopped."""

    def __init__(self, dsn):
        self.stop = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(dsn,)) for _ in range(CHURNERS)]

    def run(self, dsn):
        try:
            conn = connect(dsn)
            while not self.stop.is_set():
                with conn.cursor() as cur:
                    cur.execute("BEGIN; SELECT pg_sleep(0.002); COMMIT")
            conn.close()
        except Exception as e:  # reported by __exit__
            self.errors.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()
        expect(not self.errors, f"churning clients failed: {self.errors[:3]}")


# Each state: how it is made, used (returns something to compare), seen by an observer
# (must not be), and released.
STATES = [
    ("session SET", "SET statement_timeout = '4321ms'", "SHOW statement_timeout",
     "SHOW statement_timeout", "RESET statement_timeout", False),
    ("temp table", "CREATE TEMP TABLE ss_t AS SELECT 1 AS v", "SELECT count(*) FROM ss_t",
     "SELECT count(*) FROM ss_t", "DISCARD TEMP", True),
    ("advisory lock", "SELECT pg_advisory_lock(4242)", "SELECT 1",
     "SELECT pg_try_advisory_xact_lock(4242)", "SELECT pg_advisory_unlock(4242)", True),
    ("LISTEN", "LISTEN ss_ch", "SELECT 1", None, "UNLISTEN *", True),
    ("SQL PREPARE", "PREPARE ss_p AS SELECT 7", "EXECUTE ss_p", "EXECUTE ss_p", "DEALLOCATE ss_p", True),
    ("WITH HOLD cursor", "DECLARE ss_c CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 100) g",
     "FETCH 1 FROM ss_c", "FETCH 1 FROM ss_c", "CLOSE ss_c", True),
]


def pinned_reasons(admin):
    """SHOW CLIENTS' pinned column, its non-empty values."""
    with admin.cursor() as cur:
        cur.execute("SHOW CLIENTS")
        column = [d[0] for d in cur.description].index("pinned")
        return [row[column] for row in cur.fetchall() if row[column]]


def check_pin(proxy):
    client, observer = connect(proxy.dsn), connect(proxy.dsn)
    c = proxy.cluster
    admin = connect(libpq_url("127.0.0.1", proxy.port, c.user, c.password, "pgsidecar"))
    for name, make, use, observe, release, pins in STATES:
        scalar(client, make)
        backends = set()
        for i in range(USES):
            expect(scalar(client, use) is not None, f"{name}: use {i} answered nothing")
            backends.add(scalar(client, "SELECT pg_backend_pid()"))
            if observe is not None:
                seen = sqlstate_of(observer, observe) or scalar(observer, observe)
                expect(seen in ("0", "42P01", False, "26000", "34000"), f"{name}: the observer saw {seen!r}")
        if name == "session SET":
            expect_equal(scalar(client, use), "4321ms", "the SET, after 30 transactions")
        if pins:
            expect_equal(len(backends), 1, f"{name}: servers used while pinned")
            expect_equal(pinned_reasons(admin), [name], f"{name}: SHOW CLIENTS while pinned")
        scalar(client, release)
        expect_equal(pinned_reasons(admin), [], f"{name}: SHOW CLIENTS after {release}")
        log(f"pin: {name}: kept over {USES} transactions, released by {release}")
    client.close()
    observer.close()
    admin.close()


def check_refuse(proxy):
    client = connect(proxy.dsn)
    for name, make, *_rest in STATES:
        if name == "session SET":
            continue
        expect_equal(sqlstate_of(client, make), "0A000", f"refuse: {make}")
        expect_equal(scalar(client, "SELECT 2"), 2, f"refuse: the connection after {name}")
    client.close()
    log("refuse: every pinning statement answered 0A000, the connection went on")


def check_reset(proxy):
    client = connect(proxy.dsn, options="-c statement_timeout=4321")
    for reset in ("RESET statement_timeout", "RESET ALL"):
        scalar(client, "SET statement_timeout = 5")
        scalar(client, reset)
        for _ in range(10):
            expect_equal(scalar(client, "SHOW statement_timeout"), "4321ms", f"after {reset}")
    client.close()


def main(mode):
    if mode == "session":  # each client keeps its server: nothing to churn
        with Proxy(mode=mode, pool_size=4) as proxy:
            check_reset(proxy)
            proxy.expect_alive()
        return
    with Proxy(mode=mode, pool_size=4, extra_toml='query_wait_timeout = "30s"\n\n[admin]\nusers = ["app"]') as proxy, Churn(proxy.dsn):
        check_pin(proxy)
        check_reset(proxy)
        proxy.expect_alive()
    with Proxy(mode=mode, pool_size=4, extra_toml='session_state = "refuse"') as proxy:
        check_refuse(proxy)
        check_reset(proxy)


if __name__ == "__main__":
    run_modes(main)
