/**
 * npm run bench:downtime — what a downtime costs and how catch-up recovers it (issue 12).
 *
 * GHL (the emulator, bench/downtime-emulator.ts) runs in its own process with GHL's real rate limit and generates the
 * load open loop: LOCATIONS × RATE messages/s. The bridge is the built CLI (`node dist/cli/main.js start`) in a child
 * process on PostgreSQL (default) or the embedded store, relaying to a generic HTTP channel (a sink in this process
 * that answers `delivered` and counts sends per webhook-id = GHL messageId). One status call per message.
 *
 * Two phases in one run, on the same bridge and store:
 *   baseline  the load for BEFORE + DOWN seconds, no downtime: time from the last message offered until all are
 *             delivered.
 *   downtime  the same load; BEFORE s in, the bridge is stopped (SIGKILL, or SIGTERM with --signal SIGTERM) and
 *             started again DOWN s after the signal; the load stops at the restart. GHL loses the deliveries it
 *             attempts meanwhile (no retry on connection refused); catch-up (default settings) finds them.
 * Reported: messages offered, lost by GHL, caught up, time from restart until every message is delivered (target
 * ≤ 60 s), GHL API calls per location during the recovery against the 10 req/s budget, duplicates (must be 0), and the
 * downtime phase's drain time as a ratio of the baseline's.
 *
 *   npm run bench:downtime -- [--store postgres|pglite] [--down-sec 30] [--before-sec 10] [--signal SIGKILL|SIGTERM]
 *                             [--locations 10] [--rate 9] [--timeout-sec 600]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import pg from 'pg';
import { generateKeySpec } from '../src/infra/crypto/aes.js';
import { install, SCOPES } from '../test/provider/harness.js';
import { PG_URL, postgresAvailable, SHIPPED_LOG_LEVEL, startEmulator, stopChild, table } from './common.js';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'postgres' },
    'down-sec': { type: 'string', default: '30' },
    'before-sec': { type: 'string', default: '10' },
    signal: { type: 'string', default: 'SIGKILL' },
    locations: { type: 'string', default: '10' },
    rate: { type: 'string', default: '9' },
    'timeout-sec': { type: 'string', default: '600' },
  },
});
const STORE = values.store === 'pglite' ? 'pglite' : 'postgres';
const DOWN = Number(values['down-sec']);
const BEFORE = Number(values['before-sec']);
const SIGNAL = values.signal === 'SIGTERM' ? 'SIGTERM' : 'SIGKILL';
const LOCS = Number(values.locations);
const RATE = Number(values.rate);
const TIMEOUT = Number(values['timeout-sec']) * 1000;
const ADMIN = `bench-admin-${randomBytes(12).toString('hex')}`;
const BUDGET = 10; // GHL: 100 requests / 10 s per location
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (STORE === 'postgres' && !(await postgresAvailable())) {
  console.error(`PostgreSQL not reachable at ${PG_URL} (BENCH_DATABASE_URL); use --store pglite`);
  process.exit(1);
}

// ------------------------------------------------------------------ GHL, the channel's far end, the store

const { child: emuChild, world, call: emu } = await startEmulator(['bench/downtime-emulator.ts', String(LOCS)]);

// The external system: answers `delivered` at once; counts every send per webhook-id (the GHL messageId).
const sendsPerId = new Map<string, number[]>();
const sink = Fastify({ logger: false });
sink.post('/out', async (req) => {
  const id = String(req.headers['webhook-id'] ?? '');
  const at = sendsPerId.get(id) ?? [];
  at.push(Date.now());
  sendsPerId.set(id, at);
  return { status: 'delivered', id: `sink-${id}` };
});
const sinkUrl = `${await sink.listen({ port: 0, host: '127.0.0.1' })}/out`;

const schema = `bench_${randomBytes(4).toString('hex')}`;
const dataDir = STORE === 'pglite' ? mkdtempSync(join(tmpdir(), 'ghl-bridge-downtime-')) : undefined;
const port = await new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => resolve(p));
  });
});
const bridgeUrl = `http://127.0.0.1:${port}`;
const env: NodeJS.ProcessEnv = {
  ...process.env,
  SANDBOX: 'false',
  GHL_CLIENT_ID: world.clientId,
  GHL_CLIENT_SECRET: world.clientSecret,
  GHL_API_BASE: world.baseUrl,
  GHL_MARKETPLACE_BASE: world.baseUrl,
  GHL_SCOPES: SCOPES,
  GHL_CONVERSATION_PROVIDER_ID: world.conversationProviderId,
  GHL_RECONCILE_INTERVAL_MIN: '0',
  WEBHOOK_EXTRA_ED25519_KEYS: world.keys.ed25519PublicKeyPem,
  PUBLIC_URL: 'http://bridge.test',
  TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
  ADMIN_API_KEY: ADMIN,
  HOST: '127.0.0.1',
  PORT: String(port),
  // The shipped log level unless BENCH_BRIDGE_LOG names another; BENCH_BRIDGE_LOG also shows the bridge's log lines
  // on this process's stdout (by default they are written and discarded, as a shipper would read them).
  LOG_LEVEL: process.env.BENCH_BRIDGE_LOG ?? SHIPPED_LOG_LEVEL,
  DATABASE_SCHEMA: schema,
  ...(STORE === 'postgres' ? { DATABASE_URL: PG_URL } : { DATA_DIR: dataDir }),
};

// ------------------------------------------------------------------ the bridge, a real child process

/** Starts `ghl-bridge start` (the build); resolves once /readyz answers 200, with the spawn and ready times. */
async function startBridge(): Promise<{ proc: ChildProcess; spawnedAt: number; readyAt: number }> {
  const spawnedAt = Date.now();
  const proc = spawn(process.execPath, ['dist/cli/main.js', 'start'], {
    env,
    stdio: ['ignore', process.env.BENCH_BRIDGE_LOG ? 'inherit' : 'ignore', 'inherit'],
  });
  let exited = false;
  proc.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error('the bridge exited during start-up');
    if (Date.now() - spawnedAt > 120_000) throw new Error('the bridge was not ready within 120 s');
    const ok = await fetch(`${bridgeUrl}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { proc, spawnedAt, readyAt: Date.now() };
    await sleep(5); // polling an address that is not listening yet: nothing to wait on but time
  }
}
const exitOf = (p: ChildProcess) =>
  p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r));

let bridge = await startBridge();
const contacts: Array<{ loc: string; id: string }> = [];
const perLoc: string[][] = [];
for (const [i, loc] of world.locationIds.entries()) {
  await install(bridgeUrl, loc);
  const r = await fetch(`${bridgeUrl}/admin/channels/${loc}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      config: { kind: 'http', url: sinkUrl, signingSecret: `whsec_${randomBytes(32).toString('base64')}` },
    }),
  });
  if (!r.ok) throw new Error(`channel ${loc}: ${r.status} ${await r.text()}`);
  perLoc.push(await emu<string[]>('/_bench/contacts', { locationId: loc, n: 20, offset: i * 20 }));
}
// Round robin over the locations, so each gets RATE messages/s.
for (let k = 0; k < 20; k++)
  for (const [i, ids] of perLoc.entries()) contacts.push({ loc: world.locationIds[i]!, id: ids[k]! });
