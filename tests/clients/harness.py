"""Shared helpers for the client-library tests (Debian's /usr/bin/python3, stdlib only).

The ctest fixture starts one PostgreSQL primary + replica per run and names its env file
in PGSIDECAR_CLUSTER_ENV; PGSIDECAR_BINARY is the built proxy. A test starts its own
proxy in front of the primary:

    with Proxy(mode="transaction", pool_size=10) as p:
        psycopg.connect(p.dsn)      # or p.env for libpq-style environment variables

and leaves the block with the proxy stopped (SIGTERM, SIGKILL after 10 s). A test that
raises inside the block gets the tail of the proxy's stderr printed; a proxy that died
during the test, or did not exit 0 on SIGTERM, fails the test.

Tests are plain scripts: run_modes(body) runs body(mode) for the pool mode(s) named on
the command line (default: both) and exits non-zero on the first failure.

The session-state tests (test_session_state_*.py, docs/pooling.md) share the rest: Churn
(psycopg2 clients keeping a small pool busy), pinned_reasons (SHOW CLIENTS),
run_session_state (which proxy each policy gets) and, for the Python libraries, the
states themselves (check_states over a Library adapter).
"""

import ctypes
import errno
import faulthandler
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

MODES = ("transaction", "session")
PORT_RANGE = (20000, 32000)  # below the kernel's ephemeral range (32768+)
WATCHDOG_SECONDS = 150        # below the ctest TIMEOUT of the client tests (180)

_live_proxies = set()  # for the watchdog


class TestFailure(AssertionError):
    pass


def expect(condition, message):
    """assert that survives python -O, with a message that says what went wrong."""
    if not condition:
        raise TestFailure(message)


def expect_equal(actual, expected, what):
    if actual != expected:
        raise TestFailure(f"{what}: expected {expected!r}, got {actual!r}")


def log(message):
    print(message, flush=True)


def _require_env(name):
    value = os.environ.get(name)
    if not value:
        raise TestFailure(f"{name} is not set: run this test through ctest "
                          f"(ctest -R client), which starts the cluster and sets it")
    return value


class ClusterEnv:
    """The values of the env file written by tests/support/cluster.sh."""

    def __init__(self, path=None):
        path = path or _require_env("PGSIDECAR_CLUSTER_ENV")
        self.values = {}
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if not line or line.startswith("#") or "=" not in line:
                        continue
                    key, raw = line.split("=", 1)
                    # cluster.sh writes values with printf %q: shell-quoted.
                    parts = shlex.split(raw) if raw else [""]
                    self.values[key] = parts[0] if parts else ""
        except OSError as e:
            raise TestFailure(f"cannot read the cluster env file {path}: {e}") from e
        for key in ("PRIMARY_PORT", "REPLICA_PORT", "APP_USER", "APP_PASSWORD", "DATABASE"):
            expect(key in self.values, f"{path} has no {key}")
        self.host = self.values.get("PGHOST", "127.0.0.1")
        self.primary_port = int(self.values["PRIMARY_PORT"])
        self.replica_port = int(self.values["REPLICA_PORT"])
        self.user = self.values["APP_USER"]
        self.password = self.values["APP_PASSWORD"]
        self.database = self.values["DATABASE"]
        self.superuser = self.values.get("SUPERUSER", "")
        self.superuser_password = self.values.get("SUPERUSER_PASSWORD", "")


_cluster = None


def cluster():
    global _cluster
    if _cluster is None:
        _cluster = ClusterEnv()
    return _cluster


def libpq_url(host, port, user, password, database, **params):
    q = urllib.parse.quote
    url = f"postgresql://{q(user, safe='')}:{q(password, safe='')}@{host}:{port}/{q(database, safe='')}"
    params.setdefault("sslmode", "disable")
    return url + "?" + urllib.parse.urlencode(params)


def direct(superuser=False, database=None):
    """libpq URL of the primary itself, bypassing the proxy (for setup and checks)."""
    c = cluster()
    user, password = (c.superuser, c.superuser_password) if superuser else (c.user, c.password)
    return libpq_url(c.host, c.primary_port, user, password, database or c.database)


