"""The benchmark run: the same pgbench workloads direct to PostgreSQL, through pgsidecar
and through PgBouncer, then idle clients and a slow reader through each proxy.

Started by bench/run.sh, which builds pgsidecar, starts (and always stops) the test
cluster and passes its state directory here. Results go to a timestamped directory under
bench/results/: points.csv, idle_clients.csv, slow_reader.csv and summary.md.
"""

import argparse
import datetime
import os
import platform
import resource
import signal
import subprocess
import sys
import time

import charts
import idle_clients
import link
import pgbench_point
import report
import slow_reader
import tls_points
from postgres import Cluster
from proxies import PgBouncer, PgSidecar

WORKLOADS = ["select-only", "tpcb-like"]
MODES = ["simple", "extended", "prepared"]
DIRECT_MAX_CLIENTS = 250  # the harness's primary has max_connections = 300


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cluster-dir", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--results-dir", required=True)
    p.add_argument("--pgsidecar", required=True, help="the pgsidecar binary")
    p.add_argument("--baseline", help="another pgsidecar binary (an earlier build), run as "
                   "target pgsidecar-baseline at every loopback point, side by side")
    p.add_argument("--duration", type=int, default=8,
                   help="seconds per pgbench point, plus 1 per 100 clients")
    p.add_argument("--clients", default="1,50,500", help="comma-separated client counts")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--pool-size", type=int, default=20)
    p.add_argument("--scale", type=int, default=10)
    p.add_argument("--idle-clients", type=int, default=5000)
    p.add_argument("--slow-seconds", type=float, default=15.0)
    p.add_argument("--slow-rate-mb", type=float, default=2.0,
                   help="the slow reader's pace in MB/s")
    p.add_argument("--link", default="1,5",
                   help="link mode: delays in ms each way between PostgreSQL and each target")
    p.add_argument("--link-clients", default="1,20")
    p.add_argument("--link-duration", type=int, default=6, help="seconds per link point")
    p.add_argument("--link-scale", type=int, default=50,
                   help="pgbench scale of the link points: at least the clients, as pgbench's "
                   "documentation asks, so that TPC-B measures round trips rather than 20 "
                   "clients queueing on a few branch rows")
    p.add_argument("--fault-relay", help="the fault_relay binary (link mode)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: "
                   "points, link, idle, slow, tls")
    tls_points.add_arguments(p)
    return p.parse_args()


