"""TLS points: pgbench through pgsidecar and through PgBouncer with TLS on the client side
(pgbench with sslmode=require to the proxy, the proxy to PostgreSQL in plain text) and on
the server side (pgbench in plain text, the proxy to PostgreSQL with verify-full), next to
the same points in plain text; then memory per idle TLS client of each proxy.

Both proxies use the same certificates: a CA and a server certificate (localhost,
127.0.0.1) made here with the openssl CLI. PostgreSQL gets ssl = on with that certificate
(ALTER SYSTEM and a reload; plain connections stay allowed). Each proxy accepts TLS and
plain clients (pgsidecar client_tls = "allow", PgBouncer client_tls_sslmode = allow), so
its plain readiness check works; pgbench's sslmode=require makes the client side TLS.
"""

import os
import subprocess

import idle_clients
import pgbench_point
import report
from proxies import PgBouncer, PgSidecar

# side: what is encrypted; each side's targets.
SIDES = {
    "plain": ("direct", "pgsidecar", "pgbouncer"),
    "client": ("direct", "pgsidecar", "pgbouncer"),
    "server": ("pgsidecar", "pgbouncer"),
}
COLUMNS = ["side"] + report.POINT_COLUMNS
IDLE_COLUMNS = ["tls"] + report.IDLE_COLUMNS


def add_arguments(parser):
    parser.add_argument("--tls-only", action="store_true",
                        help="run only the TLS points (the same as --skip points,idle,slow)")
    parser.add_argument("--tls-clients", default="1,50",
                        help="client counts of the TLS points (comma-separated)")
    parser.add_argument("--tls-workloads", default="select-only,tpcb-like")
    parser.add_argument("--tls-mode", default="simple", help="pgbench -M of the TLS points")
    parser.add_argument("--tls-idle-clients", type=int, default=1000,
                        help="idle clients held per proxy, plain and over TLS")


def make_certificates(directory, owner_uid, owner_gid):
    """ca.crt, server.crt and server.key (CN and subjectAltName localhost, 127.0.0.1),
    owned by the server's user: PostgreSQL wants its key 0600 and its own."""
    os.makedirs(directory, exist_ok=True)

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=pgsidecar bench CA", "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr")
    with open(os.path.join(directory, "san.ext"), "w", encoding="ascii") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")
    os.chmod(directory, 0o755)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        os.chown(path, owner_uid, owner_gid)
        os.chmod(path, 0o600 if name.endswith(".key") else 0o644)
    return {name: os.path.join(directory, name) for name in ("ca.crt", "server.crt", "server.key")}


def enable_server_tls(cluster, files):
    cluster.execute([f"ALTER SYSTEM SET ssl_cert_file = '{files['server.crt']}'",
                     f"ALTER SYSTEM SET ssl_key_file = '{files['server.key']}'",
                     "ALTER SYSTEM SET ssl = on", "SELECT pg_reload_conf()"],
                    database="postgres")


def _with_tls(base):
    """A proxy class of base whose config has TLS on one side (self.side)."""

    class TlsProxy(base):
        def __init__(self, *args, side, files, **kwargs):
            self.side, self.files = side, files
            super().__init__(*args, **kwargs)
            self.target = base.name
            self.dir = self.dir + "-tls-" + side
            self.log_path = os.path.join(self.dir, "stderr.log")

        def _write_config(self):
            super()._write_config()
            with open(self.config_path, encoding="utf-8") as f:
                text = f.read()
            text = self._tls_config(text)
            with open(self.config_path, "w", encoding="utf-8") as f:
                f.write(text)

    TlsProxy.__name__ = "Tls" + base.__name__
    return TlsProxy


class TlsPgSidecar(_with_tls(PgSidecar)):
    def _tls_config(self, text):
        if self.side == "server":
            return text.replace("?sslmode=disable",
                                f"?sslmode=verify-full&sslrootcert={self.files['ca.crt']}")
        if self.side == "client":
            return text + (f"\n[tls]\ncert_file = \"{self.files['server.crt']}\"\n"
                           f"key_file = \"{self.files['server.key']}\"\nclient_tls = \"allow\"\n")
        return text


class TlsPgBouncer(_with_tls(PgBouncer)):
    def _tls_config(self, text):
        if self.side == "server":
            return text.replace("server_tls_sslmode = disable\n",
                                "server_tls_sslmode = verify-full\n"
                                f"server_tls_ca_file = {self.files['ca.crt']}\n")
        if self.side == "client":
            return text + (f"client_tls_sslmode = allow\n"
                           f"client_tls_cert_file = {self.files['server.crt']}\n"
                           f"client_tls_key_file = {self.files['server.key']}\n")
        return text


def _proxies(args, cluster, registry, side, files):
    return {
        "pgsidecar": TlsPgSidecar(args.workdir, cluster, registry, args.pgsidecar,
                                  args.pool_size, side=side, files=files),
        "pgbouncer": TlsPgBouncer(args.workdir, cluster, registry, args.pool_size,
                                  max_client_conn=max(6000, args.tls_idle_clients + 1000),
                                  side=side, files=files),
    }