def server_activity():
    """The primary's view of the app database's sessions, one line each (for the message
    of a test that timed out: did the query reach a server, is a transaction open?)."""
    c = cluster()
    psql = os.path.join(c.values.get("PG_BIN", "/usr/lib/postgresql/15/bin"), "psql")
    query = ("SELECT pid, state, backend_type, wait_event, "
             "round(extract(epoch FROM now() - state_change)::numeric, 1) AS state_age_s, "
             "left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS query "
             "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
             "ORDER BY state, pid")
    try:
        out = subprocess.run([psql, "-X", "-A", "-F", " | ", "-P", "footer=off", "-c", query, direct()],
                             capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(pg_stat_activity unavailable: {e})"
    return out.stdout if out.returncode == 0 else f"(pg_stat_activity failed: {out.stderr.strip()})"


def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            # No SO_REUSEADDR: a port still in TIME_WAIT counts as taken.
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(avoid=()):
    for _ in range(1000):
        port = random.randint(*PORT_RANGE)
        if port not in avoid and _port_free(port):
            return port
    raise TestFailure(f"no free port in {PORT_RANGE[0]}..{PORT_RANGE[1]}")


def _connects(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in a forked child
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child before exec: SIGKILL it when the test process dies, so a test killed
    by ctest's timeout leaves no proxy behind."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _toml_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tls_files():
    """The directory of the test CA and certificates (ca.crt, server.crt/.key,
    client.crt/.key, other-ca.crt), made with the TLS server by cluster.sh start-tls."""
    c = cluster()
    subprocess.run(["bash", c.values["CLUSTER_SCRIPT"], "start-tls", c.values["STATE_DIR"]],
                   check=True, stdout=subprocess.DEVNULL)
    return ClusterEnv().values["TLS_DIR"]


def tls_toml(files, client_tls="require"):
    """A [tls] section with the test server certificate (name localhost, IP 127.0.0.1)."""
    return "\n".join(["", "[tls]",
                      f"cert_file = {_toml_string(files + '/server.crt')}",
                      f"key_file = {_toml_string(files + '/server.key')}",
                      f"client_tls = {_toml_string(client_tls)}", ""])


class Proxy:
    """A pgsidecar child process in front of the test cluster's primary."""

    def __init__(self, mode="transaction", pool_size=10, workers=2, extra_toml="",
                 ready_timeout=15.0):
        expect(mode in MODES, f"unknown pool mode {mode!r}")
        self.mode = mode
        self.pool_size = pool_size
        self.workers = workers
        self.extra_toml = extra_toml
        self.ready_timeout = ready_timeout
        # Further ports (such as [http]) that must accept before the proxy counts as up:
        # the client port is bound first, the HTTP server a moment later.
        self.ready_ports = []
        self.binary = _require_env("PGSIDECAR_BINARY")
        self.cluster = cluster()
        self.port = None
        self.process = None
        self.dir = None
        self._stderr = None

    # --- what tests use -------------------------------------------------------------

    @property
    def dsn(self):
        c = self.cluster
        return libpq_url("127.0.0.1", self.port, c.user, c.password, c.database)

    @property
    def env(self):
        """os.environ plus the libpq variables that point a client at the proxy."""
        c = self.cluster
        env = dict(os.environ)
        env.update(PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER=c.user,
                   PGPASSWORD=c.password, PGDATABASE=c.database, PGSSLMODE="disable")
        return env

    def stderr_tail(self, lines=60):
        path = os.path.join(self.dir, "stderr.log") if self.dir else None
        if not path or not os.path.exists(path):
            return "(no proxy output)"
        with open(path, encoding="utf-8", errors="replace") as f:
            tail = f.readlines()[-lines:]
        return "".join(tail) or "(no proxy output)"

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def expect_alive(self):
        if not self.alive():
            raise TestFailure(f"pgsidecar exited during the test with status "
                              f"{self.process.returncode}")

    # --- lifecycle ------------------------------------------------------------------

    def config_text(self):
        c = self.cluster
        primary = f"postgres://127.0.0.1:{c.primary_port}/{c.database}"
        return "\n".join([
            "[listen]",
            'address = "127.0.0.1"',
            f"port = {self.port}",
            f"workers = {self.workers}",
            "",
            "[pool_defaults]",
            f"mode = {_toml_string(self.mode)}",
            f"size = {self.pool_size}",
            "",
            "[[users]]",
            f"name = {_toml_string(c.user)}",
            f"password = {_toml_string(c.password)}",
            "",
            "[[databases]]",
            f"name = {_toml_string(c.database)}",
            f"primary = {_toml_string(primary)}",
            # Plain keys here override the entry's pool settings; a [table] starts a section.
            self.extra_toml,
            "",
        ])

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="pgsidecar-client-")
        last_error = None
        for _attempt in range(5):
            self.port = pick_port(avoid=(self.cluster.primary_port, self.cluster.replica_port))
            config_path = os.path.join(self.dir, "pgsidecar.toml")
            with open(config_path, "w", encoding="utf-8") as f:
                f.write(self.config_text())
            self._stderr = open(os.path.join(self.dir, "stderr.log"), "ab")
            self.process = subprocess.Popen([self.binary, "--config", config_path],
                                            stdin=subprocess.DEVNULL, stdout=self._stderr,
                                            stderr=self._stderr, cwd=self.dir,
                                            preexec_fn=_die_with_parent)
            deadline = time.monotonic() + self.ready_timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                if _connects(self.port) and all(_connects(p) for p in self.ready_ports):
                    _live_proxies.add(self)
                    log(f"pgsidecar pid {self.process.pid} listening on 127.0.0.1:{self.port} "
                        f"(mode={self.mode}, size={self.pool_size}, workers={self.workers})")
                    return self
                time.sleep(0.02)
            tail = self.stderr_tail()
            if self.process.poll() is None:
                self._stop()
                raise TestFailure(f"pgsidecar did not listen on {self.port} within "
                                  f"{self.ready_timeout}s; its output:\n{tail}")
            last_error = f"pgsidecar exited with {self.process.returncode}; its output:\n{tail}"
            self._stderr.close()
            # Another process may have taken the port between the check and the bind.
            if "address already in use" not in tail.lower():
                break
        self._cleanup(keep=True)
        raise TestFailure(last_error)

    def _stop(self, grace=10.0):
        """SIGTERM, then SIGKILL after grace; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return "killed after not exiting within %.0f s of SIGTERM" % grace
        return self.process.returncode

    def _cleanup(self, keep):
        if self._stderr:
            self._stderr.close()
        if keep or os.environ.get("PGSIDECAR_KEEP_TMP"):
            log(f"proxy files kept in {self.dir}")
            return
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def __exit__(self, exc_type, exc, tb):
        _live_proxies.discard(self)
        died = self.process.poll() is not None
        status = self._stop()
        problem = None
        if died:
            problem = f"pgsidecar exited during the test with status {status}"
        elif status != 0:
            problem = f"pgsidecar did not exit cleanly on SIGTERM: {status}"
        failed = exc_type is not None or problem is not None
        if failed:
            sys.stdout.flush()
            if problem:
                sys.stderr.write(problem + "\n")
            sys.stderr.write(f"----- last lines of pgsidecar (port {self.port}) output -----\n"
                             f"{self.stderr_tail()}-----\n")
            sys.stderr.flush()
        self._cleanup(keep=failed)
        if problem and exc_type is None:
            raise TestFailure(problem)
        return False


def unique_name(prefix):
    """A table name no concurrent test (or the other pool mode) uses."""
    return f"{prefix}_{os.getpid()}_{random.randrange(1 << 30):x}"


def run_modes(body, argv=None):
    """Runs body(mode) for each pool mode named in argv (default both); exits 0 or 1."""
    argv = sys.argv[1:] if argv is None else argv
    modes = argv or list(MODES)
    for mode in modes:
        if mode not in MODES:
            sys.stderr.write(f"usage: {sys.argv[0]} [{'|'.join(MODES)}]...\n")
            sys.exit(2)
    start = time.monotonic()
    _start_watchdog(WATCHDOG_SECONDS)
    for mode in modes:
        log(f"=== {os.path.basename(sys.argv[0])}: {mode} mode ===")
        t0 = time.monotonic()
        try:
            body(mode)
        except Exception:  # every failure, whatever the library raised
            traceback.print_exc()
            log(f"FAILED in {mode} mode after {time.monotonic() - t0:.1f}s")
            sys.exit(1)
        log(f"passed in {mode} mode ({time.monotonic() - t0:.1f}s)")
    log(f"all passed ({time.monotonic() - start:.1f}s)")
    sys.exit(0)


def _start_watchdog(seconds):
    """A test that hangs is stopped here, before ctest kills it, with every thread's stack
    and each running proxy's output printed: a hang is diagnosable like a failure."""
    def fire():
        sys.stdout.flush()
        sys.stderr.write(f"\nWATCHDOG: the test did not finish within {seconds}s; thread stacks:\n")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.write("----- pg_stat_activity of the primary -----\n" + server_activity() + "-----\n")
        for proxy in list(_live_proxies):
            sys.stderr.write(f"----- last lines of pgsidecar (port {proxy.port}) output -----\n"
                             f"{proxy.stderr_tail()}-----\n")
            if proxy.alive():
                proxy.process.kill()
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def run_child(cmd, env, timeout, what):
    """Runs a client program (node, java...) to completion; its output goes to ours."""
    log(f"running {what}: {' '.join(shlex.quote(c) for c in cmd)}")
    try:
        result = subprocess.run(cmd, env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise TestFailure(f"{what} did not finish within {timeout}s") from e
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise TestFailure(f"{cmd[0]} not found: run scripts/install-deps.sh") from e
        raise
    expect(result.returncode == 0, f"{what} failed with exit status {result.returncode}")


# --- session state kept, pinned or refused (docs/pooling.md) ----------------------------

CHURNERS = 40        # clients churning the pool while one client keeps session state
STATE_USES = 30      # transactions each state is used over
STATE_POOL_SIZE = 4  # smaller than the churners: a client not pinned changes servers


def _psycopg2_connect(dsn):
    import psycopg2  # Debian's python3-psycopg2; only the tests that churn need it
    conn = psycopg2.connect(dsn, connect_timeout=10)
    conn.autocommit = True
    return conn


class Churn:
    """CHURNERS clients running short transactions until the block ends."""

    def __init__(self, dsn):
        self.stop = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(dsn,)) for _ in range(CHURNERS)]

    def run(self, dsn):
        try:
            conn = _psycopg2_connect(dsn)
            while not self.stop.is_set():
                with conn.cursor() as cur:
                    cur.execute("BEGIN; SELECT pg_sleep(0.002); COMMIT")
            conn.close()
        except Exception as e:  # reported by __exit__
            self.errors.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()
        expect(not self.errors, f"churning clients failed: {self.errors[:3]}")


