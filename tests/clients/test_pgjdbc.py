#!/usr/bin/python3
"""pgjdbc (Debian's libpostgresql-jdbc-java) through pgsidecar: compiles
java/PgjdbcClientTest.java into a temporary directory, starts a proxy and runs it.

usage: test_pgjdbc.py [transaction|session]...   (default: both)
"""

import os
import shutil
import subprocess
import sys
import tempfile

from harness import Proxy, TestFailure, cluster, run_child, run_modes, unique_name

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "java", "PgjdbcClientTest.java")
JDBC_JAR = os.environ.get("PGSIDECAR_JDBC_JAR", "/usr/share/java/postgresql.jar")
THREADS = 6  # as in PgjdbcClientTest.java


def tool(name):
    path = shutil.which(name)
    if path is None:
        raise TestFailure(f"{name} is not installed: run scripts/install-deps.sh (default-jdk-headless)")
    return path


def compile_test(out_dir, source=SOURCE):
    if not os.path.isfile(JDBC_JAR):
        raise TestFailure(f"{JDBC_JAR} is missing: run scripts/install-deps.sh (libpostgresql-jdbc-java)")
    cmd = [tool("javac"), "-Xlint:all", "-Werror", "-cp", JDBC_JAR, "-d", out_dir, source]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise TestFailure(f"javac failed with exit status {result.returncode}")


def main_for(classes):
    def main(mode):
        c = cluster()
        # Transaction mode: 6 connections share 3 servers, so statements must follow them
        # from server to server. Session mode: each connection keeps a server of its own.
        pool_size = 3 if mode == "transaction" else THREADS
        with Proxy(mode=mode, pool_size=pool_size, workers=2, extra_toml='query_wait_timeout = "30s"') as proxy:
            url = f"jdbc:postgresql://127.0.0.1:{proxy.port}/{c.database}"
            run_child([tool("java"), "-cp", os.pathsep.join([classes, JDBC_JAR]), "PgjdbcClientTest",
                       url, c.user, c.password, unique_name("jdbc_batch"), mode],
                      env=proxy.env, timeout=130, what="java PgjdbcClientTest")
            proxy.expect_alive()
    return main


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="pgsidecar-jdbc-") as classes:
        compile_test(classes)
        run_modes(main_for(classes))  # exits; SystemExit still removes the directory
