#!/usr/bin/python3
"""psycopg 3 through pgsidecar, session state under a busy pool (docs/pooling.md): the
states and checks of test_session_state_psycopg2.py (harness.SESSION_STATES,
harness.check_states), every statement sent with the extended protocol as a named
prepared statement (prepare=True: Parse once per connection, then Bind/Execute), its
parameters bound on the server. So the SET that is kept, the statements that pin, and the
ones refused with 0A000 all arrive as Parse texts, and a named statement of a pinned or
moving client must be there on each server it runs on.

usage: test_session_state_psycopg3.py [transaction|session]...   (default: both)
"""

import psycopg

from harness import Library, run_library_states, run_modes


class Psycopg3(Library):
    def connect(self, dsn, options=None):
        conn = psycopg.connect(dsn, connect_timeout=10, autocommit=True,
                               **({"options": options} if options else {}))
        conn.received = []
        conn.add_notify_handler(lambda n: conn.received.append(n.payload))
        return conn

    def run(self, conn, sql, params=()):
        cur = conn.execute(sql, params or None, prepare=True)
        return cur.fetchone()[0] if cur.description else None

    def sqlstate(self, conn, sql, params=()):
        try:
            self.run(conn, sql, params)
        except psycopg.Error as e:
            return e.sqlstate
        return None

    def notifications(self, conn):
        payloads, conn.received[:] = list(conn.received), []
        return payloads


if __name__ == "__main__":
    run_modes(run_library_states(Psycopg3()))
