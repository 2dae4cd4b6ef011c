// node-postgres through pgsidecar over TLS: the certificate verified against the test CA
// with the host name checked (ssl: { ca, servername }: node's verify-full), SCRAM with
// channel binding (enableChannelBinding: SCRAM-SHA-256-PLUS, checked on the wire), a
// pg.Pool of 10 connections running named prepared statements and a transaction; then a
// login that must fail: a certificate from another CA, and a wrong server name.
//
// Arguments: CA_FILE OTHER_CA_FILE TABLE. Connection settings come from the libpq
// environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE); exits non-zero
// on failure.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { Client, Pool } = require('pg');

const POOL_SIZE = 10;
const QUERIES = 500;

// The SASL mechanisms the clients chose, as sent in their SASLInitialResponse.
const mechanisms = [];

function recordMechanism(client) {
  const send = client.connection.sendSASLInitialResponseMessage.bind(client.connection);
  client.connection.sendSASLInitialResponseMessage = (mechanism, response) => {
    mechanisms.push(mechanism);
    send(mechanism, response);
  };
}

function tlsOptions(caFile, servername) {
  return { ca: fs.readFileSync(caFile), servername, rejectUnauthorized: true };
}

async function refused(options, expected, what) {
  const client = new Client(options);
  client.on('error', () => {});
  await assert.rejects(client.connect(), (err) => {
    assert.match(String(err.message), expected, `${what}: unexpected error ${err.message}`);
    return true;
  }, `${what}: the login succeeded`);
  await client.end().catch(() => {});
}

async function main() {
  const [caFile, otherCaFile, table] = process.argv.slice(2);
  if (!table) throw new Error('usage: node tls_pool.js CA_FILE OTHER_CA_FILE TABLE');

  const pool = new Pool({
    max: POOL_SIZE, connectionTimeoutMillis: 30000, idleTimeoutMillis: 0,
    ssl: tlsOptions(caFile, 'localhost'), enableChannelBinding: true,
  });
  pool.on('connect', (client) => recordMechanism(client));
  try {
    // 'connect' fires after the login: record on the client before it logs in instead.
    const first = new Client({ ssl: tlsOptions(caFile, 'localhost'), enableChannelBinding: true });
    recordMechanism(first);
    await first.connect();
    assert.ok(first.connection.stream.encrypted, 'the connection is not over TLS');
    const { rows } = await first.query('SELECT 1 AS one');
    assert.deepEqual(rows, [{ one: 1 }]);
    await first.end();
    assert.deepEqual(mechanisms, ['SCRAM-SHA-256-PLUS'], 'enableChannelBinding did not bind the SCRAM login');
    console.log('node-postgres: verify-full (ca, servername) with SCRAM-SHA-256-PLUS');

    const settled = await Promise.allSettled(Array.from({ length: QUERIES }, async (_, i) => {
      const r = await pool.query({ name: `double${i % 3}`, text: `SELECT $1::int * ${2 + (i % 3)} AS v`, values: [i] });
      assert.deepEqual(r.rows, [{ v: i * (2 + (i % 3)) }], `query ${i}`);
    }));
    const failures = settled.filter((r) => r.status === 'rejected');
    if (failures.length > 0) {
      throw new Error(`${failures.length} of ${QUERIES} queries failed over TLS:\n` +
                      failures.slice(0, 5).map((r) => `  ${r.reason.message}`).join('\n'));
    }
    const client = await pool.connect();
    try {
      await client.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
      await client.query('BEGIN');
      for (let i = 0; i < 20; i++) {
        await client.query({ name: 'tls-insert', text: `INSERT INTO ${table} VALUES ($1, $2)`, values: [i, 'x'.repeat(5000)] });
      }
      await client.query('COMMIT');
      const r = await client.query(`SELECT count(*)::int AS n, sum(length(v))::int AS len FROM ${table}`);
      assert.deepEqual(r.rows, [{ n: 20, len: 100000 }], 'rows committed over TLS');
    } finally {
      await client.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      client.release();
    }
    console.log(`node-postgres: ${QUERIES} prepared queries on a TLS pool of ${POOL_SIZE} and a transaction checked`);
  } finally {
    await pool.end();
  }

  await refused({ ssl: tlsOptions(otherCaFile, 'localhost') }, /self.signed|unable to verify|certificate/i,
                'a certificate checked against another CA');
  // node-postgres sets servername to the host unless the host is an address.
  await refused({ host: '127.0.0.1', ssl: tlsOptions(caFile, 'db.example.com') }, /altnames|Hostname|does not match/i,
                'a certificate checked against another host name');
  console.log('node-postgres: another CA and another host name refused');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`FAILED: ${err.stack || err}`);
    process.exit(1);
  });
