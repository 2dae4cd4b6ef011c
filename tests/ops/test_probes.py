"""/healthz and /readyz, and the drain on SIGTERM: readiness fails at once, a transaction
in flight still commits, new clients are served during shutdown_delay, and the process
exits 0."""

import subprocess
import sys
import threading
import time

import psycopg2

from ops_harness import TestFailure, expect, harness, http_get, log, ops_proxy


def main():
    table = harness.unique_name("probe")
    with psycopg2.connect(harness.direct()) as setup:
        setup.autocommit = True
        setup.cursor().execute(f"CREATE TABLE {table} (x int)")
    proxy = ops_proxy(listen_extra='shutdown_delay = "1s"\ndrain_timeout = "5s"')
    proxy.__enter__()
    try:
        expect(http_get(proxy.http_port, "/healthz")[0] == 200, "/healthz is not 200")
        expect(http_get(proxy.http_port, "/readyz")[0] == 200, "/readyz is not 200")
        status, body = http_get(proxy.http_port, "/readyz?databases=1")
        deadline = time.monotonic() + 10
        while status != 200 and time.monotonic() < deadline:  # the first probe is on its way
            time.sleep(0.1)
            status, body = http_get(proxy.http_port, "/readyz?databases=1")
        expect(status == 200, f"/readyz?databases=1: {status} {body}")
        expect(http_get(proxy.http_port, "/nope")[0] == 404, "unknown path is not 404")

        # A transaction in flight when SIGTERM arrives.
        conn = psycopg2.connect(proxy.dsn)
        cur = conn.cursor()
        cur.execute(f"INSERT INTO {table} VALUES (1)")
        result = {}

        def finish():
            try:
                cur.execute("SELECT pg_sleep(1.5)")
                conn.commit()
                result["committed"] = True
            except Exception as e:  # noqa: BLE001 - reported below
                result["error"] = repr(e)

        t = threading.Thread(target=finish)
        t.start()
        time.sleep(0.2)
        proxy.process.send_signal(15)
        time.sleep(0.2)
        status, body = http_get(proxy.http_port, "/readyz")
        expect(status == 503, f"/readyz right after SIGTERM: {status} {body}")
        expect(http_get(proxy.http_port, "/healthz")[0] == 200, "/healthz failed while draining")
        # Still serving during shutdown_delay.
        with psycopg2.connect(proxy.dsn) as late:
            late.cursor().execute("SELECT 1")
        t.join(10)
        expect(result.get("committed"), f"the transaction in flight did not commit: {result}")
        status = proxy.process.wait(timeout=15)
        expect(status == 0, f"pgsidecar exited with {status}")
        log_text = proxy.stderr_tail(200)
        expect("event=drain_done" in log_text, f"no drain_done log line:\n{log_text}")
    finally:
        if proxy.process.poll() is None:
            proxy.process.kill()
        proxy._cleanup(keep=False)
    with psycopg2.connect(harness.direct()) as check:
        cur = check.cursor()
        cur.execute(f"SELECT count(*) FROM {table}")
        expect(cur.fetchone()[0] == 1, "the committed row is missing")
        cur.execute(f"DROP TABLE {table}")
    log("probes: readiness failed at once on SIGTERM, the transaction committed, exit 0")


if __name__ == "__main__":
    try:
        main()
    except TestFailure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
