// node-postgres through pgsidecar: a pg.Pool of 20 connections issues 1,000 concurrent
// queries with named prepared statements ({name, text, values}) and checks every result.
//
// node-postgres sends Parse for a name only the first time each of its connections uses
// it, then only Bind/Execute: a pooler that moves the client to another server must
// re-create the statement there. Connection settings come from the libpq environment
// variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE); exits non-zero on failure.
'use strict';

const assert = require('node:assert/strict');
const { Pool } = require('pg');

const POOL_SIZE = 20;
const QUERIES = 1000;

// Each statement: its query, how to build parameters from i, and the expected rows.
const STATEMENTS = [
  {
    name: 'double',
    text: 'SELECT $1::int * 2 AS v',
    values: (i) => [i],
    expect: (i) => [{ v: i * 2 }],
  },
  {
    name: 'concat',
    text: "SELECT $1::text || '-' || $2::text AS label, length($1::text) AS len",
    values: (i) => [`n${i}`, `x${i % 13}`],
    expect: (i) => [{ label: `n${i}-x${i % 13}`, len: `n${i}`.length }],
  },
  {
    name: 'series',
    text: 'SELECT g, g + $2::int AS shifted FROM generate_series(1, $1::int) AS g ORDER BY g',
    values: (i) => [(i % 5) + 1, i],
    expect: (i) => Array.from({ length: (i % 5) + 1 }, (_, k) => ({ g: k + 1, shifted: k + 1 + i })),
  },
  {
    name: 'json',
    text: "SELECT json_build_object('id', $1::int, 'tags', $2::text[]) AS doc",
    values: (i) => [i, [`a${i}`, 'b']],
    expect: (i) => [{ doc: { id: i, tags: [`a${i}`, 'b'] } }],
  },
  {
    name: 'nullable',
    text: 'SELECT $1::text IS NULL AS missing, coalesce($1::text, $2::text) AS v',
    values: (i) => (i % 2 ? [null, 'fallback'] : [`v${i}`, 'fallback']),
    expect: (i) => [i % 2 ? { missing: true, v: 'fallback' } : { missing: false, v: `v${i}` }],
  },
];

async function runOne(pool, i) {
  const s = STATEMENTS[i % STATEMENTS.length];
  let result;
  try {
    result = await pool.query({ name: s.name, text: s.text, values: s.values(i) });
  } catch (err) {
    throw new Error(`query ${i} (${s.name}) failed: ${err.code || ''} ${err.message}`);
  }
  try {
    assert.deepEqual(result.rows, s.expect(i));
  } catch (err) {
    throw new Error(`query ${i} (${s.name}) returned ${JSON.stringify(result.rows)}, ` +
                    `expected ${JSON.stringify(s.expect(i))}`);
  }
}

// A transaction on one pooled client: named statements inside BEGIN/COMMIT and a rollback.
async function transactions(pool, table) {
  const client = await pool.connect();
  try {
    await client.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    await client.query('BEGIN');
    for (let i = 0; i < 50; i++) {
      await client.query({ name: 'tx-insert', text: `INSERT INTO ${table} VALUES ($1, $2)`, values: [i, `v${i}`] });
    }
    await client.query('COMMIT');
    await client.query('BEGIN');
    await client.query({ name: 'tx-insert', text: `INSERT INTO ${table} VALUES ($1, $2)`, values: [1000, 'gone'] });
    await client.query('ROLLBACK');
    const { rows } = await client.query({ name: 'tx-count', text: `SELECT count(*)::int AS n, sum(id)::int AS s FROM ${table}` });
    assert.deepEqual(rows, [{ n: 50, s: (49 * 50) / 2 }], 'rows after COMMIT and ROLLBACK');
    // An error inside a transaction, then recovery on the same connection.
    await client.query('BEGIN');
    await assert.rejects(
      client.query({ name: 'tx-insert', text: `INSERT INTO ${table} VALUES ($1, $2)`, values: [1, 'duplicate'] }),
      (err) => err.code === '23505');
    await client.query('ROLLBACK');
    const again = await client.query({ name: 'tx-count', text: `SELECT count(*)::int AS n, sum(id)::int AS s FROM ${table}` });
    assert.deepEqual(again.rows, [{ n: 50, s: (49 * 50) / 2 }], 'rows after the failed transaction');
  } finally {
    await client.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    client.release();
  }
}

async function main() {
  const table = process.argv[2];
  if (!table) throw new Error('usage: node prepared_pool.js TABLE_NAME');
  const pool = new Pool({ max: POOL_SIZE, connectionTimeoutMillis: 30000, idleTimeoutMillis: 0 });
  const poolErrors = [];
  pool.on('error', (err) => poolErrors.push(err));
  try {
    const started = Date.now();
    const settled = await Promise.allSettled(Array.from({ length: QUERIES }, (_, i) => runOne(pool, i)));
    const failures = settled.filter((r) => r.status === 'rejected');
    if (failures.length > 0) {
      const shown = failures.slice(0, 10).map((r) => `  ${r.reason.message}`).join('\n');
      throw new Error(`${failures.length} of ${QUERIES} queries failed:\n${shown}`);
    }
    assert.equal(pool.totalCount, POOL_SIZE, `the pool opened ${pool.totalCount} connections, expected ${POOL_SIZE}`);
    console.log(`node-postgres: ${QUERIES} concurrent named-statement queries on a pool of ` +
                `${POOL_SIZE} checked in ${Date.now() - started} ms`);

    // Again, on the now warm connections that only Bind the statements they prepared.
    const second = await Promise.allSettled(Array.from({ length: QUERIES }, (_, i) => runOne(pool, i + QUERIES)));
    const secondFailures = second.filter((r) => r.status === 'rejected');
    if (secondFailures.length > 0) {
      throw new Error(`${secondFailures.length} of ${QUERIES} queries failed on the second round:\n` +
                      secondFailures.slice(0, 10).map((r) => `  ${r.reason.message}`).join('\n'));
    }
    await transactions(pool, table);
    console.log('node-postgres: second round and transactions checked');
    if (poolErrors.length > 0) throw new Error(`idle pool clients failed: ${poolErrors.map((e) => e.message).join('; ')}`);
  } finally {
    await pool.end();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`FAILED: ${err.stack || err}`);
    process.exit(1);
  });
