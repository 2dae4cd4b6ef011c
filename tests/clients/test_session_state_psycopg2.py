#!/usr/bin/python3
"""psycopg2 through pgsidecar, session state under a busy pool (docs/pooling.md): 40
clients churn a pool of 4 while one client creates each kind of session state and uses it
over 30 transactions. With session_state = "pin" it keeps working and is released at the
documented moment (SHOW CLIENTS' pinned column empties); with "refuse" the creating
statement fails with 0A000 and the connection goes on; an observer never sees it; LISTEN's
notifications arrive. RESET and RESET ALL return to the client's startup value, in both
pool modes. The states and checks are harness.SESSION_STATES and harness.check_states;
psycopg2 sends every statement as a simple query, its parameters filled in on the client.

usage: test_session_state_psycopg2.py [transaction|session]...   (default: both)
"""

import psycopg2

from harness import Library, run_library_states, run_modes


class Psycopg2(Library):
    def connect(self, dsn, options=None):
        conn = psycopg2.connect(dsn, connect_timeout=10, **({"options": options} if options else {}))
        conn.autocommit = True
        return conn

    def run(self, conn, sql, params=()):
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.fetchone()[0] if cur.description else None

    def sqlstate(self, conn, sql, params=()):
        try:
            self.run(conn, sql, params)
        except psycopg2.Error as e:
            return e.pgcode
        return None

    def notifications(self, conn):
        conn.poll()
        payloads = [n.payload for n in conn.notifies]
        conn.notifies.clear()
        return payloads


if __name__ == "__main__":
    run_modes(run_library_states(Psycopg2()))