await fetch(`${world.baseUrl}/_emulator/apps/${world.clientId}`, {
  method: 'PATCH',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ providerDeliveryUrl: `${bridgeUrl}/webhooks/ghl/provider` }),
});

interface Report {
  offered: number;
  done: boolean;
  firstOfferedAt: number;
  lastOfferedAt: number;
  final: number;
  pending: number;
  lastFinalAt: number;
  outcomes: Record<string, number>;
  window: { offered: number; final: number; lastFinalAt: number };
  hist: number[];
  calls: Record<string, { export: number; contact: number; status: number; other: number; r429: number }>;
}
const report = (name: string, from = 0, to = Number.MAX_SAFE_INTEGER, bin = 0) =>
  emu<Report>(`/_bench/report?name=${name}&from=${from}&to=${to}&bin=${bin}`);
async function untilAllFinal(name: string): Promise<Report> {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const r = await report(name);
    if (r.done && r.final === r.offered) return r;
    if (Date.now() > deadline) throw new Error(`${name}: ${r.pending} of ${r.offered} still pending after the timeout`);
    await sleep(250); // polling GHL's state, as an operator's dashboard would
  }
}
const offer = (name: string, secs: number) =>
  emu('/_bench/run', { name, contacts, rate: LOCS * RATE, secs, providerId: world.conversationProviderId });
