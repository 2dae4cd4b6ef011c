"""One measured point: a pgbench run against one target, with CPU and memory sampled
from /proc while it runs.

Throughput is pgbench's own "tps (without initial connection time)". Latency
percentiles come from pgbench's per-transaction log (-l, sampled at high rates).

CPU is measured over pgbench's steady state: pgbench prints a progress line every
second (-P 1), and at each one the CPU counters of the proxy, of PostgreSQL and of
pgbench itself are read. The window runs from the first progress line to the last, so
it leaves out the logins at the start (500 SCRAM logins are a cost of their own,
reported by the idle-clients test) and the disconnects at the end. Transactions in the
window are the sum of each later line's tps times its interval.

The machine's total busy CPU time is read at the same moments: what is left after the
proxy, PostgreSQL and pgbench is other load on the machine, reported in cores, because
on a small machine anything else running skews every figure.
"""

import glob
import os
import re
import shutil
import subprocess
import threading
import time

import procfs

PROGRESS_RE = re.compile(r"^progress: ([0-9.]+) s, ([0-9.]+) tps")
TPS_RE = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.M)
PROCESSED_RE = re.compile(r"^number of transactions actually processed: (\d+)", re.M)
FAILED_RE = re.compile(r"^number of failed transactions: (\d+)", re.M)
LAT_AVG_RE = re.compile(r"^latency average = ([0-9.]+) ms", re.M)
CONNECT_RE = re.compile(r"^initial connection time = ([0-9.]+) ms", re.M)


class Sample:
    __slots__ = ("t", "tps", "proxy_cpu", "pg_cpu", "pgbench_cpu", "system_busy")

    def __init__(self, t, tps, proxy_cpu, pg_cpu, pgbench_cpu, system_busy):
        self.t, self.tps = t, tps
        self.proxy_cpu, self.pg_cpu, self.pgbench_cpu = proxy_cpu, pg_cpu, pgbench_cpu
        self.system_busy = system_busy


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, int(round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def read_latencies(log_prefix):
    """Per-transaction latencies in microseconds from pgbench's -l files (one per
    thread). Lines of failed or skipped transactions carry a word instead of a number."""
    values = []
    for path in glob.glob(log_prefix + ".*"):
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    values.append(int(parts[2]))
    values.sort()
    return values


def run_point(*, host, port, user, password, database, workload, mode, clients, duration,
              log_dir, proxy_pid, postmaster_pid, timeout_margin=60, script=None, sslmode="disable"):
    """Runs pgbench once and returns a dict of results (see report.CSV_COLUMNS). `script`:
    a custom pgbench script file instead of the built-in `workload`; `sslmode` for libpq."""
    sampling_rate = 1.0 if clients == 1 else 0.25
    os.makedirs(log_dir, exist_ok=True)
    log_prefix = os.path.join(log_dir, "pgbench_log")
    for old in glob.glob(log_prefix + ".*"):
        os.remove(old)
    command = ["pgbench", "-n", "-M", mode, "-c", str(clients), "-j", str(min(2, clients)),
               "-T", str(duration), "-P", "1", "-l", "--log-prefix", log_prefix,
               "--sampling-rate", str(sampling_rate), "-h", host, "-p", str(port),
               "-U", user, database]
    if script:
        command[1:1] = ["-f", script]
    elif workload == "select-only":
        command.insert(1, "-S")
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="10",
               PGSSLMODE=sslmode)

    def take(t, tps, pgbench_pid):
        return Sample(t, tps,
                      procfs.cpu_seconds(proxy_pid) if proxy_pid else None,
                      procfs.server_cpu_seconds(postmaster_pid),
                      procfs.cpu_seconds(pgbench_pid),
                      procfs.system_busy_seconds())

    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True, errors="replace")
    samples, other_stderr, stdout_parts, rss_max = [], [], [], [0]

    def read_stdout():
        stdout_parts.append(proc.stdout.read())

    def read_stderr():
        for line in proc.stderr:
            m = PROGRESS_RE.match(line)
            if m:
                samples.append(take(float(m.group(1)), float(m.group(2)), proc.pid))
            else:
                other_stderr.append(line.rstrip("\n"))

    def sample_rss():
        # The proxy's memory is sampled more often than once a second, so a short
        # peak (e.g. while 500 clients log in) is seen.
        while proc.poll() is None:
            rss = procfs.rss_bytes(proxy_pid) if proxy_pid else None
            if rss:
                rss_max[0] = max(rss_max[0], rss)
            time.sleep(0.1)

    # Each pipe has one reader: progress lines must be seen as they come, not at the end.
    readers = [threading.Thread(target=read_stderr, daemon=True),
               threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=sample_rss, daemon=True)]
    for r in readers:
        r.start()
    timed_out = False
    try:
        proc.wait(timeout=duration + timeout_margin)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        # Also when the run is being stopped (SystemExit from SIGTERM): no pgbench outlives it.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for r in readers:
        r.join(5)
    stdout = "".join(stdout_parts)
    elapsed = time.monotonic() - started

    result = {"workload": workload, "mode": mode, "clients": clients,
              "duration_s": duration, "elapsed_s": round(elapsed, 1),
              "sampling_rate": sampling_rate, "exit_status": proc.returncode}
    tps = TPS_RE.search(stdout or "")
    processed = PROCESSED_RE.search(stdout or "")
    failed = FAILED_RE.search(stdout or "")
    lat_avg = LAT_AVG_RE.search(stdout or "")
    result["tps"] = float(tps.group(1)) if tps else None
    result["transactions"] = int(processed.group(1)) if processed else None
    result["failed"] = int(failed.group(1)) if failed else None
    result["latency_avg_ms"] = float(lat_avg.group(1)) if lat_avg else None
    connect = CONNECT_RE.search(stdout or "")
    result["connect_ms"] = float(connect.group(1)) if connect else None

    latencies = read_latencies(log_prefix)
    result["latency_samples"] = len(latencies)
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    result["latency_p50_ms"] = p50 / 1000.0 if p50 is not None else None
    result["latency_p99_ms"] = p99 / 1000.0 if p99 is not None else None
    result["latency_max_ms"] = latencies[-1] / 1000.0 if latencies else None
    shutil.rmtree(log_dir, ignore_errors=True)

    result.update(_cpu_per_10k(samples))
    result["proxy_rss_max_mb"] = rss_max[0] / 1048576 if rss_max[0] else None

    problems = []
    if timed_out:
        problems.append(f"pgbench killed after {duration + timeout_margin}s")
    if proc.returncode not in (0, None) and not timed_out:
        problems.append(f"pgbench exit status {proc.returncode}")
    aborted = [line for line in other_stderr if "abort" in line or "error" in line.lower()]
    if aborted:
        problems.append(f"{len(aborted)} error lines, first: {aborted[0][:160]}")
    if result["failed"]:
        problems.append(f"{result['failed']} failed transactions")
    if not result["transactions"]:
        problems.append("no transactions" + (
            f" (logins took {result['connect_ms'] / 1000:.1f} s of the {duration} s)"
            if result["connect_ms"] else ""))
    result["problems"] = "; ".join(problems)
    result["output"] = " ".join(command) + "\n" + (stdout or "") + "\n".join(other_stderr)
    return result