def admin_dsn(proxy):
    c = proxy.cluster
    return libpq_url("127.0.0.1", proxy.port, c.user, c.password, "pgsidecar")


def pinned_reasons(admin):
    """SHOW CLIENTS' pinned column, its non-empty values (admin: a DB-API connection to
    the admin console)."""
    with admin.cursor() as cur:
        cur.execute("SHOW CLIENTS")
        column = [d[0] for d in cur.description].index("pinned")
        return [row[column] for row in cur.fetchall() if row[column]]


# The pin proxy lets the test's user read SHOW CLIENTS; a pinned client waits in the queue
# behind CHURNERS others for its first server.
PIN_TOML = 'query_wait_timeout = "30s"\n\n[admin]\nusers = ["app"]'
REFUSE_TOML = 'session_state = "refuse"'


def run_session_state(mode, pin, refuse, reset):
    """The policies: in transaction mode pin(proxy) while Churn keeps the pool busy, then
    refuse(proxy) under session_state = "refuse", reset(proxy) after each; session mode
    (each client keeps its server) has only reset(proxy) to check."""
    if mode == "session":
        with Proxy(mode=mode, pool_size=STATE_POOL_SIZE) as proxy:
            reset(proxy)
            proxy.expect_alive()
        return
    with Proxy(mode=mode, pool_size=STATE_POOL_SIZE, extra_toml=PIN_TOML) as proxy, Churn(proxy.dsn):
        pin(proxy)
        reset(proxy)
        proxy.expect_alive()
    with Proxy(mode=mode, pool_size=STATE_POOL_SIZE, extra_toml=REFUSE_TOML) as proxy:
        refuse(proxy)
        reset(proxy)
        proxy.expect_alive()