def say(message):
    print(message, flush=True)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def machine_description(cluster, pgsidecar_binary):
    def first_line(command):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
            return out.strip().splitlines()[0] if out.strip() else "?"
        except (OSError, subprocess.SubprocessError):
            return "?"

    cpu_model = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="ascii") as f:
        mem_kb = int(f.readline().split()[1])
    try:
        with open("/etc/debian_version", encoding="ascii") as f:
            debian = "Debian " + f.read().strip()
    except FileNotFoundError:
        debian = platform.platform()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    commit = first_line(["git", "-C", root, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    built = datetime.datetime.fromtimestamp(os.path.getmtime(pgsidecar_binary),
                                            datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open("/proc/loadavg", encoding="ascii") as f:
        load = " ".join(f.read().split()[:3])
    return {
        "CPU": f"{cpu_model}, {os.cpu_count()} cores",
        "Load average at the start": load,
        "Memory": f"{mem_kb / 1048576:.1f} GiB",
        "OS": f"{debian}, Linux {platform.release()}",
        "PostgreSQL": cluster.query_one("SHOW server_version"),
        "pgbench": first_line(["pgbench", "--version"]),
        "PgBouncer": first_line(["pgbouncer", "--version"]),
        "pgsidecar": first_line([pgsidecar_binary, "--version"]) +
                     f" ({pgsidecar_binary}, built {built}; the tree was at commit {commit}"
                     f"{' with uncommitted changes' if dirty else ''})",
        "File descriptor limit": str(resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
    }


def prepare_database(cluster, scale):
    """The benchmark uses the primary only: the replica would take CPU replaying WAL, and
    its slot would keep all of it, so both go."""
    cluster.cluster_command("stop-replica")
    # The replica's walsender may hold the slot for a moment after the replica stopped.
    for _ in range(50):
        if not cluster.query_one("SELECT count(*) FROM pg_replication_slots WHERE active",
                                 database="postgres"):
            break
        time.sleep(0.2)
    cluster.execute(["SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"],
                    database="postgres")
    pgbench_init(cluster, scale)


def pgbench_init(cluster, scale):
    """pgbench's tables at `scale`, made anew."""
    env = dict(os.environ, PGPASSWORD=cluster.app_password, PGSSLMODE="disable")
    subprocess.run(["pgbench", "-i", "-q", "-s", str(scale), "-h", cluster.host,
                    "-p", str(cluster.port), "-U", cluster.app_user, cluster.database],
                   env=env, check=True, capture_output=True, text=True)


def reset_between_points(cluster):
    """What pgbench does before a run unless told -n, done directly on the server so that
    it costs the same whatever the target is; plus a checkpoint, so no point inherits the
    previous one's dirty buffers."""
    cluster.execute(["VACUUM pgbench_branches", "VACUUM pgbench_tellers",
                     "TRUNCATE pgbench_history", "CHECKPOINT"])


def plan_points(args):
    clients_list = [int(c) for c in args.clients.split(",") if c]
    targets = ("direct", "pgsidecar", "pgbouncer") + (("pgsidecar-baseline",) if args.baseline else ())
    plan = []
    for workload in args.workloads.split(","):
        for mode in args.modes.split(","):
            for clients in clients_list:
                for target in targets:
                    skip = ""
                    if target == "direct" and clients > DIRECT_MAX_CLIENTS:
                        skip = (f"skipped: {clients} connections exceed the server's "
                                "max_connections (300)")
                    elif target == "pgbouncer" and mode == "prepared":
                        skip = "skipped: PgBouncer 1.18 has no prepared statements in " \
                               "transaction mode"
                    plan.append((workload, mode, clients, target, skip))
    return plan


def point_duration(duration, clients):
    """pgbench's -T includes the clients' logins, which at 500 SCRAM logins take 2-6 s on
    two cores; a second per 100 clients keeps the measured steady state from shrinking."""
    return duration + clients // 100


def run_points(args, cluster, proxies):
    plan = plan_points(args)
    runnable = sum(1 for p in plan if not p[4])
    results, done, started = [], 0, time.monotonic()
    for workload, mode, clients, target, skip in plan:
        base = {"workload": workload, "mode": mode, "clients": clients, "target": target}
        if skip:
            results.append(dict(base, status="skipped", problems=skip))
            continue
        done += 1
        proxy = proxies.get(target)
        if proxy is not None and not proxy.alive():
            say(f"  {proxy.name} is not running; starting it again")
            try:
                proxy.start()
            except RuntimeError as e:
                say(f"  !! {e}")
                results.append(dict(base, status="error",
                                    problems=f"{proxy.name} could not be started again"))
                continue
        reset_between_points(cluster)
        sessions_before = cluster.sessions()
        port = proxy.port if proxy else cluster.port
        r = pgbench_point.run_point(
            host="127.0.0.1", port=port, user=cluster.app_user,
            password=cluster.app_password, database=cluster.database, workload=workload,
            mode=mode, clients=clients, duration=point_duration(args.duration, clients),
            log_dir=os.path.join(args.workdir, "pgbench-logs"),
            proxy_pid=proxy.pid if proxy else None, postmaster_pid=cluster.postmaster_pid())
        r["target"] = target
        # Server backends report their session count once their first transaction ends,
        # or when they exit; a moment's wait lets the last of them do so.
        time.sleep(0.5)
        r["server_logins"] = cluster.sessions() - sessions_before
        if proxy is not None and not proxy.alive():
            status = proxy.process.returncode if proxy.process else None
            r["problems"] = "; ".join(x for x in (f"{proxy.name} exited (status {status})",
                                                   r["problems"]) if x)
            say(f"  {proxy.name} exited during the point; last lines of its log:\n"
                f"{proxy.log_tail()}")
        r["status"] = "ok" if not r["problems"] else "error"
        if r["problems"]:
            name = f"pgbench-{done:02d}-{workload}-{mode}-{clients}-{target}.log"
            with open(os.path.join(args.results_dir, name), "w", encoding="utf-8") as f:
                f.write(r["output"])
        results.append(r)
        spent = time.monotonic() - started
        say(f"[{done:2d}/{runnable}] {workload:11s} {mode:8s} c={clients:<3d} {target:9s} "
            f"{report.num(r.get('tps'), 'int'):>7s} tps  p50 {report.num(r.get('latency_p50_ms'))}"
            f" ms  p99 {report.num(r.get('latency_p99_ms'))} ms  "
            f"proxy CPU {report.num(r.get('proxy_cpu_s_per_10k'))} s/10k  "
            f"server logins {r['server_logins']}  "
            f"other load {report.num(r.get('other_load_cores'), 'mb')}  "
            f"({r['elapsed_s']:.0f} s; eta {spent / done * (runnable - done):.0f} s)"
            + (f"  !! {r['problems']}" if r["problems"] else ""))
    return results


def run_idle(args, proxies):
    results = []
    for proxy in proxies.values():
        say(f"idle clients: {args.idle_clients} SCRAM logins through a fresh {proxy.name}")
        proxy.stop()
        try:
            proxy.start()
            r = idle_clients.run(proxy, args.idle_clients)
        except Exception as e:
            r = {"proxy": proxy.name, "clients_wanted": args.idle_clients,
                 "error": f"{type(e).__name__}: {e}"}
        finally:
            proxy.stop()
        say(f"  {r.get('clients_connected', 0)} held, "
            f"{report.num(r.get('kb_per_idle_client'))} KB per client, "
            f"{report.num(r.get('proxy_cpu_ms_per_login'))} ms CPU per login, "
            f"{r.get('login_failures', '?')} failures"
            + (f": {r['first_failure']}" if r.get("first_failure") else "")
            + (f"  !! {r['error']}" if r.get("error") else ""))
        results.append(r)
    return results


def run_slow(args, cluster, proxies):
    results = []
    for proxy in proxies.values():
        say(f"slow reader: 1 GB result read at {args.slow_rate_mb:g} MB/s for "
            f"{args.slow_seconds:g} s through a fresh {proxy.name}")
        proxy.stop()
        try:
            proxy.start()
            r = slow_reader.run(proxy, cluster, seconds=args.slow_seconds,
                                rate=args.slow_rate_mb * 1048576)
        except Exception as e:
            r = {"proxy": proxy.name, "error": f"{type(e).__name__}: {e}"}
        finally:
            proxy.stop()
        say(f"  read {report.num(r.get('bytes_read_mb'), 'mb')} MB, max RSS "
            f"{report.num(r.get('rss_max_mb'), 'mb')} MB"
            + (f"  !! {r['error']}" if r.get("error") else ""))
        results.append(r)
    return results


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    fd_limit = raise_fd_limit()
    if fd_limit < args.idle_clients + 1000:
        say(f"warning: the file descriptor limit is {fd_limit}; {args.idle_clients} idle "
            "clients need more (run through bench/run.sh, which raises it)")
    os.makedirs(args.results_dir, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    if args.tls_only:
        skip |= {"points", "link", "idle", "slow"}
    started = time.monotonic()

    cluster = Cluster(args.cluster_dir)
    say(f"preparing: replica stopped, pgbench -i -s {args.scale} on the primary")
    prepare_database(cluster, args.scale)
    machine = machine_description(cluster, args.pgsidecar)

    registry = os.path.join(args.workdir, "proxy-pids")
    proxies = {
        "pgsidecar": PgSidecar(args.workdir, cluster, registry, args.pgsidecar, args.pool_size),
        **({"pgsidecar-baseline": PgSidecar(args.workdir, cluster, registry, args.baseline,
                                            args.pool_size, name="pgsidecar-baseline")}
           if args.baseline else {}),
        "pgbouncer": PgBouncer(args.workdir, cluster, registry, args.pool_size,
                               max_client_conn=max(6000, args.idle_clients + 1000)),
    }
    points, idle, slow, link_points, tls = [], [], [], [], ([], [])
    try:
        if "points" not in skip:
            for proxy in proxies.values():
                proxy.start()
                say(f"{proxy.name} on 127.0.0.1:{proxy.port} (pid {proxy.pid})")
            # A few seconds of reads first, so the first point does not pay for a cold cache.
            pgbench_point.run_point(
                host="127.0.0.1", port=cluster.port, user=cluster.app_user,
                password=cluster.app_password, database=cluster.database,
                workload="select-only", mode="simple", clients=10, duration=3,
                log_dir=os.path.join(args.workdir, "pgbench-logs"), proxy_pid=None,
                postmaster_pid=cluster.postmaster_pid())
            points = run_points(args, cluster, proxies)
            for proxy in proxies.values():
                proxy.stop()
        if "link" not in skip and args.link:
            if args.link_scale != args.scale:
                say(f"link points: pgbench -i -s {args.link_scale}")
                pgbench_init(cluster, args.link_scale)
            link_points = link.run(args, cluster, say, reset_between_points)
            if args.link_scale != args.scale:
                pgbench_init(cluster, args.scale)
        if "idle" not in skip:
            idle = run_idle(args, proxies)
        if "slow" not in skip:
            slow = run_slow(args, cluster, proxies)
        if "tls" not in skip:
            tls = tls_points.run(args, cluster, registry, reset_between_points, say)
    finally:
        for proxy in proxies.values():
            proxy.stop()
        for proxy in proxies.values():
            _keep_log_tail(proxy, args.results_dir)

    elapsed = time.monotonic() - started
    report.write_csv(os.path.join(args.results_dir, "points.csv"), report.POINT_COLUMNS,
                     points)
    report.write_csv(os.path.join(args.results_dir, "idle_clients.csv"),
                     report.IDLE_COLUMNS, idle)
    report.write_csv(os.path.join(args.results_dir, "slow_reader.csv"), report.SLOW_COLUMNS,
                     slow)
    report.write_csv(os.path.join(args.results_dir, "link_points.csv"), report.LINK_COLUMNS,
                     link_points)
    tls_points.write_csv(args.results_dir, *tls)
    pictures = charts.write_all(args.results_dir, points, link_points)
    summary = summarize(args, machine, points, idle, slow, elapsed, link_points, pictures) + \
        tls_points.summary(args, *tls)
    with open(os.path.join(args.results_dir, "summary.md"), "w", encoding="utf-8") as f:
        f.write(summary)
    say("\n" + summary)
    say(f"results: {args.results_dir}")
    failed = [p for p in points + link_points + tls[0] if p["status"] == "error"]
    return 1 if failed or any(r.get("error") for r in idle + slow + tls[1]) else 0


def summarize(args, machine, points, idle, slow, elapsed, link_points=(), pictures=()):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"# pgsidecar benchmark, {stamp}", ""]
    parts += [f"- {k}: {v}" for k, v in machine.items()]
    parts += [f"- pgbench: scale {args.scale}, {args.duration} s per point plus 1 s per 100 "
              "clients, -j 2, "
              f"pool of {args.pool_size} server connections per proxy (transaction mode, "
              "SCRAM-SHA-256 logins)",
              f"- Whole run: {elapsed:.0f} s", ""]
    if points:
        parts += ["## Throughput, latency, proxy CPU and memory", "",
                  report.points_table(points), "",
                  "## Added latency at 1 client (p50 against direct)", "",
                  report.added_latency_table(points, ["pgsidecar", "pgbouncer"]
                                             + (["pgsidecar-baseline"] if args.baseline else [])), ""]
    if link_points:
        parts += [f"## Over a slow link ({args.link} ms each way between PostgreSQL and each "
                  f"target, {args.link_duration} s per point, scale {args.link_scale})", "",
                  link.ratios_table(link_points), ""]
    if pictures:
        parts += ["Charts: " + ", ".join(pictures), ""]
    if idle:
        parts += [f"## Memory per idle client ({args.idle_clients} authenticated clients)",
                  "", report.idle_table(idle), ""]
    if slow:
        parts += ["## Slow reader of a 1 GB result", "",
                  f"`{slow_reader.QUERY}`, read through a {4096}-byte receive buffer at "
                  f"{args.slow_rate_mb:g} MB/s for {args.slow_seconds:g} s.", "",
                  report.slow_table(slow), ""]
    return "\n".join(parts)


def _keep_log_tail(proxy, results_dir, lines=2000):
    try:
        with open(proxy.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 512 * 1024))
            tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
    except FileNotFoundError:
        return
    with open(os.path.join(results_dir, f"{proxy.name}.log.tail"), "w",
              encoding="utf-8") as f:
        f.write("\n".join(tail) + "\n")


if __name__ == "__main__":
    sys.exit(main())
