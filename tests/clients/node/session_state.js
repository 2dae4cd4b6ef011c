// node-postgres through pgsidecar in transaction mode: session state kept, pinned or
// refused (docs/pooling.md), the checks of harness.check_states for node-postgres.
// test_session_state_node_pg.py starts the proxy, keeps its pool of 4 busy with 40
// churning clients, and runs this once per policy:
//
//   node session_state.js pin      each state made, used over 30 transactions, never seen
//                                  by an observer, released by its documented statement
//                                  (SHOW CLIENTS' pinned column, admin console)
//   node session_state.js refuse   each pinning statement answers 0A000, in a transaction
//                                  too; the connection goes on
//   node session_state.js reset    RESET and RESET ALL return to the startup value
//
// Statements with values go as node-postgres sends them: the extended protocol, named
// ({name, text, values}: Parse once per connection, then Bind/Execute) for the uses.
// Connection settings come from the libpq environment variables; exits non-zero on failure.
'use strict';

const assert = require('node:assert/strict');
const { Client } = require('pg');

const USES = 30;
const STARTUP_TIMEOUT = '4321ms';

const ONE = { name: 'ss_one', text: 'SELECT $1::int', values: [1] };

// Each state: made, used (named statement) and what use i answers, what an observer runs and must get (an SQLSTATE
// or a value; the LISTEN state's observer notifies instead), released.
const STATES = [
  { name: 'session SET', make: "SET statement_timeout = '4321ms'", pins: false,
    use: { name: 'ss_setting', text: 'SELECT current_setting($1)', values: ['statement_timeout'] }, answer: () => STARTUP_TIMEOUT,
    observe: { text: 'SHOW statement_timeout' }, unseen: '0', release: 'RESET statement_timeout' },
  { name: 'set_config of a parameter', make: { text: "SELECT set_config('app.tenant', $1, false)", values: ['acme'] },
    pins: false, use: { name: 'ss_tenant', text: 'SELECT current_setting($1)', values: ['app.tenant'] }, answer: () => 'acme',
    observe: { text: "SELECT coalesce(current_setting('app.tenant', true), '')" }, unseen: '', release: 'RESET app.tenant' },
  { name: 'temp table', make: 'CREATE TEMP TABLE ss_t AS SELECT 1 AS v', pins: true,
    use: { name: 'ss_temp', text: 'SELECT count(*)::int FROM ss_t WHERE v = $1', values: [1] }, answer: () => 1,
    observe: { text: 'SELECT count(*) FROM ss_t' }, unseen: '42P01', release: 'DISCARD TEMP' },
  { name: 'advisory lock', make: { text: 'SELECT pg_advisory_lock($1)', values: [4242] }, pins: true,
    use: ONE, answer: () => 1,
    observe: { text: 'SELECT pg_try_advisory_xact_lock($1)', values: [4242] }, unseen: false,
    release: { text: 'SELECT pg_advisory_unlock($1)', values: [4242] } },
  { name: 'LISTEN', make: 'LISTEN ss_ch', pins: true,
    use: ONE, answer: () => 1,
    notify: (i) => ({ text: 'SELECT pg_notify($1, $2)', values: ['ss_ch', String(i)] }), release: 'UNLISTEN *' },
  { name: 'SQL PREPARE', make: 'PREPARE ss_p AS SELECT 7', pins: true,
    use: { name: 'ss_execute', text: 'EXECUTE ss_p' }, answer: () => 7,
    observe: { text: 'EXECUTE ss_p' }, unseen: '26000', release: 'DEALLOCATE ss_p' },
  { name: 'WITH HOLD cursor', pins: true,
    make: { text: 'DECLARE ss_c CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, $1) g', values: [100] },
    use: { name: 'ss_fetch', text: 'FETCH 1 FROM ss_c' }, answer: (i) => i + 1,
    observe: { text: 'FETCH 1 FROM ss_c' }, unseen: '34000', release: 'CLOSE ss_c' },
];

function query(q) {
  return typeof q === 'string' ? { text: q } : q;
}

async function connect(extra = {}) {
  const client = new Client({ connectionTimeoutMillis: 10000, ...extra });
  client.received = [];
  client.on('notification', (n) => client.received.push(n.payload));
  await client.connect();
  return client;
}