# Each state: (name, make, use, the answer to use i, what an observer client runs and gets,
# release, pins), statements as (sql, params) with %s placeholders: psycopg2 fills them in on the client,
# psycopg 3 binds them on the server (Parse/Bind). The LISTEN state's observer notifies
# (what it gets is not compared).
STARTUP_TIMEOUT = "4321ms"
SESSION_STATES = [
    ("session SET", ("SET statement_timeout = '4321ms'", ()), ("SELECT current_setting(%s)", ("statement_timeout",)),
     lambda i: STARTUP_TIMEOUT, (("SHOW statement_timeout", ()), "0"), ("RESET statement_timeout", ()), False),
    ("set_config of a parameter", ("SELECT set_config('app.tenant', %s, false)", ("acme",)),
     ("SELECT current_setting(%s)", ("app.tenant",)), lambda i: "acme",
     (("SELECT coalesce(current_setting('app.tenant', true), '')", ()), ""), ("RESET app.tenant", ()), False),
    ("temp table", ("CREATE TEMP TABLE ss_t AS SELECT 1 AS v", ()), ("SELECT count(*) FROM ss_t WHERE v = %s", (1,)),
     lambda i: 1, (("SELECT count(*) FROM ss_t", ()), "42P01"), ("DISCARD TEMP", ()), True),
    ("advisory lock", ("SELECT pg_advisory_lock(%s)", (4242,)), ("SELECT %s::int", (1,)),
     lambda i: 1, (("SELECT pg_try_advisory_xact_lock(%s)", (4242,)), False), ("SELECT pg_advisory_unlock(%s)", (4242,)), True),
    ("LISTEN", ("LISTEN ss_ch", ()), ("SELECT %s::int", (1,)),
     lambda i: 1, (("SELECT pg_notify(%s, %s)", ("ss_ch", "{i}")), None), ("UNLISTEN *", ()), True),
    ("SQL PREPARE", ("PREPARE ss_p AS SELECT 7", ()), ("EXECUTE ss_p", ()),
     lambda i: 7, (("EXECUTE ss_p", ()), "26000"), ("DEALLOCATE ss_p", ()), True),
    ("WITH HOLD cursor", ("DECLARE ss_c CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, %s) g", (100,)),
     ("FETCH 1 FROM ss_c", ()), lambda i: i + 1, (("FETCH 1 FROM ss_c", ()), "34000"), ("CLOSE ss_c", ()), True),
]


