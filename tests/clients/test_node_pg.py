#!/usr/bin/python3
"""node-postgres (npm pg) through pgsidecar: starts a proxy, runs node/prepared_pool.js
against it with the libpq environment variables, and fails when it does.

node_modules comes from scripts/install-deps.sh (npm ci in tests/clients/node).

usage: test_node_pg.py [transaction|session]...   (default: both)
"""

import os
import shutil

from harness import Proxy, TestFailure, run_child, run_modes, unique_name

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")


def node_binary():
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise TestFailure("node is not installed: run scripts/install-deps.sh")
    return node


def check_installed():
    if not os.path.isfile(os.path.join(NODE_DIR, "node_modules", "pg", "package.json")):
        raise TestFailure(f"the npm package pg is not installed in {NODE_DIR}/node_modules: run "
                          "scripts/install-deps.sh (or: npm ci --prefix tests/clients/node)")


def main(mode):
    check_installed()
    node = node_binary()
    # The script's pg.Pool keeps 20 connections open; in session mode each holds a server
    # for its life, so the server pool must fit them all. Transaction mode shares 10.
    pool_size = 10 if mode == "transaction" else 25
    with Proxy(mode=mode, pool_size=pool_size, workers=2) as proxy:
        run_child([node, os.path.join(NODE_DIR, "prepared_pool.js"), unique_name("node_tx")],
                  env=proxy.env, timeout=100, what="node prepared_pool.js")
        proxy.expect_alive()


if __name__ == "__main__":
    run_modes(main)