// The first column of the first row, null without rows.
async function run(client, q) {
  const result = await client.query({ ...query(q), rowMode: 'array' });
  return result.rows.length > 0 ? result.rows[0][0] : null;
}

async function sqlstate(client, q) {
  try {
    await run(client, q);
  } catch (err) {
    if (!err.code) throw err;
    return err.code;
  }
  return null;
}

async function pinnedReasons(admin) {
  const result = await admin.query({ text: 'SHOW CLIENTS', rowMode: 'array' });
  const column = result.fields.findIndex((f) => f.name === 'pinned');
  assert.ok(column >= 0, 'SHOW CLIENTS has no pinned column');
  return result.rows.map((row) => row[column]).filter((v) => v);
}

async function waitNotification(client, payload) {
  const deadline = Date.now() + 10000;
  while (!client.received.includes(payload)) {
    assert.ok(Date.now() < deadline, `LISTEN: notification ${payload} never arrived (received ${client.received})`);
    await run(client, 'SELECT 1');  // a round trip; arrivals are read meanwhile
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function pin() {
  const client = await connect();
  const observer = await connect();
  const admin = await connect({ database: 'pgsidecar' });
  for (const s of STATES) {
    await run(client, s.make);
    const backends = new Set();
    for (let i = 0; i < USES; i++) {
      assert.equal(await run(client, s.use), s.answer(i), `${s.name}: use ${i}`);
      backends.add(await run(client, 'SELECT pg_backend_pid()'));
      if (s.notify) {
        await run(observer, s.notify(i));
        await waitNotification(client, String(i));
      } else {
        const seen = (await sqlstate(observer, s.observe)) || (await run(observer, s.observe));
        assert.equal(seen, s.unseen, `${s.name}: what the observer saw (${s.observe.text})`);
      }
    }
    if (!s.pins) assert.ok(backends.size > 1, `${s.name}: ${USES} transactions all ran on one server`);
    if (s.pins) assert.equal(backends.size, 1, `${s.name}: servers used while pinned`);
    assert.deepEqual(await pinnedReasons(admin), s.pins ? [s.name] : [], `${s.name}: SHOW CLIENTS before release`);
    await run(client, s.release);
    assert.deepEqual(await pinnedReasons(admin), [], `${s.name}: SHOW CLIENTS after ${query(s.release).text}`);
    console.log(`pin: ${s.name}: kept over ${USES} transactions on ${backends.size} server(s), ` +
                `released by ${query(s.release).text}`);
  }
  await Promise.all([client.end(), observer.end(), admin.end()]);
}

async function refuse() {
  const client = await connect();
  for (const s of STATES.filter((state) => state.pins)) {
    assert.equal(await sqlstate(client, s.make), '0A000', `refuse: ${query(s.make).text}`);
    assert.equal(await run(client, { text: 'SELECT $1::int', values: [2] }), 2, `refuse: the connection after ${s.name}`);
    await run(client, 'BEGIN');
    assert.equal(await sqlstate(client, s.make), '0A000', `refuse in a transaction: ${query(s.make).text}`);
    assert.equal(await sqlstate(client, 'SELECT 1'), '25P02', `refuse: the transaction after ${s.name}`);
    await run(client, 'ROLLBACK');
    assert.equal(await run(client, { text: 'SELECT $1::int', values: [3] }), 3, 'refuse: the connection after ROLLBACK');
  }
  await client.end();
  console.log('refuse: every pinning statement answered 0A000, in a transaction too; the connection went on');
}

async function reset() {
  const client = await connect({ options: '-c statement_timeout=4321' });
  for (const statement of ['RESET statement_timeout', 'RESET ALL']) {
    await run(client, 'SET statement_timeout = 5');
    await run(client, statement);
    for (let i = 0; i < 10; i++) {
      assert.equal(await run(client, { name: 'ss_show', text: 'SHOW statement_timeout' }), STARTUP_TIMEOUT, `after ${statement}`);
    }
  }
  await client.end();
  console.log('reset: RESET and RESET ALL returned to the startup value');
}

const CHECKS = { pin, refuse, reset };

const check = CHECKS[process.argv[2]];
if (!check) {
  console.error(`usage: node session_state.js ${Object.keys(CHECKS).join('|')}`);
  process.exit(2);
}
check().then(
  () => process.exit(0),
  (err) => {
    console.error(`FAILED: ${err.stack || err}`);
    process.exit(1);
  });
