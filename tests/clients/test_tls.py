"""psycopg 3 and asyncpg through pgsidecar over TLS ([tls], docs/tls.md): verify-full
against the test CA (cluster.sh start-tls makes it), psycopg with channel_binding=require
(SCRAM-SHA-256-PLUS), asyncpg with an ssl.SSLContext; prepared statements and a
transaction over the encrypted connection, and client_tls = "require" refusing plain."""

import asyncio
import ssl

import asyncpg
import psycopg

import harness
from harness import expect, expect_equal, log


def body(mode):
    files = harness.tls_files()
    with harness.Proxy(mode=mode, pool_size=4, extra_toml=harness.tls_toml(files)) as proxy:
        c = proxy.cluster
        url = harness.libpq_url("localhost", proxy.port, c.user, c.password, c.database,
                                sslmode="verify-full", sslrootcert=files + "/ca.crt",
                                channel_binding="require")
        with psycopg.connect(url, prepare_threshold=0, autocommit=True) as conn:
            expect(conn.pgconn.ssl_in_use, "psycopg: the connection is not over TLS")
            for i in range(200):
                expect_equal(conn.execute("SELECT %s::int + 1", (i,)).fetchone()[0], i + 1,
                             "psycopg prepared statement over TLS")
            with conn.transaction():
                expect_equal(conn.execute("SELECT repeat('x', 100000)").fetchone()[0],
                             "x" * 100000, "a 100 kB value over TLS")
        log("psycopg 3: verify-full with channel_binding=require")

        try:
            psycopg.connect(proxy.dsn).close()
            raise harness.TestFailure("a plain login was accepted under client_tls = require")
        except psycopg.OperationalError as e:
            expect("requires TLS" in str(e), f"unexpected refusal: {e}")
        log("psycopg 3: plain login refused under client_tls = require")

        async def with_asyncpg():
            context = ssl.create_default_context(cafile=files + "/ca.crt")
            conn = await asyncpg.connect(host="localhost", port=proxy.port, user=c.user,
                                         password=c.password, database=c.database, ssl=context)
            try:
                expect(conn.get_server_version() is not None, "asyncpg: no server version")
                for i in range(200):
                    expect_equal(await conn.fetchval("SELECT $1::int * 2", i), i * 2,
                                 "asyncpg prepared statement over TLS")
                async with conn.transaction():
                    expect_equal(await conn.fetchval("SELECT count(*) FROM generate_series(1, 5000)"),
                                 5000, "asyncpg in a transaction over TLS")
            finally:
                await conn.close()

        asyncio.run(with_asyncpg())
        log("asyncpg: verify-full through an ssl.SSLContext")
        proxy.expect_alive()


if __name__ == "__main__":
    harness.run_modes(body)
