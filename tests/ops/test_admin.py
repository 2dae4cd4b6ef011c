"""The admin console with psql: SHOW STATS | SERVERS | CLIENTS | CONFIG | LISTS |
VERSION | LATENCY, RELOAD and KILL."""

import os
import sys

import psycopg2

from ops_harness import TestFailure, admin, expect, harness, log, ops_proxy, psql


def main():
    with ops_proxy(pool_size=3) as proxy:
        conn = psycopg2.connect(proxy.dsn)
        conn.autocommit = True
        cur = conn.cursor()
        for _ in range(20):
            cur.execute("SELECT 1")

        stats = admin(proxy, "SHOW STATS")
        row = next((r for r in stats if r["database"] == "app"), None)
        expect(row is not None, f"SHOW STATS has no row for app: {stats}")
        expect(int(row["total_xact_count"]) >= 20, f"SHOW STATS: {row}")
        expect(int(row["total_query_count"]) >= 20, f"SHOW STATS: {row}")
        expect(int(row["total_received"]) > 0 and int(row["total_sent"]) > 0, f"SHOW STATS: {row}")

        clients = admin(proxy, "SHOW CLIENTS")
        app_clients = [r for r in clients if r["database"] == "app"]
        expect(len(app_clients) == 1 and app_clients[0]["state"] == "idle", f"SHOW CLIENTS: {clients}")
        expect(any(r["database"] == "pgsidecar" for r in clients), f"SHOW CLIENTS lacks the console: {clients}")

        servers = admin(proxy, "SHOW SERVERS")
        expect(servers and all(r["database"] == "app" and int(r["remote_pid"]) > 0 for r in servers),
               f"SHOW SERVERS: {servers}")

        latency = admin(proxy, "SHOW LATENCY")
        row = next((r for r in latency if r["database"] == "app"), None)
        expect(row and int(row["queries_1m"]) >= 20 and float(row["query_p99_ms"]) > 0, f"SHOW LATENCY: {latency}")

        lists = {r["list"]: int(r["items"]) for r in admin(proxy, "SHOW LISTS")}
        expect(lists.get("databases") == 1 and lists.get("pools") == 1, f"SHOW LISTS: {lists}")
        version = admin(proxy, "SHOW VERSION")
        expect(version and version[0]["version"].startswith("pgsidecar "), f"SHOW VERSION: {version}")

        config = {r["key"]: r["value"] for r in admin(proxy, "SHOW CONFIG")}
        expect(config.get("pool_defaults.size") == "3", f"SHOW CONFIG: {config}")

        # RELOAD: a changed pool default shows in the snapshot of a new console session.
        path = os.path.join(proxy.dir, "pgsidecar.toml")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace("[pool_defaults]", "[pool_defaults]\nquery_wait_timeout = \"7s\"", 1))
        code, out, err = psql(proxy, "RELOAD", database="pgsidecar")
        expect(code == 0 and "RELOAD" in out, f"RELOAD: {code} {out} {err}")
        for _ in range(50):
            config = {r["key"]: r["value"] for r in admin(proxy, "SHOW CONFIG")}
            if config.get("pool_defaults.query_wait_timeout") == "7000ms":
                break
        expect(config.get("pool_defaults.query_wait_timeout") == "7000ms", f"after RELOAD: {config}")

        # KILL: the app client is told with 57P01 and its connection ends.
        code, out, err = psql(proxy, "KILL app", database="pgsidecar")
        expect(code == 0 and "KILL" in out, f"KILL app: {code} {out} {err}")
        try:
            cur.execute("SELECT 1")
            raise TestFailure("a client of the killed database still runs queries")
        except psycopg2.Error as e:
            expect(e.pgcode in ("57P01", None), f"after KILL: {e.pgcode} {e}")
        code, out, err = psql(proxy, "KILL nosuchdb", database="pgsidecar")
        expect(code != 0 and "not configured" in err, f"KILL nosuchdb: {code} {err}")
        # New clients still get in.
        with psycopg2.connect(proxy.dsn) as again:
            again.cursor().execute("SELECT 1")
    log("admin: every SHOW answered, RELOAD took effect, KILL closed the database's clients")


if __name__ == "__main__":
    try:
        main()
    except TestFailure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
