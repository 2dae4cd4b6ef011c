"""A real Prometheus scrapes pgsidecar's /metrics under pgbench load, and
histogram_quantile over its HTTP API agrees with pgbench's own latency report."""

import os
import re
import subprocess
import sys
import time

from ops_harness import Prometheus, TestFailure, expect, harness, http_get, log, ops_proxy

SECONDS = 10


def pgbench(proxy, *args, timeout=120):
    p = subprocess.run(["pgbench", *args], env=proxy.env, capture_output=True, text=True, timeout=timeout)
    expect(p.returncode == 0, f"pgbench {' '.join(args)} failed: {p.stderr.strip()}\n{p.stdout}")
    return p.stdout


def main():
    with ops_proxy(pool_size=4) as proxy:
        # The metrics are a valid exposition before there is any traffic.
        status, text = http_get(proxy.http_port, "/metrics")
        expect(status == 200, f"/metrics: HTTP {status}")
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        expect(check.returncode == 0, f"promtool check metrics: {check.stdout}{check.stderr}")

        # Each transaction sleeps 5 ms on the server: that time dominates both pgbench's
        # latency and the proxy's transaction time, so the two must agree closely.
        script = os.path.join(proxy.dir, "sleep.sql")
        with open(script, "w", encoding="utf-8") as f:
            f.write("SELECT pg_sleep(0.005);\n")
        with Prometheus(proxy.http_port) as prom:
            # -l: pgbench logs every transaction's latency (µs, third column).
            prefix = os.path.join(proxy.dir, "pgbench_log")
            out = pgbench(proxy, "-n", "-f", script, "-c", "4", "-j", "2", "-T", str(SECONDS), "-l",
                          "--log-prefix", prefix)
            latencies = []
            for name in os.listdir(proxy.dir):
                if name.startswith("pgbench_log"):
                    with open(os.path.join(proxy.dir, name), encoding="utf-8") as f:
                        latencies += [int(line.split()[2]) / 1000 for line in f if line.strip()]
            expect(len(latencies) > 100, f"pgbench logged {len(latencies)} transactions")
            latencies.sort()
            pgbench_avg_ms = sum(latencies) / len(latencies)
            pgbench_p99_ms = latencies[int(len(latencies) * 0.99) - 1]
            log(f"pgbench: {len(latencies)} transactions, mean {pgbench_avg_ms:.3f} ms, P99 {pgbench_p99_ms:.3f} ms")
            tx = re.search(r"number of transactions actually processed: (\d+)", out)
            expect(tx and int(tx.group(1)) > 100, f"pgbench ran too few transactions:\n{out}")
            time.sleep(2.5)  # the last scrapes
            expect(prom.targets_up() == [1.0], f"prometheus does not see the target up: {prom.targets_up()}")

            window = f"{SECONDS + 5}s"
            p99 = prom.query(f"histogram_quantile(0.99, sum by (le) "
                             f"(rate(pgsidecar_transaction_duration_seconds_bucket[{window}])))")
            p50 = prom.query(f"histogram_quantile(0.50, sum by (le) "
                             f"(rate(pgsidecar_transaction_duration_seconds_bucket[{window}])))")
            expect(p99 and p50, f"no quantiles: p50={p50} p99={p99}")
            p99_ms, p50_ms = p99[0][1] * 1000, p50[0][1] * 1000
            log(f"pgbench latency average {pgbench_avg_ms:.3f} ms; Prometheus P50 {p50_ms:.3f} ms, "
                f"P99 {p99_ms:.3f} ms")
            # The proxy's transaction time is pgbench's latency less the client's side of it:
            # a little below pgbench's average, never above it by much; P99 is the tail.
            # The quantile is interpolated inside a bucket (5 ms .. 10 ms here), so it agrees
            # within the bucket's width; the mean (sum / count) is exact.
            expect(pgbench_avg_ms / 2 <= p50_ms <= pgbench_avg_ms * 2,
                   f"P50 {p50_ms:.3f} ms does not agree with pgbench's average {pgbench_avg_ms:.3f} ms")
            mean = prom.query(f"sum(rate(pgsidecar_transaction_duration_seconds_sum[{window}])) / "
                              f"sum(rate(pgsidecar_transaction_duration_seconds_count[{window}]))")
            expect(mean, "no mean transaction time")
            mean_ms = mean[0][1] * 1000
            log(f"Prometheus mean transaction time {mean_ms:.3f} ms")
            expect(pgbench_avg_ms * 0.6 <= mean_ms <= pgbench_avg_ms * 1.05,
                   f"mean {mean_ms:.3f} ms does not agree with pgbench's average {pgbench_avg_ms:.3f} ms")
            expect(5 <= p50_ms <= p99_ms, f"P50 {p50_ms:.3f} ms, P99 {p99_ms:.3f} ms")
            expect(pgbench_p99_ms / 4 <= p99_ms <= pgbench_p99_ms * 4,
                   f"P99 {p99_ms:.3f} ms is not of the order of pgbench's P99 {pgbench_p99_ms:.3f} ms")

            # Counters add up across the scrape: transactions as pgbench counted them.
            counted = prom.query('sum(pgsidecar_transactions_total{database="app"})')
            expect(counted and counted[0][1] >= int(tx.group(1)),
                   f"pgsidecar_transactions_total {counted} < pgbench's {tx.group(1)}")
            waits = prom.query("sum(pgsidecar_client_wait_seconds_count)")
            expect(waits and waits[0][1] > 0, f"no client waits recorded: {waits}")
            clients = prom.query('pgsidecar_clients{state="idle"}')
            expect(clients, "no pgsidecar_clients gauge")
            up = prom.query("pgsidecar_server_up")
            expect(up and all(v == 1.0 for _, v in up), f"pgsidecar_server_up: {up}")
            ready = prom.query("pgsidecar_ready")
            expect(ready == [({"__name__": "pgsidecar_ready", "instance": f"127.0.0.1:{proxy.http_port}",
                               "job": "pgsidecar"}, 1.0)], f"pgsidecar_ready: {ready}")
    log("metrics: Prometheus scraped the proxy and its quantiles agree with pgbench")


if __name__ == "__main__":
    try:
        main()
    except TestFailure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
