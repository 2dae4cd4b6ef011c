#!/usr/bin/python3
"""node-postgres (npm pg) through pgsidecar over TLS: starts a proxy with [tls] and
client_tls = "require" and runs node/tls_pool.js against it (verify-full against the test
CA, SCRAM-SHA-256-PLUS, refusals on another CA or host name).

usage: test_tls_node_pg.py [transaction|session]...   (default: both)
"""

import os

from harness import Proxy, run_child, run_modes, tls_files, tls_toml, unique_name
from test_node_pg import NODE_DIR, check_installed, node_binary


def main(mode):
    check_installed()
    node = node_binary()
    files = tls_files()
    with Proxy(mode=mode, pool_size=10, workers=2, extra_toml=tls_toml(files)) as proxy:
        env = dict(proxy.env)
        env["PGHOST"] = "localhost"
        del env["PGSSLMODE"]  # node-postgres takes TLS from the ssl option
        run_child([node, os.path.join(NODE_DIR, "tls_pool.js"), files + "/ca.crt",
                   files + "/other-ca.crt", unique_name("node_tls")],
                  env=env, timeout=100, what="node tls_pool.js")
        proxy.expect_alive()


if __name__ == "__main__":
    run_modes(main)
