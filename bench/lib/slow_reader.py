"""A client that asks for a ~1 GB result through a proxy and reads it slowly.

PostgreSQL produces the rows far faster than the client takes them, so a proxy that does
not stop reading from the server while its client lags behind buffers the difference:
its memory grows by hundreds of megabytes within seconds. The proxy's RSS is sampled
every 100 ms while the client reads; the figure reported is the maximum.
"""

import threading
import time

import procfs
from wire_client import WireClient

QUERY = "SELECT repeat('x', 1000) FROM generate_series(1, 1000000)"  # ~1.01 GB of DataRows


def run(proxy, cluster, seconds=15.0, rate=2 * 1024 * 1024, rcvbuf=4096, chunk=4096):
    pid = proxy.pid
    result = {"proxy": proxy.name, "query": QUERY, "read_seconds": seconds,
              "target_rate_mb_s": rate / 1048576, "rcvbuf": rcvbuf}
    result["rss_before_mb"] = procfs.rss_bytes(pid) / 1048576
    rss_max, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            rss = procfs.rss_bytes(pid)
            if rss:
                rss_max[0] = max(rss_max[0], rss)
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    client = None
    bytes_read, error = 0, ""
    started = time.monotonic()
    try:
        client = WireClient("127.0.0.1", proxy.port, cluster.app_user, cluster.app_password,
                            cluster.database, rcvbuf=rcvbuf, timeout=30,
                            application_name="bench-slow-reader")
        client.send_query(QUERY)
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            data = client.sock.recv(chunk)
            if not data:
                error = "connection closed before the time was up"
                break
            bytes_read += len(data)
            # Pace to `rate`: sleep until the bytes read so far are due.
            ahead = bytes_read / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    except Exception as e:  # a failing proxy is a result, not a crash of the benchmark
        error = f"{type(e).__name__}: {e}"
    finally:
        elapsed = time.monotonic() - started
        if client is not None:
            client.close()
    time.sleep(1.0)
    stop.set()
    sampler.join(2)
    result["elapsed_s"] = round(elapsed, 1)
    result["bytes_read_mb"] = bytes_read / 1048576
    result["rss_max_mb"] = rss_max[0] / 1048576
    result["rss_after_mb"] = (procfs.rss_bytes(pid) or 0) / 1048576
    result["error"] = error
    result["healthy_after"] = _healthy(proxy)
    return result


def _healthy(proxy):
    """True when the proxy still runs and answers a query from a new client."""
    if not proxy.alive():
        return False
    try:
        conn = proxy.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone()[0] == 1
        finally:
            conn.close()
    except Exception:
        return False
