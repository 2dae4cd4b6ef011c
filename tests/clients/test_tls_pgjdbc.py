#!/usr/bin/python3
"""pgjdbc through pgsidecar over TLS: compiles java/PgjdbcTlsTest.java, starts a proxy
with [tls] and client_tls = "require", and runs it (sslmode=verify-full with
sslrootcert, refusals of a plain login and of another CA).

usage: test_tls_pgjdbc.py [transaction|session]...   (default: both)
"""

import os
import tempfile

from harness import Proxy, cluster, run_child, run_modes, tls_files, tls_toml, unique_name
from test_pgjdbc import JDBC_JAR, compile_test, tool

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "java", "PgjdbcTlsTest.java")


def main_for(classes):
    def main(mode):
        c = cluster()
        files = tls_files()
        with Proxy(mode=mode, pool_size=4, workers=2,
                   extra_toml='query_wait_timeout = "30s"\n' + tls_toml(files)) as proxy:
            url = f"jdbc:postgresql://localhost:{proxy.port}/{c.database}"
            run_child([tool("java"), "-cp", os.pathsep.join([classes, JDBC_JAR]), "PgjdbcTlsTest",
                       url, c.user, c.password, unique_name("jdbc_tls"), files + "/ca.crt",
                       files + "/other-ca.crt"],
                      env=proxy.env, timeout=130, what="java PgjdbcTlsTest")
            proxy.expect_alive()
    return main


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="pgsidecar-jdbc-tls-") as classes:
        compile_test(classes, SOURCE)
        run_modes(main_for(classes))