/** Calls per location over [from, to): the busiest location's figures. */
function busiest(r: Report, secs: number) {
  const rows = Object.values(r.calls);
  const tot = (x: (typeof rows)[number]) => x.export + x.contact + x.status + x.other;
  const max = rows.reduce(
    (a, b) => (tot(b) > tot(a) ? b : a),
    rows[0] ?? { export: 0, contact: 0, status: 0, other: 0, r429: 0 },
  );
  return {
    catchup: max.export + max.contact,
    all: tot(max),
    perSec: tot(max) / secs,
    r429: rows.reduce((s, x) => s + x.r429, 0),
    avgCatchup: rows.reduce((s, x) => s + x.export + x.contact, 0) / Math.max(1, rows.length),
  };
}

// Let the install-time API calls leave GHL's 10 s window.
await sleep(10_000);

// ------------------------------------------------------------------ baseline: the same load, no downtime

const LOAD = BEFORE + DOWN;
await offer('baseline', LOAD);
const base = await untilAllFinal('baseline');
const baseDrainMs = base.lastFinalAt - base.lastOfferedAt;
const baseBusy = busiest(
  await report('baseline', base.firstOfferedAt, base.lastFinalAt + 1),
  (base.lastFinalAt - base.firstOfferedAt) / 1000,
);
await sleep(10_000);

// ------------------------------------------------------------------ downtime

const sends0 = new Map([...sendsPerId].map(([k, v]) => [k, [...v]]));
await offer('downtime', LOAD);
await sleep(BEFORE * 1000); // the load's own clock: the signal comes BEFORE s into it
const stoppedAt = Date.now();
bridge.proc.kill(SIGNAL);
await exitOf(bridge.proc);
const exitedAt = Date.now();
await sleep(Math.max(0, stoppedAt + DOWN * 1000 - Date.now())); // down for DOWN s from the signal
bridge = await startBridge();
const restartAt = bridge.spawnedAt;
const down = await untilAllFinal('downtime');
const recoveredAt = down.lastFinalAt;
const win = await report('downtime', stoppedAt, restartAt);
const during = busiest(await report('downtime', restartAt, recoveredAt + 1), (recoveredAt - restartAt) / 1000);

const metrics = await (await fetch(`${bridgeUrl}/metrics`)).text();
const sumMetric = (outcome: string) =>
  [
    ...metrics.matchAll(
      new RegExp(`ghl_bridge_provider_catchup_messages_total\\{location="[^"]+",outcome="${outcome}"\\} (\\d+)`, 'g'),
    ),
  ].reduce((s, m) => s + Number(m[1]), 0);
const caughtUp = sumMetric('caught_up');
const expired = sumMetric('expired');
// A send repeated with the same webhook-id across the kill (started by the killed bridge, its result never recorded)
// is at-least-once delivery that the receiver dedupes (HTTP_CONTRACT.md); any other repeat is a duplicate.
const repeated = [...sendsPerId].filter(([, at]) => at.length > 1);
const acrossKill = repeated.filter(([, at]) => at.length === 2 && at[0]! < exitedAt && at[1]! >= restartAt).length;
const dupes = repeated.length - acrossKill;
const newSends = [...sendsPerId].filter(([id, at]) => at.length > (sends0.get(id)?.length ?? 0)).length;
const lost = Object.entries(down.outcomes)
  .filter(([k]) => !['delivered', 'none', 'retry_429'].includes(k))
  .reduce((s, [, n]) => s + n, 0);
const downDrainMs = down.lastFinalAt - down.lastOfferedAt;

