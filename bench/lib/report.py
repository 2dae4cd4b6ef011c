"""CSV files and the markdown tables printed at the end of a run."""

import csv

POINT_COLUMNS = [
    "workload", "mode", "clients", "target", "status", "tps", "latency_p50_ms",
    "latency_p99_ms", "latency_max_ms", "latency_avg_ms", "latency_samples", "sampling_rate",
    "connect_ms", "transactions",
    "failed", "proxy_cpu_s_per_10k", "pg_cpu_s_per_10k", "pgbench_cpu_s_per_10k",
    "cpu_window_s", "cpu_window_transactions", "server_logins", "other_load_cores",
    "proxy_rss_max_mb",
    "duration_s",
    "elapsed_s", "exit_status", "problems",
]
IDLE_COLUMNS = [
    "proxy", "clients_wanted", "clients_connected", "login_failures", "first_failure",
    "login_seconds", "logins_per_s", "proxy_cpu_ms_per_login", "rss_before_mb",
    "rss_held_mb", "rss_after_close_mb", "kb_per_idle_client", "checked_queries",
    "checked_failures", "proxy_alive",
]
LINK_COLUMNS = [
    "link_ms", "workload", "mode", "clients", "target", "status", "tps", "latency_avg_ms",
    "latency_p50_ms", "latency_p99_ms", "latency_max_ms", "latency_samples",
    "round_trips_per_tx", "transactions", "failed", "proxy_cpu_s_per_10k", "duration_s",
    "problems",
]
SLOW_COLUMNS = [
    "proxy", "query", "read_seconds", "elapsed_s", "target_rate_mb_s", "rcvbuf",
    "bytes_read_mb", "rss_before_mb", "rss_max_mb", "rss_after_mb", "healthy_after",
    "error",
]


def write_csv(path, columns, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in columns})


def _csv_value(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def num(v, style="g"):
    """A figure for a table: 3 significant digits, whole numbers from 1000 up."""
    if v is None:
        return "–"
    if style == "int":
        return f"{v:,.0f}"
    if style == "mb":
        return f"{v:.1f}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _table(header, rows, text_columns=1, trailing_text=0):
    """A markdown table: the first text_columns and the last trailing_text columns are
    left-aligned text, the others right-aligned figures."""
    n = len(header)
    align = [" --- " if i < text_columns or i >= n - trailing_text else " ---: "
             for i in range(n)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def table(header, rows, text_columns=1, trailing_text=0):
    return _table(header, rows, text_columns, trailing_text)


def points_table(points):
    header = ["Workload", "Mode", "Clients", "Target", "TPS", "p50 ms", "p99 ms",
              "Proxy CPU s / 10k tx", "PostgreSQL CPU s / 10k tx", "Proxy RSS MB",
              "Server logins", "Other load (cores)", "Notes"]
    rows = []
    for p in points:
        if p["status"] == "skipped":
            rows.append([p["workload"], p["mode"], p["clients"], p["target"],
                         "–", "–", "–", "–", "–", "–", "–", "–", p["problems"]])
            continue
        rows.append([p["workload"], p["mode"], p["clients"], p["target"],
                     num(p.get("tps"), "int"), num(p.get("latency_p50_ms")),
                     num(p.get("latency_p99_ms")), num(p.get("proxy_cpu_s_per_10k")),
                     num(p.get("pg_cpu_s_per_10k")), num(p.get("proxy_rss_max_mb"), "mb"),
                     num(p.get("server_logins"), "int"), num(p.get("other_load_cores"), "mb"),
                     p.get("problems") or ""])
    return _table(header, rows, text_columns=4, trailing_text=1)


def added_latency_table(points, proxies):
    """p50 at one client through each proxy against direct, per workload and mode."""
    by_key = {(p["workload"], p["mode"], p["target"]): p for p in points
              if p["clients"] == 1 and p["status"] == "ok"}
    header = ["Workload", "Mode", "direct p50 ms"] + \
             [f"{name} p50 ms (added µs)" for name in proxies]
    rows = []
    for workload, mode in sorted({(p["workload"], p["mode"]) for p in points},
                                 key=lambda k: (k[0], ["simple", "extended",
                                                       "prepared"].index(k[1]))):
        direct = by_key.get((workload, mode, "direct"))
        base = direct.get("latency_p50_ms") if direct else None
        row = [workload, mode, num(base)]
        for name in proxies:
            p = by_key.get((workload, mode, name))
            if p is None or p.get("latency_p50_ms") is None:
                row.append("–")
            elif base is None:
                row.append(num(p["latency_p50_ms"]))
            else:
                added = (p["latency_p50_ms"] - base) * 1000.0
                row.append(f"{num(p['latency_p50_ms'])} ({added:+.0f})")
        rows.append(row)
    return _table(header, rows, text_columns=2)


def idle_table(results):
    header = ["Proxy", "Clients held", "Login failures", "RSS before MB", "RSS held MB",
              "KB per idle client", "Proxy CPU ms per login", "Logins / s",
              "RSS after close MB", "Notes"]
    rows = []
    for r in results:
        notes = []
        if r.get("first_failure"):
            notes.append(r["first_failure"])
        if r.get("checked_failures"):
            notes.append(f"{r['checked_failures']}/{r['checked_queries']} held clients "
                         "failed SELECT 1")
        if r.get("error"):
            notes.append(r["error"])
        rows.append([r["proxy"], r.get("clients_connected", "–"),
                     r.get("login_failures", "–"), num(r.get("rss_before_mb"), "mb"),
                     num(r.get("rss_held_mb"), "mb"), num(r.get("kb_per_idle_client")),
                     num(r.get("proxy_cpu_ms_per_login")), num(r.get("logins_per_s"), "int"),
                     num(r.get("rss_after_close_mb"), "mb"), "; ".join(notes)])
    return _table(header, rows, trailing_text=1)


def slow_table(results):
    header = ["Proxy", "Read for s", "MB read", "RSS before MB", "Max RSS MB",
              "Healthy after", "Notes"]
    rows = []
    for r in results:
        rows.append([r["proxy"], num(r.get("elapsed_s")), num(r.get("bytes_read_mb"), "mb"),
                     num(r.get("rss_before_mb"), "mb"), num(r.get("rss_max_mb"), "mb"),
                     "yes" if r.get("healthy_after") else "no", r.get("error") or ""])
    return _table(header, rows, trailing_text=2)