def run(args, cluster, registry, reset_between_points, say):
    """Returns (points, idle results)."""
    st = os.stat(cluster.data_dir)
    files = make_certificates(os.path.join(args.workdir, "tls"), st.st_uid, st.st_gid)
    enable_server_tls(cluster, files)
    points, idle = [], []
    clients_list = [int(c) for c in args.tls_clients.split(",") if c]
    for side, targets in SIDES.items():
        proxies = _proxies(args, cluster, registry, side, files)
        try:
            for name in targets:
                if name in proxies:
                    proxies[name].start()
            for workload in args.tls_workloads.split(","):
                for clients in clients_list:
                    for name in targets:
                        points.append(_point(args, cluster, proxies.get(name), name, side,
                                             workload, clients, reset_between_points, say))
        finally:
            for proxy in proxies.values():
                proxy.stop()
    for tls in (False, True):
        for proxy in _proxies(args, cluster, registry, "client", files).values():
            idle.append(_idle(args, proxy, tls, say))
    return points, idle


def _point(args, cluster, proxy, target, side, workload, clients, reset_between_points, say):
    reset_between_points(cluster)
    sessions_before = cluster.sessions()
    r = pgbench_point.run_point(
        host="127.0.0.1", port=proxy.port if proxy else cluster.port, user=cluster.app_user,
        password=cluster.app_password, database=cluster.database, workload=workload,
        mode=args.tls_mode, clients=clients, duration=args.duration + clients // 100,
        log_dir=os.path.join(args.workdir, "pgbench-logs"),
        proxy_pid=proxy.pid if proxy else None, postmaster_pid=cluster.postmaster_pid(),
        sslmode="require" if side == "client" else "disable")
    r.update(side=side, target=target, server_logins=cluster.sessions() - sessions_before)
    if side == "server":
        # The proxy's server connections are still open: each must be TLS.
        plain = cluster.query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
            "WHERE a.usename = %s AND a.backend_type = 'client backend' AND NOT s.ssl",
            (cluster.app_user,), database="postgres")
        if plain:
            r["problems"] = "; ".join(x for x in (f"{plain} server connections without TLS",
                                                   r["problems"]) if x)
    if proxy is not None and not proxy.alive():
        r["problems"] = "; ".join(x for x in (f"{proxy.name} exited", r["problems"]) if x)
    r["status"] = "ok" if not r["problems"] else "error"
    say(f"tls {side:6s} {workload:11s} c={clients:<3d} {target:9s} "
        f"{report.num(r.get('tps'), 'int'):>7s} tps  p50 {report.num(r.get('latency_p50_ms'))} ms"
        f"  proxy CPU {report.num(r.get('proxy_cpu_s_per_10k'))} s/10k"
        + (f"  !! {r['problems']}" if r["problems"] else ""))
    return r


def _idle(args, proxy, tls, say):
    try:
        proxy.start()
        r = idle_clients.run(proxy, args.tls_idle_clients, tls=tls)
    except Exception as e:
        r = {"proxy": proxy.target, "clients_wanted": args.tls_idle_clients,
             "error": f"{type(e).__name__}: {e}"}
    finally:
        proxy.stop()
    r["proxy"], r["tls"] = proxy.target, "TLS" if tls else "plain"
    say(f"tls idle {r['tls']:5s} {proxy.target}: {r.get('clients_connected', 0)} held, "
        f"{report.num(r.get('kb_per_idle_client'))} KB per client, "
        f"{report.num(r.get('proxy_cpu_ms_per_login'))} ms CPU per login"
        + (f"  !! {r.get('error') or r.get('first_failure')}"
           if r.get("error") or r.get("first_failure") else ""))
    return r


def points_table(points):
    header = ["Side", "Workload", "Clients", "Target", "TPS", "p50 ms", "p99 ms",
              "Proxy CPU s / 10k tx", "PostgreSQL CPU s / 10k tx", "Proxy RSS MB",
              "Other load (cores)", "Notes"]
    rows = [[p["side"], p["workload"], p["clients"], p["target"], report.num(p.get("tps"), "int"),
             report.num(p.get("latency_p50_ms")), report.num(p.get("latency_p99_ms")),
             report.num(p.get("proxy_cpu_s_per_10k")), report.num(p.get("pg_cpu_s_per_10k")),
             report.num(p.get("proxy_rss_max_mb"), "mb"),
             report.num(p.get("other_load_cores"), "mb"), p.get("problems") or ""]
            for p in points]
    return report._table(header, rows, text_columns=4, trailing_text=1)


def idle_table(results):
    header = ["Proxy", "Client link", "Clients held", "KB per idle client",
              "Proxy CPU ms per login", "Logins / s", "Notes"]
    rows = [[r["proxy"], r["tls"], r.get("clients_connected", "–"),
             report.num(r.get("kb_per_idle_client")), report.num(r.get("proxy_cpu_ms_per_login")),
             report.num(r.get("logins_per_s"), "int"),
             "; ".join(x for x in (r.get("first_failure"), r.get("error")) if x)]
            for r in results]
    return report._table(header, rows, text_columns=2, trailing_text=1)


def summary(args, points, idle):
    parts = [""]  # a blank line after the main summary
    if points:
        parts += [f"## TLS: pgbench -M {args.tls_mode}, {args.duration} s per point", "",
                  "plain: no TLS anywhere; client: pgbench sslmode=require to the target, the "
                  "proxy to PostgreSQL in plain text; server: pgbench in plain text, the proxy "
                  "to PostgreSQL with verify-full. Same CA and server certificate for "
                  "PostgreSQL, pgsidecar and PgBouncer.", "", points_table(points), ""]
    if idle:
        parts += [f"## TLS: memory per idle client ({args.tls_idle_clients} authenticated "
                  "clients)", "", idle_table(idle), ""]
    return "\n".join(parts)


def write_csv(results_dir, points, idle):
    report.write_csv(os.path.join(results_dir, "tls_points.csv"), COLUMNS, points)
    report.write_csv(os.path.join(results_dir, "tls_idle_clients.csv"), IDLE_COLUMNS, idle)