def _cpu_per_10k(samples):
    """CPU seconds per 10,000 transactions over the window between the first and the last
    progress line; None where a counter could not be read at both ends."""
    out = {"cpu_window_s": None, "cpu_window_transactions": None,
           "proxy_cpu_s_per_10k": None, "pg_cpu_s_per_10k": None,
           "pgbench_cpu_s_per_10k": None, "other_load_cores": None}
    # A line read after pgbench had exited was sampled too late to match its counters.
    samples = [x for x in samples if x.pgbench_cpu is not None and x.pg_cpu is not None]
    if len(samples) < 2:
        return out
    first, last = samples[0], samples[-1]
    transactions = 0.0
    for prev, cur in zip(samples, samples[1:]):
        transactions += cur.tps * (cur.t - prev.t)
    out["cpu_window_s"] = round(last.t - first.t, 2)
    out["cpu_window_transactions"] = int(transactions)
    if transactions <= 0:
        return out
    for key, attr in (("proxy_cpu_s_per_10k", "proxy_cpu"), ("pg_cpu_s_per_10k", "pg_cpu"),
                      ("pgbench_cpu_s_per_10k", "pgbench_cpu")):
        a, b = getattr(first, attr), getattr(last, attr)
        if a is not None and b is not None:
            out[key] = (b - a) * 10000.0 / transactions
    window = last.t - first.t
    ours = [getattr(last, a) - getattr(first, a) for a in ("proxy_cpu", "pg_cpu", "pgbench_cpu")
            if getattr(first, a) is not None and getattr(last, a) is not None]
    if window > 0:
        other = (last.system_busy - first.system_busy) - sum(ours)
        out["other_load_cores"] = max(0.0, other / window)
    return out