class Library:
    """What check_states needs of a Python client library; the tests subclass it.
    run returns the first column of the first row (None without rows), or raises;
    sqlstate returns the SQLSTATE of the error a statement raised, None without one;
    notifications returns the payloads received since the last call."""

    def connect(self, dsn, options=None):
        raise NotImplementedError

    def run(self, conn, sql, params=()):
        raise NotImplementedError

    def sqlstate(self, conn, sql, params=()):
        raise NotImplementedError

    def notifications(self, conn):
        raise NotImplementedError


def _wait_notification(lib, conn, payload):
    deadline = time.monotonic() + 10
    received = []
    while time.monotonic() < deadline:
        received += lib.notifications(conn)
        if payload in received:
            return
        lib.run(conn, "SELECT %s::int", (1,))  # a round trip reads what arrived
        time.sleep(0.01)
    raise TestFailure(f"LISTEN: notification {payload!r} never arrived (received {received})")


def check_states(lib, proxy):
    """session_state = "pin": each state made, used over STATE_USES transactions while
    the pool churns, never seen by an observer, and released by its documented statement
    (SHOW CLIENTS' pinned column empties). A session SET, or set_config of a parameter,
    changes servers meanwhile."""
    client, observer = lib.connect(proxy.dsn), lib.connect(proxy.dsn)
    admin = _psycopg2_connect(admin_dsn(proxy))
    for name, make, use, answer, (observe, unseen), release, pins in SESSION_STATES:
        lib.run(client, *make)
        backends = set()
        for i in range(STATE_USES):
            expect_equal(lib.run(client, *use), answer(i), f"{name}: use {i}")
            backends.add(lib.run(client, "SELECT pg_backend_pid()"))
            sql, params = observe
            params = tuple(p.format(i=i) if isinstance(p, str) else p for p in params)
            seen = lib.sqlstate(observer, sql, params) or lib.run(observer, sql, params)
            if unseen is not None:
                expect_equal(seen, unseen, f"{name}: what the observer saw ({sql})")
            if name == "LISTEN":
                _wait_notification(lib, client, str(i))
        if not pins:
            expect(len(backends) > 1, f"{name}: {STATE_USES} transactions all ran on one server")
        if pins:
            expect_equal(len(backends), 1, f"{name}: servers used while pinned")
        expect_equal(pinned_reasons(admin), [name] if pins else [], f"{name}: SHOW CLIENTS before {release[0]}")
        lib.run(client, *release)
        expect_equal(pinned_reasons(admin), [], f"{name}: SHOW CLIENTS after {release[0]}")
        log(f"pin: {name}: kept over {STATE_USES} transactions on {len(backends)} server(s), "
            f"released by {release[0]}")
    for conn in (client, observer, admin):
        conn.close()


