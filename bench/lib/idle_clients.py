"""Memory per idle client: N clients log in through a freshly started proxy with
SCRAM-SHA-256 and stay connected doing nothing; the proxy's RSS before and while they are
connected, divided by N, is what one idle authenticated client costs.

Each client does the whole login (StartupMessage, the SCRAM exchange with the server
signature checked, ReadyForQuery) with bench/lib/wire_client.py, which derives the salted
password once instead of once per login as libpq does: at 5,000 logins on two cores,
libpq's key derivation would take longer than everything the proxy does.

The proxy must be fresh: memory freed by an earlier load test stays in the allocator's
caches, and new clients would reuse it without the RSS moving.
"""

import concurrent.futures
import random
import time

import procfs
from wire_client import WireClient


def run(proxy, count, connect_threads=8, time_limit=90.0, settle=3.0, tls=False):
    pid = proxy.pid
    result = {"proxy": proxy.name, "clients_wanted": count, "tls": tls}

    cluster = proxy.cluster

    def login(timeout=30):
        return WireClient("127.0.0.1", proxy.port, cluster.app_user, cluster.app_password,
                          cluster.database, timeout=timeout, application_name="bench-idle", tls=tls)

    # One client first, so the pool has opened its server connection and the proxy has
    # done its one-time work before the baseline is taken.
    warm = login()
    warm.simple_query("SELECT 1")
    time.sleep(settle)
    rss_before = procfs.rss_bytes(pid)
    cpu_before = procfs.cpu_seconds(pid)

    connections, failures, first_failure = [], 0, ""
    started = time.monotonic()
    deadline = started + time_limit
    with concurrent.futures.ThreadPoolExecutor(connect_threads) as pool:
        pending = set()
        submitted = 0
        while submitted < count or pending:
            while submitted < count and len(pending) < connect_threads * 4 \
                    and time.monotonic() < deadline:
                pending.add(pool.submit(login))
                submitted += 1
            if not pending:
                break
            done, pending = concurrent.futures.wait(
                pending, timeout=5, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                try:
                    connections.append(future.result())
                except Exception as e:
                    failures += 1
                    if not first_failure:
                        first_failure = f"{type(e).__name__}: {str(e).strip()[:200]}"
            if time.monotonic() >= deadline and submitted < count:
                submitted = count  # stop submitting; let the pending ones finish
    login_seconds = time.monotonic() - started
    cpu_after_logins = procfs.cpu_seconds(pid)

    time.sleep(settle)
    rss_held = procfs.rss_bytes(pid)
    alive = proxy.alive()

    # The held clients must be usable, not just connected: a few run a query.
    checked, check_failures = 0, 0
    for conn in random.sample(connections, min(50, len(connections))):
        checked += 1
        try:
            if conn.simple_query("SELECT 1") != [b"1"]:
                check_failures += 1
        except Exception:
            check_failures += 1

    for conn in connections:
        conn.close()
    warm.close()
    time.sleep(settle)
    rss_after_close = procfs.rss_bytes(pid)

    n = len(connections)
    result.update({
        "clients_connected": n,
        "login_failures": failures,
        "first_failure": first_failure,
        "login_seconds": round(login_seconds, 1),
        "logins_per_s": round(n / login_seconds, 1) if login_seconds > 0 else None,
        "proxy_cpu_ms_per_login": ((cpu_after_logins - cpu_before) * 1000.0 / n
                                   if n and cpu_before is not None
                                   and cpu_after_logins is not None else None),
        "rss_before_mb": rss_before / 1048576 if rss_before else None,
        "rss_held_mb": rss_held / 1048576 if rss_held else None,
        "rss_after_close_mb": rss_after_close / 1048576 if rss_after_close else None,
        "kb_per_idle_client": ((rss_held - rss_before) / 1024.0 / n
                               if n and rss_held and rss_before else None),
        "checked_queries": checked,
        "checked_failures": check_failures,
        "proxy_alive": alive,
    })
    return result
