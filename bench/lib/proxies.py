"""Starting and stopping the two poolers under test, each on a free loopback port with
SCRAM-SHA-256 client authentication, transaction pooling and a pool of the same size.

Both proxies check a client's password against the same SCRAM verifier, copied from the
primary's pg_authid, so neither has to derive keys from a plain password at each login.
"""

import os
import pwd
import random
import signal
import socket
import subprocess
import time

import procfs

# PgBouncer refuses to run as root; the test cluster's servers run as this user already.
RUN_USER = "pgsidecar-test"


def pick_port(excluded=()):
    """A free loopback port in 20000..32000, below the kernel's ephemeral range (32768+),
    so no client socket can be holding it."""
    in_use = _ports_in_use()
    for _ in range(500):
        port = random.randint(20000, 32000)
        if port in excluded or port in in_use:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port in 20000..32000")


def _ports_in_use():
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, encoding="ascii") as f:
                next(f)
                for line in f:
                    ports.add(int(line.split()[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


class Proxy:
    """One proxy process. Subclasses write the config and say how to run it.

    server_port: where the proxy finds PostgreSQL (default: the cluster's port; the link
    mode puts a delay relay there). name: its directory and its name in the tables."""

    name = "proxy"

    def __init__(self, workdir, cluster, pid_registry, server_port=None, name=None):
        if name:
            self.name = name
        self.server_port = server_port or cluster.port
        self.dir = os.path.join(workdir, self.name)
        self.cluster = cluster
        self.pid_registry = pid_registry
        self.port = None
        self.process = None
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.starts = 0

    # -- to override
    def _write_config(self):
        raise NotImplementedError

    def _command(self):
        raise NotImplementedError

    def _popen_user_args(self):
        return {}

    # --
    @property
    def pid(self):
        return self.process.pid if self.process else None

    def start(self, excluded_ports=()):
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port = pick_port(excluded_ports)
        self._write_config()
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start {self.starts} on port {self.port} =====\n".encode())
        log.flush()
        try:
            self.process = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, **self._popen_user_args())
        finally:
            log.close()
        with open(self.pid_registry, "a", encoding="ascii") as f:
            f.write(f"{self.process.pid} {self.dir}\n")
        self._wait_ready()

    def _wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.process.returncode}"
                                   f" during startup:\n{self.log_tail()}")
            try:
                conn = self.connect()
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT 1")
                        cur.fetchone()
                finally:
                    conn.close()
                return
            except Exception as e:  # not listening yet, or not ready to log in
                last_error = e
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s: {last_error}\n"
                           f"{self.log_tail()}")

    def connect(self, connect_timeout=10):
        import psycopg2
        c = self.cluster
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=c.app_user,
                                password=c.app_password, dbname=c.database,
                                connect_timeout=connect_timeout, sslmode="disable")

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, grace=10.0):
        """SIGTERM, then SIGKILL after grace seconds. Returns the exit status or None."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        status = self.process.returncode
        self.process = None
        return status

    def cpu_seconds(self):
        return procfs.cpu_seconds(self.pid) if self.pid else None

    def rss_bytes(self):
        return procfs.rss_bytes(self.pid) if self.pid else None

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class PgSidecar(Proxy):
    name = "pgsidecar"

    def __init__(self, workdir, cluster, pid_registry, binary, pool_size, pool_extra="",
                 **kwargs):
        super().__init__(workdir, cluster, pid_registry, **kwargs)
        self.binary = binary
        self.pool_size = pool_size
        self.pool_extra = pool_extra  # more [pool_defaults] lines

    def _write_config(self):
        c = self.cluster
        verifier = c.scram_verifier(c.app_user)
        config = f"""# Written by bench/lib/proxies.py for one benchmark run.
[listen]
address = "127.0.0.1"
port = {self.port}
workers = 0                      # one event loop per core
max_client_connections = 10000

[auth]
method = "scram-sha-256"

[[users]]
name = "{c.app_user}"
password = "{verifier}"
server_password = "${{BENCH_APP_PASSWORD}}"

[pool_defaults]
mode = "transaction"
size = {self.pool_size}
# PgBouncer's query_wait_timeout (120 s) rather than pgsidecar's 5 s: at 500 clients on a
# pool of 20 on two cores, waits are long, and both proxies should be measured serving
# them, not one of them timing clients out.
query_wait_timeout = "120s"
{self.pool_extra}
[admin]
users = ["{c.app_user}"]

[[databases]]
name = "{c.database}"
primary = "postgres://{c.host}:{self.server_port}/{c.database}?sslmode=disable"
"""
        self.config_path = os.path.join(self.dir, "pgsidecar.toml")
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(config)

    def _command(self):
        return [self.binary, "--config", self.config_path]

    def server_writes(self):
        """total_server_writes of SHOW STATS: client requests written to servers, each one
        exchange over the network to PostgreSQL."""
        import psycopg2
        c = self.cluster
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=c.app_user,
                                password=c.app_password, dbname="pgsidecar",
                                connect_timeout=10, sslmode="disable")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SHOW STATS")
                names = [d[0] for d in cur.description]
                return sum(int(row[names.index("total_server_writes")]) for row in cur.fetchall()
                           if row[names.index("database")] == c.database)
        finally:
            conn.close()

    def _popen_user_args(self):
        env = dict(os.environ, BENCH_APP_PASSWORD=self.cluster.app_password)
        return {"env": env}


class PgBouncer(Proxy):
    name = "pgbouncer"

    def __init__(self, workdir, cluster, pid_registry, pool_size, max_client_conn, **kwargs):
        super().__init__(workdir, cluster, pid_registry, **kwargs)
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn

    def _run_as(self):
        if os.geteuid() != 0:
            return None
        return pwd.getpwnam(RUN_USER)

    def _write_config(self):
        c = self.cluster
        verifier = c.scram_verifier(c.app_user)
        auth_file = os.path.join(self.dir, "userlist.txt")
        with open(auth_file, "w", encoding="utf-8") as f:
            f.write(f'"{c.app_user}" "{verifier}"\n')
        os.chmod(auth_file, 0o600)
        config = f"""; Written by bench/lib/proxies.py for one benchmark run.
[databases]
{c.database} = host={c.host} port={self.server_port} dbname={c.database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {auth_file}
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = {self.max_client_conn}
ignore_startup_parameters = extra_float_digits
server_tls_sslmode = disable
"""
        self.config_path = os.path.join(self.dir, "pgbouncer.ini")
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(config)
        user = self._run_as()
        if user is not None:
            for path in (self.dir, auth_file, self.config_path, self.log_path):
                if os.path.exists(path):
                    os.chown(path, user.pw_uid, user.pw_gid)

    def _command(self):
        return ["pgbouncer", self.config_path]

    def _popen_user_args(self):
        user = self._run_as()
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
