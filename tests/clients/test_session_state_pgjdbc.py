#!/usr/bin/python3
"""pgjdbc through pgsidecar, session state under a busy pool (docs/pooling.md): compiles
java/PgjdbcSessionStateTest.java and runs it once per policy against a proxy of pool size
4, 40 psycopg2 clients churning it while the states are pinned (harness.run_session_state).

usage: test_session_state_pgjdbc.py [transaction|session]...   (default: both)
"""

import os
import tempfile

from harness import cluster, run_child, run_modes, run_session_state
from test_pgjdbc import JDBC_JAR, compile_test, tool

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "java", "PgjdbcSessionStateTest.java")


def main_for(classes):
    def check(policy):
        def run(proxy):
            c = cluster()
            run_child([tool("java"), "-cp", os.pathsep.join([classes, JDBC_JAR]), "PgjdbcSessionStateTest",
                       policy, "127.0.0.1", str(proxy.port), c.database, c.user, c.password],
                      env=proxy.env, timeout=100, what=f"java PgjdbcSessionStateTest {policy}")
        return run

    def main(mode):
        run_session_state(mode, check("pin"), check("refuse"), check("reset"))
    return main


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="pgsidecar-jdbc-state-") as classes:
        compile_test(classes, SOURCE)
        run_modes(main_for(classes))  # exits; SystemExit still removes the directory
