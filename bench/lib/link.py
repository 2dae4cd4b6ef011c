"""Link mode: PostgreSQL behind a slow network, in the sidecar topology.

The kernel here has no netem, so a fault_relay (tests/support/fault_relay_main.cpp) in
delay mode stands for the link: it forwards each chunk a fixed number of ms after it
arrived, in each direction, so one round trip over it costs twice that. Each target gets
a relay of its own between it and PostgreSQL:

    direct:     pgbench -> relay -> PostgreSQL
    pgsidecar:  pgbench -> pgsidecar (loopback) -> relay -> PostgreSQL
    pgbouncer:  pgbench -> PgBouncer (loopback) -> relay -> PostgreSQL

so the application's side of a proxy is free and only the proxy's side crosses the link,
as for a proxy running next to the application. pgsidecar runs with answer_pings on.

Workloads: TPC-B-like (simple, extended, prepared) and an ORM-shaped transaction (a
connection pool's pre-ping, then BEGIN, a SELECT, an UPDATE, COMMIT). Round trips per
transaction through pgsidecar come from its own counter (SHOW STATS total_server_writes:
client requests written to servers) over the transactions pgbench completed.
"""

import os
import subprocess
import time

import pgbench_point
import report
from proxies import PgBouncer, PgSidecar

TARGETS = ("direct", "pgbouncer", "pgsidecar")
# (workload, mode): the built-in TPC-B in each protocol mode, the ORM shape in two.
WORKLOADS = [("tpcb-like", "simple"), ("tpcb-like", "extended"), ("tpcb-like", "prepared"),
             ("orm", "simple"), ("orm", "extended")]
# Statements per transaction, each one round trip when sent directly.
DIRECT_ROUND_TRIPS = {"tpcb-like": 7, "orm": 5}

ORM_SCRIPT = """\\set aid random(1, {accounts})
\\set delta random(-5000, 5000)
SELECT 1;
BEGIN;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
COMMIT;
"""


