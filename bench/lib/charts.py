"""PNG charts next to a run's CSV files (matplotlib, Debian's python3-matplotlib):

- throughput.png: TPS by clients, one panel per workload and protocol mode, a line per target
- cpu.png: proxy CPU seconds per 10,000 transactions, the same way
- link_latency.png: latency average (bar) and p99 (tick) of each link workload, per target,
  one panel per link delay and client count
"""

import os

COLORS = {"direct": "#4c72b0", "pgbouncer": "#dd8452", "pgsidecar": "#55a868",
          "pgsidecar-baseline": "#8c8c8c"}  # the last only with --baseline
LINK_TARGETS = ("direct", "pgbouncer", "pgsidecar")
MODES = ["simple", "extended", "prepared"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def write_all(results_dir, points, link_points):
    """Writes the charts that have data; returns their file names (none without matplotlib)."""
    plt = _pyplot()
    if plt is None:
        return []
    written = []
    ok = [p for p in points if p.get("status") == "ok"]
    if ok:
        for name, key, label in (("throughput.png", "tps", "transactions per second"),
                                 ("cpu.png", "proxy_cpu_s_per_10k",
                                  "proxy CPU s per 10,000 transactions")):
            _by_clients(plt, ok, key, label, os.path.join(results_dir, name))
            written.append(name)
    link_ok = [p for p in link_points if p.get("status") == "ok"]
    if link_ok:
        _link_latency(plt, link_ok, os.path.join(results_dir, "link_latency.png"))
        written.append("link_latency.png")
    return written


def _panels(plt, n, width=4.2, height=3.2, columns=3):
    cols = min(columns, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _by_clients(plt, points, key, label, path):
    groups = sorted({(p["workload"], p["mode"]) for p in points},
                    key=lambda g: (g[0], MODES.index(g[1]) if g[1] in MODES else 9))
    fig, axes = _panels(plt, len(groups))
    for ax, (workload, mode) in zip(axes, groups):
        for target, color in COLORS.items():
            xs = sorted((p["clients"], p.get(key)) for p in points
                        if (p["workload"], p["mode"], p["target"]) == (workload, mode, target)
                        and p.get(key) is not None)
            if xs:
                ax.plot([x for x, _ in xs], [y for _, y in xs], marker="o", color=color,
                        label=target)
        ax.set_xscale("log")
        ax.set_title(f"{workload}, -M {mode}", fontsize=10)
        ax.set_xlabel("clients")
        ax.set_ylabel(label, fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _link_latency(plt, points, path):
    panels = sorted({(p["link_ms"], p["clients"]) for p in points})
    fig, axes = _panels(plt, len(panels), width=5.2, height=3.4, columns=2)
    for ax, (delay, clients) in zip(axes, panels):
        mine = [p for p in points if (p["link_ms"], p["clients"]) == (delay, clients)]
        groups = sorted({(p["workload"], p["mode"]) for p in mine},
                        key=lambda g: (g[0], MODES.index(g[1]) if g[1] in MODES else 9))
        width = 0.8 / len(LINK_TARGETS)
        for i, target in enumerate(LINK_TARGETS):
            color = COLORS[target]
            for j, group in enumerate(groups):
                p = next((x for x in mine if (x["workload"], x["mode"], x["target"]) ==
                          group + (target,)), None)
                if p is None or p.get("latency_avg_ms") is None:
                    continue
                x = j + (i - 1) * width
                ax.bar(x, p["latency_avg_ms"], width, color=color,
                       label=target if j == 0 else None)
                if p.get("latency_p99_ms") is not None:
                    ax.plot([x - width / 2, x + width / 2], [p["latency_p99_ms"]] * 2,
                            color="black", linewidth=1)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{w}\n{m}" for w, m in groups], fontsize=7)
        ax.set_title(f"{delay} ms each way, {clients} client{'s' if clients > 1 else ''}",
                     fontsize=10)
        ax.set_ylabel("ms per transaction (bar: avg, tick: p99)", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _read_csv(path):
    import csv
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                try:
                    row[k] = int(v) if v.isdigit() else float(v)
                except ValueError:
                    pass
            rows.append(row)
    return rows


if __name__ == "__main__":
    # Charts of an earlier run: python3 bench/lib/charts.py bench/results/<time>
    import sys
    run = sys.argv[1]
    print(write_all(run, _read_csv(os.path.join(run, "points.csv")),
                    _read_csv(os.path.join(run, "link_points.csv"))))
