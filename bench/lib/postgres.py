"""The PostgreSQL primary that tests/support/cluster.sh started: its env file, SQL as the
superuser or the application user, and the postmaster's process id."""

import os
import shlex
import subprocess

import psycopg2


class Cluster:
    def __init__(self, state_dir):
        self.state_dir = os.path.realpath(state_dir)
        self.env = _read_env(os.path.join(self.state_dir, "env"))
        self.host = self.env["PGHOST"]
        self.port = int(self.env["PRIMARY_PORT"])
        self.database = self.env["DATABASE"]
        self.app_user = self.env["APP_USER"]
        self.app_password = self.env["APP_PASSWORD"]
        self.superuser = self.env["SUPERUSER"]
        self.superuser_password = self.env["SUPERUSER_PASSWORD"]
        self.pg_bin = self.env["PG_BIN"]
        self.script = self.env["CLUSTER_SCRIPT"]
        self.data_dir = os.path.join(os.path.realpath(os.path.join(self.state_dir, "run")),
                                     "primary")

    def postmaster_pid(self):
        with open(os.path.join(self.data_dir, "postmaster.pid"), encoding="ascii") as f:
            return int(f.readline())

    def connect(self, superuser=False, database=None):
        if superuser:
            user, password = self.superuser, self.superuser_password
        else:
            user, password = self.app_user, self.app_password
        return psycopg2.connect(host=self.host, port=self.port, user=user, password=password,
                                dbname=database or self.database, connect_timeout=10,
                                sslmode="disable")

    def execute(self, statements, superuser=True, database=None):
        """Runs each statement in autocommit mode (VACUUM refuses a transaction block)."""
        conn = self.connect(superuser=superuser, database=database)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def query_one(self, sql, params=None, superuser=True, database=None):
        conn = self.connect(superuser=superuser, database=database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                row = cur.fetchone()
                return row[0] if row else None
        finally:
            conn.close()

    def sessions(self):
        """Sessions ever opened on the benchmark database (pg_stat_database.sessions):
        the difference across a point is how many server logins it caused."""
        return self.query_one("SELECT sessions FROM pg_stat_database WHERE datname = %s",
                              (self.database,), database="postgres")

    def scram_verifier(self, role):
        """The role's SCRAM-SHA-256 verifier from pg_authid, for a proxy's user list."""
        verifier = self.query_one("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                                  (role,), database="postgres")
        if not verifier or not verifier.startswith("SCRAM-SHA-256$"):
            raise RuntimeError(f"role {role} has no SCRAM-SHA-256 verifier: {verifier!r}")
        return verifier

    def cluster_command(self, command):
        subprocess.run(["bash", self.script, command, self.state_dir], check=True,
                       stdout=subprocess.DEVNULL)


def _read_env(path):
    """KEY=VALUE lines as cluster.sh writes them (values quoted by printf %q)."""
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            parts = shlex.split(value)
            env[key] = parts[0] if parts else ""
    return env
