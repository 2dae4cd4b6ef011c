#!/usr/bin/python3
"""node-postgres through pgsidecar, session state under a busy pool (docs/pooling.md):
runs node/session_state.js once per policy against a proxy of pool size 4, 40 psycopg2
clients churning it while the states are pinned (harness.run_session_state).

usage: test_session_state_node_pg.py [transaction|session]...   (default: both)
"""

import os

from harness import run_child, run_modes, run_session_state
from test_node_pg import NODE_DIR, check_installed, node_binary


def check(policy):
    def run(proxy):
        run_child([node_binary(), os.path.join(NODE_DIR, "session_state.js"), policy],
                  env=proxy.env, timeout=100, what=f"node session_state.js {policy}")
    return run


def main(mode):
    check_installed()
    run_session_state(mode, check("pin"), check("refuse"), check("reset"))


if __name__ == "__main__":
    run_modes(main)