class Relay:
    """One fault_relay process delaying each direction by `delay_ms`."""

    def __init__(self, binary, target_port, delay_ms):
        self.process = subprocess.Popen(
            [binary, "--listen", "0", "--target", f"127.0.0.1:{target_port}",
             "--delay-ms", str(delay_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()
        if not line.startswith("port="):
            self.stop()
            raise RuntimeError(f"fault_relay did not start: {line!r}")
        self.port = int(line.split("=", 1)[1])

    def stop(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def plan(args):
    clients_list = [int(c) for c in args.link_clients.split(",") if c]
    out = []
    for delay in [int(d) for d in args.link.split(",") if d]:
        for workload, mode in WORKLOADS:
            for clients in clients_list:
                for target in TARGETS:
                    skip = ""
                    if target == "pgbouncer" and mode == "prepared":
                        skip = "skipped: PgBouncer 1.18 has no prepared statements in " \
                               "transaction mode"
                    out.append((delay, workload, mode, clients, target, skip))
    return out


def run(args, cluster, say, reset_between_points):
    """Every link point; returns their results (report.LINK_COLUMNS)."""
    script = os.path.join(args.workdir, "orm.sql")
    with open(script, "w", encoding="ascii") as f:
        f.write(ORM_SCRIPT.format(accounts=100000 * args.link_scale))
    registry = os.path.join(args.workdir, "proxy-pids")
    points = plan(args)
    results = []
    for delay in sorted({p[0] for p in points}):
        relays = {t: Relay(args.fault_relay, cluster.port, delay) for t in TARGETS}
        proxies = {
            "pgsidecar": PgSidecar(args.workdir, cluster, registry, args.pgsidecar,
                                   args.pool_size, pool_extra="answer_pings = true",
                                   server_port=relays["pgsidecar"].port,
                                   name=f"pgsidecar-link{delay}"),
            "pgbouncer": PgBouncer(args.workdir, cluster, registry, args.pool_size,
                                   max_client_conn=1000, server_port=relays["pgbouncer"].port,
                                   name=f"pgbouncer-link{delay}"),
        }
        try:
            for proxy in proxies.values():
                proxy.start()
            say(f"link {delay} ms each way: relays on ports "
                + ", ".join(f"{t} {r.port}" for t, r in relays.items()))
            for target in TARGETS:  # open each pool's server connections before measuring
                _pgbench(args, cluster, proxies.get(target), relays[target], "tpcb-like",
                         "simple", max(int(c) for c in args.link_clients.split(",")), 2, None)
            for d, workload, mode, clients, target, skip in points:
                if d != delay:
                    continue
                base = {"link_ms": delay, "workload": workload, "mode": mode,
                        "clients": clients, "target": target}
                if skip:
                    results.append(dict(base, status="skipped", problems=skip))
                    continue
                reset_between_points(cluster)
                proxy = proxies.get(target)
                writes_before = proxy.server_writes() if target == "pgsidecar" else None
                r = _pgbench(args, cluster, proxy, relays[target], workload, mode, clients,
                             args.link_duration, script if workload == "orm" else None)
                r.update(base)
                if writes_before is not None and r.get("transactions"):
                    r["round_trips_per_tx"] = \
                        (proxy.server_writes() - writes_before) / r["transactions"]
                r["status"] = "ok" if not r["problems"] else "error"
                results.append(r)
                say(f"  link {delay} ms {workload:9s} {mode:8s} c={clients:<2d} {target:9s} "
                    f"avg {report.num(r.get('latency_avg_ms'))} ms  "
                    f"p99 {report.num(r.get('latency_p99_ms'))} ms  "
                    f"{report.num(r.get('tps'), 'int')} tps"
                    + (f"  round trips/tx {r['round_trips_per_tx']:.2f}"
                       if r.get("round_trips_per_tx") is not None else "")
                    + (f"  !! {r['problems']}" if r["problems"] else ""))
        finally:
            for proxy in proxies.values():
                proxy.stop()
            for relay in relays.values():
                relay.stop()
    return results


def _pgbench(args, cluster, proxy, relay, workload, mode, clients, duration, script):
    port = proxy.port if proxy else relay.port
    return pgbench_point.run_point(
        host="127.0.0.1", port=port, user=cluster.app_user, password=cluster.app_password,
        database=cluster.database, workload=workload, mode=mode, clients=clients,
        duration=duration, log_dir=os.path.join(args.workdir, "pgbench-logs"),
        proxy_pid=proxy.pid if proxy else None, postmaster_pid=cluster.postmaster_pid(),
        script=script)


def ratios_table(points):
    """Latency average and p99 per target, each proxy against direct, and pgsidecar's
    round trips per transaction."""
    by_key = {(p["link_ms"], p["workload"], p["mode"], p["clients"], p["target"]): p
              for p in points if p.get("status") == "ok"}
    header = ["Link ms", "Workload", "Mode", "Clients", "direct avg / p99 ms",
              "PgBouncer avg / p99 ms (× direct)", "pgsidecar avg / p99 ms (× direct)",
              "Round trips / tx direct", "pgsidecar"]
    rows = []
    for key in sorted({k[:4] for k in by_key}, key=lambda k: (
            k[0], k[1], ["simple", "extended", "prepared"].index(k[2]), k[3])):
        direct = by_key.get(key + ("direct",))
        base = direct.get("latency_avg_ms") if direct else None
        row = list(key) + [_lat(direct)]
        for target in ("pgbouncer", "pgsidecar"):
            p = by_key.get(key + (target,))
            cell = _lat(p)
            if p and base and p.get("latency_avg_ms"):
                cell += f" (×{p['latency_avg_ms'] / base:.2f})"
            row.append(cell)
        sidecar = by_key.get(key + ("pgsidecar",))
        row.append(str(DIRECT_ROUND_TRIPS.get(key[1], "–")))
        row.append(report.num(sidecar.get("round_trips_per_tx")) if sidecar else "–")
        rows.append(row)
    return report.table(header, rows, text_columns=4)


def _lat(p):
    if not p:
        return "–"
    return f"{report.num(p.get('latency_avg_ms'))} / {report.num(p.get('latency_p99_ms'))}"
