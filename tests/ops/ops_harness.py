"""Helpers for the operations tests: a proxy with [http] and the admin console, psql,
plain HTTP GETs, and a real Prometheus server."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients"))

import harness  # noqa: E402
from harness import TestFailure, expect, log, pick_port  # noqa: E402,F401


def ops_proxy(mode="transaction", pool_size=10, http_port=None, listen_extra=""):
    """A proxy serving [http] on http_port, with the app user allowed on the admin console."""
    c = harness.cluster()
    http_port = http_port or pick_port(avoid=(c.primary_port, c.replica_port))
    proxy = harness.Proxy(mode=mode, pool_size=pool_size,
                          extra_toml="\n".join(["", "[http]", 'address = "127.0.0.1"', f"port = {http_port}",
                                                "", "[admin]", f'users = ["{c.user}"]', ""]))
    proxy.http_port = http_port
    proxy.ready_ports.append(http_port)
    if listen_extra:
        base = proxy.config_text

        def config_text():
            return base().replace("[pool_defaults]", listen_extra + "\n\n[pool_defaults]", 1)
        proxy.config_text = config_text
    return proxy


def http_get(port, path, timeout=5.0):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def psql(proxy, sql, database=None, timeout=30):
    """Runs sql with psql through the proxy; returns (exit code, stdout, stderr)."""
    c = harness.cluster()
    env = dict(os.environ, PGPASSWORD=c.password, PGCONNECT_TIMEOUT="10", PGSSLMODE="disable")
    p = subprocess.run(["psql", "-X", "-A", "-F", "|", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                        "-p", str(proxy.port), "-U", c.user, "-d", database or c.database, "-c", sql],
                       env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def admin(proxy, sql):
    """A SHOW on the admin console: a list of dicts, one per row."""
    code, out, err = psql(proxy, sql, database="pgsidecar")
    expect(code == 0, f"{sql!r} on the admin console failed: {err.strip()}")
    lines = [line for line in out.splitlines() if line and not line.startswith("(")]
    if not lines:
        return []
    header = lines[0].split("|")
    return [dict(zip(header, line.split("|"))) for line in lines[1:]]


class Prometheus:
    """A real Prometheus server (Debian's) scraping the proxy's /metrics every second."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.dir = tempfile.mkdtemp(prefix="pgsidecar-prometheus-")
        self.port = pick_port()
        self.process = None

    def __enter__(self):
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w", encoding="utf-8") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: pgsidecar\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{self.target_port}']\n")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "ab")
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, cwd=self.dir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            expect(self.process.poll() is None, f"prometheus exited: {self.log_tail()}")
            try:
                status, _ = http_get(self.port, "/-/ready", timeout=1)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise TestFailure(f"prometheus did not become ready: {self.log_tail()}")

    def log_tail(self):
        with open(os.path.join(self.dir, "prometheus.log"), encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-20:])

    def query(self, expr):
        """The instant vector of expr, as a list of (labels, float)."""
        status, body = http_get(self.port, "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        expect(status == 200, f"query {expr!r}: HTTP {status}: {body}")
        data = json.loads(body)
        expect(data["status"] == "success", f"query {expr!r}: {body}")
        return [(r["metric"], float(r["value"][1])) for r in data["data"]["result"]]

    def targets_up(self):
        return [v for _, v in self.query('up{job="pgsidecar"}')]

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        if exc[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False
