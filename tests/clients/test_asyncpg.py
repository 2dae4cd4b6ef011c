#!/usr/bin/python3
"""asyncpg through pgsidecar, with asyncpg's default statement cache: every query is a
named prepared statement (__asyncpg_stmt_N__), prepared once per connection and then
only bound and executed. Behind a transaction-mode pooler that lands a client on a
server that never saw its Parse, naive poolers fail with "prepared statement
__asyncpg_stmt_1__ does not exist" or, worse, run another client's statement of the same
name.

50 connections share a pool of 10; each runs 200 fetches over several statements, in a
per-connection order, so that the same statement name means a different query on
different connections.

usage: test_asyncpg.py [transaction|session]...   (default: both)
"""

import asyncio
import time

import asyncpg

from harness import Proxy, expect, expect_equal, log, run_modes, server_activity

CONNECTIONS = 50
FETCHES = 200
POOL_SIZE = 10
COMMAND_TIMEOUT = 30  # seconds for one query
RUN_TIMEOUT = 120     # seconds for all connections together


async def s_double(conn, i):
    got = await conn.fetchval("SELECT $1::int * 2", i)
    expect_equal(got, i * 2, "SELECT $1::int * 2")


async def s_concat(conn, i):
    row = await conn.fetchrow("SELECT $1::text || '-' || $2::int AS label, $2::int + 1 AS next", f"c{i}", i)
    expect_equal((row["label"], row["next"]), (f"c{i}-{i}", i + 1), "fetchrow with two parameters")


async def s_series(conn, i):
    n = i % 7 + 1
    rows = await conn.fetch("SELECT g, g * $2::bigint AS product FROM generate_series(1, $1::int) g", n, i)
    expect_equal([(r["g"], r["product"]) for r in rows], [(g, g * i) for g in range(1, n + 1)],
                 "fetch of a generate_series")


async def s_sum(conn, i):
    got = await conn.fetchval("SELECT $1::bigint + $2::bigint", i, 1_000_000_000_000)
    expect_equal(got, i + 1_000_000_000_000, "SELECT $1::bigint + $2::bigint")


async def s_array(conn, i):
    got = await conn.fetchval("SELECT array_length($1::int[], 1) + $2::int", list(range(i % 5 + 1)), 100)
    expect_equal(got, i % 5 + 1 + 100, "an int[] parameter")


async def s_null(conn, i):
    row = await conn.fetchrow("SELECT $1::text IS NULL AS is_null, coalesce($1::text, 'none') AS v",
                              None if i % 2 else str(i))
    expect_equal((row["is_null"], row["v"]), (True, "none") if i % 2 else (False, str(i)), "a NULL parameter")


async def s_transaction(conn, i):
    # An explicit transaction: BEGIN and COMMIT around two prepared statements.
    async with conn.transaction():
        a = await conn.fetchval("SELECT $1::int - 1", i)
        b = await conn.fetchval("SELECT txid_current_if_assigned() IS NULL AND $1::int = $1::int", i)
    expect_equal((a, b), (i - 1, True), "statements inside a transaction")


STATEMENTS = [s_double, s_concat, s_series, s_sum, s_array, s_null, s_transaction]


async def client(dsn, index, finished, progress):
    # command_timeout: a query the proxy never answers fails with its place named, instead
    # of hanging the test until ctest kills it.
    conn = await asyncpg.connect(dsn, timeout=30, command_timeout=COMMAND_TIMEOUT)
    try:
        # Rotate the order per connection: __asyncpg_stmt_1__ is a different query on
        # different connections.
        order = STATEMENTS[index % len(STATEMENTS):] + STATEMENTS[:index % len(STATEMENTS)]
        for i in range(FETCHES):
            progress[index] = i
            try:
                await order[i % len(order)](conn, index * 10_000 + i)
            except Exception as e:
                detail = ""
                if isinstance(e, asyncio.TimeoutError):
                    # Where did the query get stuck: on a server, or in the proxy?
                    detail = "; the primary's sessions then:\n" + await asyncio.to_thread(server_activity)
                raise AssertionError(f"connection {index} (pid {conn.get_server_pid()} from the proxy), "
                                     f"fetch {i} ({order[i % len(order)].__name__}): "
                                     f"{type(e).__name__}: {e}{detail}") from e
        # The cache really was used: asyncpg kept its statements prepared.
        cached = len(conn._stmt_cache)  # asyncpg's statement cache (an LRU of prepared statements)
        expect(cached >= len(STATEMENTS), f"connection {index}: only {cached} statements cached")
    finally:
        await conn.close(timeout=10)
    finished[index] = True


async def run_clients(dsn):
    finished = [False] * CONNECTIONS
    progress = [-1] * CONNECTIONS
    t0 = time.monotonic()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(client(dsn, i, finished, progress) for i in range(CONNECTIONS)),
                           return_exceptions=True), RUN_TIMEOUT)
    except asyncio.TimeoutError:
        stuck = [f"{i} at fetch {progress[i]}" for i in range(CONNECTIONS) if not finished[i]]
        raise AssertionError(f"the clients did not finish within {RUN_TIMEOUT}s; unfinished connections: "
                             + ", ".join(stuck)) from None
    failures = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    if failures:
        lines = [f"  connection {i}: {type(r).__name__}: {r}" for i, r in failures[:10]]
        raise AssertionError(f"{len(failures)} of {CONNECTIONS} connections failed:\n" + "\n".join(lines))
    expect(all(finished), "not every connection finished")
    elapsed = time.monotonic() - t0
    log(f"asyncpg: {CONNECTIONS} connections x {FETCHES} prepared fetches checked in {elapsed:.1f}s")


async def check_errors_keep_connection(dsn):
    """A failing prepared statement (at Parse and at execution) leaves the connection
    and its statement cache working."""
    conn = await asyncpg.connect(dsn, timeout=30, command_timeout=COMMAND_TIMEOUT)
    try:
        for _ in range(3):
            try:
                await conn.fetchval("SELECT missing_column FROM generate_series(1, $1::int)", 2)
                raise AssertionError("a query with a missing column succeeded")
            except asyncpg.exceptions.UndefinedColumnError:
                pass
            try:
                await conn.fetchval("SELECT 10 / $1::int", 0)
                raise AssertionError("division by zero succeeded")
            except asyncpg.exceptions.DivisionByZeroError:
                pass
            expect_equal(await conn.fetchval("SELECT 10 / $1::int", 5), 2, "the same statement after its error")
        # Server-side PREPARE through asyncpg's explicit API, reused.
        stmt = await conn.prepare("SELECT $1::int * $1::int")
        for i in range(50):
            expect_equal(await stmt.fetchval(i), i * i, "an explicitly prepared statement")
    finally:
        await conn.close(timeout=10)


def main(mode):
    # Session mode: each of the 50 connections keeps a server for its whole life, so
    # most wait their turn; give them time to.
    with Proxy(mode=mode, pool_size=POOL_SIZE, workers=2, extra_toml='query_wait_timeout = "60s"') as proxy:
        asyncio.run(run_clients(proxy.dsn))
        asyncio.run(check_errors_keep_connection(proxy.dsn))
        proxy.expect_alive()


if __name__ == "__main__":
    run_modes(main)