def check_refused(lib, proxy):
    """session_state = "refuse": each statement that would pin answers 0A000 (and aborts
    the transaction it is in), the connection goes on."""
    client = lib.connect(proxy.dsn)
    for name, make, *_rest, pins in SESSION_STATES:
        if not pins:
            continue
        expect_equal(lib.sqlstate(client, *make), "0A000", f"refuse: {make[0]}")
        expect_equal(lib.run(client, "SELECT %s::int", (2,)), 2, f"refuse: the connection after {name}")
        # Inside a transaction the refusal aborts it, as any error does.
        lib.run(client, "BEGIN")
        expect_equal(lib.sqlstate(client, *make), "0A000", f"refuse in a transaction: {make[0]}")
        expect_equal(lib.sqlstate(client, "SELECT 1"), "25P02", f"refuse: the transaction after {name}")
        lib.run(client, "ROLLBACK")
        expect_equal(lib.run(client, "SELECT %s::int", (3,)), 3, "refuse: the connection after ROLLBACK")
    client.close()
    log("refuse: every pinning statement answered 0A000, in a transaction too; the connection went on")


def check_reset(lib, proxy):
    """RESET and RESET ALL return to the client's startup value (options=-c ...)."""
    client = lib.connect(proxy.dsn, options="-c statement_timeout=4321")
    for reset in ("RESET statement_timeout", "RESET ALL"):
        lib.run(client, "SET statement_timeout = 5")
        lib.run(client, reset)
        for _ in range(10):
            expect_equal(lib.run(client, "SHOW statement_timeout"), STARTUP_TIMEOUT, f"after {reset}")
    client.close()


def run_library_states(lib):
    """run_modes body for a Python library's session-state test."""
    def main(mode):
        run_session_state(mode, lambda p: check_states(lib, p), lambda p: check_refused(lib, p),
                          lambda p: check_reset(lib, p))
    return main