const s = (ms: number) => (ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);
console.log(
  `\nbench:downtime — ${LOCS} locations × ${RATE} msg/s, bridge ${SIGNAL === 'SIGKILL' ? 'killed (SIGKILL)' : 'stopped (SIGTERM)'} ${BEFORE} s into the load and started ${DOWN} s later; store ${STORE === 'postgres' ? 'PostgreSQL' : 'PGlite'}; catch-up defaults (interval, settle, max age)\n`,
);
console.log(
  table(
    ['figure', 'value'],
    [
      ['messages offered (downtime phase)', down.offered],
      ['  of which while the bridge was down', win.window.offered],
      ['lost by GHL (delivery refused/reset/5xx, never retried)', lost],
      [
        '  by outcome',
        Object.entries(down.outcomes)
          .map(([k, n]) => `${k} ${n}`)
          .join(', '),
      ],
      ['caught up by the restarted bridge (metric)', caughtUp],
      ['expired (reported failed as too old)', expired],
      ['still pending at the end', down.pending],
      ['duplicates: a messageId sent twice within one bridge run (must be 0)', dupes],
      ['re-sent across the kill with the same webhook-id (receiver dedupes)', acrossKill],
      ['messages sent by the channel in the downtime phase', newSends],
      ['signal → exit', s(exitedAt - stoppedAt)],
      ['restart → ready (/readyz 200)', s(bridge.readyAt - restartAt)],
      ['restart → every message delivered (target ≤ 60 s)', s(recoveredAt - restartAt)],
      ['  the messages offered while down: restart → last delivered', s(win.window.lastFinalAt - restartAt)],
      ['baseline: last offered → all delivered', s(baseDrainMs)],
      ['downtime: last offered (= restart) → all delivered', s(downDrainMs)],
      ['  ratio downtime / baseline', `${(downDrainMs / Math.max(1, baseDrainMs)).toFixed(0)} ×`],
      ['recovery, busiest location: GHL calls (catch-up export+contact)', `${during.all} (${during.catchup})`],
      [
        'recovery, busiest location: req/s vs budget',
        `${during.perSec.toFixed(1)} / ${BUDGET} (${((100 * during.perSec) / BUDGET).toFixed(0)} %)`,
      ],
      ['recovery: catch-up calls per location (mean)', during.avgCatchup],
      [
        'baseline, busiest location: req/s vs budget',
        `${baseBusy.perSec.toFixed(1)} / ${BUDGET} (${((100 * baseBusy.perSec) / BUDGET).toFixed(0)} %)`,
      ],
      ['GHL 429 answers (baseline / recovery)', `${baseBusy.r429} / ${during.r429}`],
    ],
  ),
);

const tl = await report('downtime', restartAt, Number.MAX_SAFE_INTEGER, 5000);
console.log(`\nmessages delivered per 5 s after the restart: ${tl.hist.join(' ')}`);

if (process.env.BENCH_BRIDGE_LOG && STORE === 'postgres') {
  // Where the recovery time goes: per location, when catch-up stored the rows, started the sends, reported.
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  const r = await c.query(
    `select location_id, count(*)::int n, min(received_at) r0, max(received_at) r1, min(send_started_at) s0,
            max(send_started_at) s1, max(reported_at) p1
       from "${schema}".provider_outbound where confirmed_by = 'catchup' group by 1 order by 3`,
  );
  const rel = (d: Date | null | undefined) => (d ? ((d.getTime() - restartAt) / 1000).toFixed(1) : '-');
  for (const x of r.rows as Array<Record<string, Date | null> & { location_id: string; n: number }>)
    console.log(
      `${x.location_id} n=${x.n} stored ${rel(x.r0)}..${rel(x.r1)} send ${rel(x.s0)}..${rel(x.s1)} reported ..${rel(x.p1)} s after restart`,
    );
  await c.end();
}

const ok = down.pending === 0 && dupes === 0 && base.pending === 0;
bridge.proc.kill('SIGTERM');
await exitOf(bridge.proc);
await sink.close();
await stopChild(emuChild);
if (STORE === 'postgres') {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`drop schema if exists "${schema}" cascade`);
  await c.end();
} else rmSync(dataDir!, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
