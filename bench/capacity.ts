/**
 * npm run bench:capacity — how many messages per second one bridge relays, as a ratio to its own intake capacity
 * measured in the same run (issue 18 item 1).
 *
 * GHL (bench/relay-emulator.ts) runs in its own process with the rate limit lifted (and so does the bridge's limiter):
 * the figure is the bridge's capacity, not GHL's ceiling. The bridge runs in this process at the shipped log level
 * (info; its lines go to a file, as to a log shipper), on a fresh store (`--store pglite|postgres`, or TEST_STORE;
 * PGlite on disk, as shipped).
 *
 *   1. Intake baseline: a bridge with the same modules and dispatch workers off (WORKER_CONCURRENCY=0), autocannon from
 *      a child process (bench/capacity-load.ts) posting signed ProviderOutboundMessage deliveries (one messageId each)
 *      to the Delivery URL: verify + durable write of the event and its job. Gives req/s, CPU per request
 *      (process.cpuUsage of this process), statements per request and event-loop utilisation.
 *   2. Relay: a fresh bridge (workers on, loopback channel), 10 locations. Offered load rises step by step (open loop,
 *      paced by the emulator); each step offers BENCH_STEP_SEC seconds of messages and waits until all are reported to
 *      GHL. A step holds while outbound p99 (GHL fires the webhook → channel send() called, as in bench:relay) stays
 *      ≤ BENCH_P99_MS and the relayed rate (first to last status report) is ≥ 95 % of offered. The first step that
 *      does not hold ends the run; the last one that held is the sustainable rate.
 *
 * Statements are counted in-process (pg_stat_statements needs shared_preload_libraries, which the test server lacks):
 * every pg.Client#query call (PostgreSQL; BEGIN/COMMIT included, each pool and the LISTEN connection) and every
 * PGlite#query/exec call. On PostgreSQL the server's own CPU is not in "CPU per message" or "CPU per request" (both
 * sides alike); on PGlite it is, since the engine runs in this process.
 *
 * Env: BENCH_STEP_SEC (5), BENCH_STEPS (max steps, 10), BENCH_START (first offered msg/s, 50), BENCH_FACTOR (1.5),
 *      BENCH_P99_MS (250), BENCH_LOCATIONS (10), BENCH_WARMUP (messages, 200), BENCH_INTAKE_SEC (10),
 *      BENCH_CONNECTIONS (50), BENCH_BURST (GHL requests per 10 s per location, 100,000), BENCH_DELIVERY (signed | token: unsigned Delivery-URL calls confirmed by the
 *      OutboundMessage event), BENCH_OVERLOAD (3) × the sustainable rate for BENCH_OVERLOAD_SEC (60; 0 skips it),
 *      BENCH_OVERLOAD_RATE (the rate to overload when no step held), TEST_STORE=postgres.
 */
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { LoopbackInbox } from '../src/capabilities/channels/index.js';
import { PGliteThread } from '../src/infra/db/pglite-thread.js';
import { providerModule } from '../src/capabilities/provider/index.js';
import { installationsModule } from '../src/platform/installations/index.js';
import { webhooksModule } from '../src/platform/webhooks/index.js';
import { freshSchema, startTestBridge, type TestBridge } from '../test/helpers/store.js';
import { install } from '../test/provider/harness.js';
import {
  bridgeEnv,
  fileLogger,
  pct,
  PG_URL,
  postgresAvailable,
  startChild,
  startEmulator,
  stopChild,
  table,
} from './common.js';

const { values } = parseArgs({ options: { store: { type: 'string' } } });
const STORE = (values.store ?? process.env.TEST_STORE ?? 'pglite') === 'postgres' ? 'postgres' : 'pglite';
const env = (k: string, d: number) => Number(process.env[k] ?? d);
const STEP_SEC = env('BENCH_STEP_SEC', 5);
const STEPS = env('BENCH_STEPS', 10);
const START = env('BENCH_START', 50);
const FACTOR = env('BENCH_FACTOR', 1.5);
const P99_MS = env('BENCH_P99_MS', 250);
const LOCS = env('BENCH_LOCATIONS', 10);
const WARMUP = env('BENCH_WARMUP', 200);
const INTAKE_SEC = env('BENCH_INTAKE_SEC', 10);
const CONNECTIONS = env('BENCH_CONNECTIONS', 50);
const DELIVERY = process.env.BENCH_DELIVERY === 'token' ? 'token' : 'signed';
// "Limits lifted": a burst no step reaches, in the emulator and in the bridge's limiter alike.
const BURST = env('BENCH_BURST', 100_000);
// Overload (issue 18 item 4): after the steps, OVERLOAD× the sustainable rate for OVERLOAD_SEC seconds (0: skip).
const OVERLOAD = env('BENCH_OVERLOAD', 3);
const OVERLOAD_SEC = env('BENCH_OVERLOAD_SEC', 60);
const INTERVAL = 10_000;

if (STORE === 'postgres' && !(await postgresAvailable())) throw new Error(`PostgreSQL at ${PG_URL} not reachable`);

// ---------------------------------------------------------------- statement counter (in-process)

let statements = 0;
// BENCH_SQL_SHAPES=1: also tally statements by shape (first words, comments and whitespace folded), printed at the
// end per relayed message of the sustainable step: where the statements per message go.
const SHAPES = process.env.BENCH_SQL_SHAPES === '1';
let shapes = new Map<string, number>();
const shapeOf = (q: unknown): string => {
  const text = typeof q === 'string' ? q : ((q as { text?: string } | null)?.text ?? '?');
  return text
    .replace(/\/\*.*?\*\//gs, '')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 90);
};
function countCalls(proto: object, method: string): void {
  const p = proto as Record<string, (...a: unknown[]) => unknown>;
  const original = p[method]!;
  p[method] = function (this: unknown, ...a: unknown[]) {
    statements++;
    if (SHAPES) {
      const k = shapeOf(a[0]);
      shapes.set(k, (shapes.get(k) ?? 0) + 1);
    }
    return original.apply(this, a);
  };
}
countCalls(pg.Client.prototype, 'query');
countCalls(PGlite.prototype, 'query');
countCalls(PGlite.prototype, 'exec');
// The embedded store's default home is a worker thread: its statements are posted from here.
countCalls(PGliteThread.prototype, 'query');
countCalls(PGliteThread.prototype, 'exec');

/** CPU (ms), event-loop utilisation and statements since `start()`. */
function meter() {
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const st0 = statements;
  const t0 = performance.now();
  return () => {
    const c = process.cpuUsage(cpu0);
    return {
      cpuMs: (c.user + c.system) / 1000,
      elu: performance.eventLoopUtilization(elu0).utilization,
      statements: statements - st0,
      secs: (performance.now() - t0) / 1000,
    };
  };
}

// ---------------------------------------------------------------- world and bridges

const {
  child,
  world,
  call: emu,
} = await startEmulator(['bench/relay-emulator.ts', String(LOCS), String(BURST), String(INTERVAL)]);

// The intake baseline's payloads are signed with a key of our own (the emulator signs the relay's).
const own = generateKeyPairSync('ed25519');
const ownPem = own.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const tmp = mkdtempSync(join(tmpdir(), 'ghl-bridge-capacity-'));
const logFile = join(tmp, 'bridge.log');
let bridgeNo = 0;

async function bridge(workers: string, inbox?: LoopbackInbox): Promise<TestBridge & { dispose(): Promise<void> }> {
  const dataDir = STORE === 'pglite' ? join(tmp, `store-${bridgeNo++}`) : undefined;
  const b = await startTestBridge({
    modules: [
      webhooksModule({
        extraEd25519Keys: [world.keys.ed25519PublicKeyPem, ownPem],
        extraRsaKeys: [world.keys.rsaPublicKeyPem],
      }),
      installationsModule({ limits: { burst: BURST, intervalMs: INTERVAL } }),
      providerModule(inbox ? { loopbackInbox: inbox } : {}),
    ],
    env: {
      ...bridgeEnv(world),
      DATABASE_URL: STORE === 'postgres' ? PG_URL : undefined,
      DATABASE_SCHEMA: freshSchema(),
      WORKER_CONCURRENCY: workers,
      WEBHOOK_MAX_BACKLOG: '10000000',
      JOB_POLL_MS: '1000',
    },
    ...(dataDir ? { dataDir } : {}),
    log: fileLogger(logFile),
  });
  return Object.assign(b, {
    async dispose() {
      await b.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

// ---------------------------------------------------------------- 1. intake baseline

interface IntakeResult {
  rps: number;
  total: number;
  p99: number;
  non2xx: number;
  duplicates: number;
  cpuMs: number;
  statements: number;
  elu: number;
}

async function intakeBaseline(): Promise<IntakeResult> {
  const b = await bridge('0');
  const body = (i: number) =>
    JSON.stringify({
      contactId: `contact_${i % 200}`,
      locationId: world.locationIds[i % world.locationIds.length],
      messageId: `intake_${randomUUID()}`,
      type: 'SMS',
      phone: `+1213555${String(1000 + (i % 200)).padStart(4, '0')}`,
      message: `bench ${i}`,
      attachments: [],
    });
  const signed = (n: number) => {
    const bodies = Array.from({ length: n }, (_, i) => body(i));
    return { bodies, sigs: bodies.map((x) => sign(null, Buffer.from(x), own.privateKey).toString('base64')) };
  };
  const url = `${b.url}/webhooks/ghl/provider`;
  // Warm-up (not measured): JIT, the pool's connections, prepared statements.
  const warm = signed(500);
  for (let k = 0; k < warm.bodies.length; k += 25)
    await Promise.all(
      warm.bodies.slice(k, k + 25).map((x, j) =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-ghl-signature': warm.sigs[k + j]! },
          body: x,
        }).then((r) => r.arrayBuffer()),
      ),
    );
  const job = join(tmp, 'intake.json');
  writeFileSync(
    job,
    JSON.stringify({
      url,
      connections: CONNECTIONS,
      duration: INTAKE_SEC,
      ...signed(Math.max(20_000, INTAKE_SEC * 8000)),
    }),
  );
  // The window includes the load child's start-up (~1 s of an idle bridge): a few ms of timers at most.
  const m = meter();
  const { child: load, ready: r } = await startChild<Omit<IntakeResult, 'cpuMs' | 'statements' | 'elu'>>([
    'bench/capacity-load.ts',
    job,
  ]);
  const used = m();
  await stopChild(load);
  await b.dispose();
  return { ...r, cpuMs: used.cpuMs, statements: used.statements, elu: used.elu };
}

// ---------------------------------------------------------------- 2. relay steps

interface Step {
  offered: number;
  n: number;
  fired: number;
  relayed: number;
  reported: number;
  p50: number;
  p99: number;
  cpuMs: number;
  statements: number;
  elu: number;
  verdict: 'held' | 'p99' | 'throughput' | 'incomplete' | 'harness';
  shapes: Map<string, number>;
}

let idle = { cpuMs: 0, statements: 0, secs: 1, elu: 0 };
async function relaySteps(): Promise<Step[]> {
  const inbox = new LoopbackInbox(1000);
  const b = await bridge('32', inbox);
  const provider = b.ctx.services.get('provider');
  const contacts: Array<{ loc: string; id: string }> = [];
  for (const loc of world.locationIds) {
    await install(b.url, loc);
    await provider.configureChannel(loc, { kind: 'loopback' });
    for (const id of await emu<string[]>('/_bench/contacts', { locationId: loc, n: 20, offset: contacts.length }))
      contacts.push({ loc, id });
  }
  const signedPath = DELIVERY === 'signed';
  await emu('/_bench/sign', { on: signedPath });
  await emu(
    `/_emulator/apps/${world.clientId}`,
    {
      providerDeliveryUrl: signedPath
        ? `${b.url}/webhooks/ghl/provider`
        : `${b.url}/webhooks/ghl/provider/${await provider.tokens.current()}`,
      webhookUrl: signedPath ? 'http://127.0.0.1:9/none' : `${b.url}/webhooks/ghl`,
    },
    'PATCH',
  );

  let sentAt = new Map<string, number>();
  let reports: number[] = [];
  provider.events.on('send', (e: { messageId: string; attempt: number; at: number }) => {
    if (e.attempt === 1) sentAt.set(e.messageId, e.at);
  });
  provider.events.on('reported', () => reports.push(Date.now()));

  const offer = async (rate: number, n: number, deadlineMs: number) => {
    sentAt = new Map();
    reports = [];
    await emu('/_bench/run', { contacts, n, rate, providerId: world.conversationProviderId });
    const deadline = Date.now() + deadlineMs;
    while (reports.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  };
  await offer(START, WARMUP, 120_000); // warm-up, not measured
  // What the bridge costs doing nothing (pollers, timers) over 2 s: part of every step's figures, shown apart.
  const m0 = meter();
  await new Promise((r) => setTimeout(r, 2000));
  idle = m0();

  const steps: Step[] = [];
  for (let k = 0, rate = START; k < STEPS; k++, rate = Math.round(rate * FACTOR)) {
    const n = Math.max(2, Math.round(rate * STEP_SEC));
    shapes = new Map();
    const m = meter();
    // Give a step that falls behind time to show it (3× its length plus 10 s), not forever.
    await offer(rate, n, STEP_SEC * 3000 + 10_000);
    const used = m();
    const { fired } = await emu<{ fired: Array<[string, number]> }>('/_bench/fired', undefined, 'GET');
    const firedAt = new Map(fired);
    const outbound = [...sentAt].flatMap(([id, at]) => (firedAt.has(id) ? [at - firedAt.get(id)!] : []));
    const span = (xs: number[]) => (xs.length > 1 ? (xs.length - 1) / ((Math.max(...xs) - Math.min(...xs)) / 1000) : 0);
    const s: Omit<Step, 'verdict' | 'shapes'> = {
      offered: rate,
      n,
      fired: span(fired.map(([, at]) => at)),
      relayed: span(reports),
      reported: reports.length,
      p50: pct(outbound, 50),
      p99: pct(outbound, 99),
      cpuMs: used.cpuMs,
      statements: used.statements,
      elu: used.elu,
    };
    const verdict: Step['verdict'] =
      s.reported < n
        ? 'incomplete'
        : s.fired < 0.95 * rate
          ? 'harness'
          : s.p99 > P99_MS
            ? 'p99'
            : s.relayed < 0.95 * rate
              ? 'throughput'
              : 'held';
    steps.push({ ...s, verdict, shapes });
    console.error(
      `step ${rate} msg/s: relayed ${s.relayed.toFixed(0)}/s, p99 ${s.p99} ms, ELU ${(s.elu * 100).toFixed(0)} % → ${verdict}`,
    );
    if (verdict !== 'held') break;
  }
  const held = steps.filter((s) => s.verdict === 'held');
  // BENCH_OVERLOAD_RATE: the rate to overload, when no step held (a slow machine, or to try the phase quickly).
  const sustainable =
    held[held.length - 1]?.offered ?? (process.env.BENCH_OVERLOAD_RATE ? env('BENCH_OVERLOAD_RATE', 0) : undefined);
  if (sustainable && OVERLOAD_SEC > 0) overload = await overloadPhase(sustainable);
  await b.dispose();
  return steps;

  /**
   * OVERLOAD× the sustainable rate for OVERLOAD_SEC: how the bridge answers GHL meanwhile (every Delivery-URL
   * attempt's status and time, from the emulator), the queue backlog as /metrics shows it (sampled each second),
   * how fast the backlog drains once the offer stops, and whether every message was relayed exactly once.
   */
  async function overloadPhase(rate: number): Promise<Overload> {
    const offered = rate * OVERLOAD;
    const n = Math.round(offered * OVERLOAD_SEC);
    const answered0 = (await emu<{ answers: Array<[number, number]> }>('/_bench/answers', undefined, 'GET')).answers
      .length;
    const ids: string[] = [];
    const onMessage = (rec: { message: { messageId: string } }) => ids.push(rec.message.messageId);
    inbox.on('message', onMessage);
    const backlog: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const text = await fetch(`${b.url}/metrics`).then((r) => r.text());
        const ready = /^ghl_bridge_jobs\{state="ready"\} (\d+)/m.exec(text);
        const running = /^ghl_bridge_jobs\{state="running"\} (\d+)/m.exec(text);
        // Blocked: waiting behind an earlier job of the same contact (most of an overload's backlog).
        const blocked = /^ghl_bridge_jobs\{state="blocked"\} (\d+)/m.exec(text);
        backlog.push(Number(ready?.[1] ?? 0) + Number(running?.[1] ?? 0) + Number(blocked?.[1] ?? 0));
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    sentAt = new Map();
    reports = [];
    const t0 = Date.now();
    console.error(`overload: ${offered} msg/s (${OVERLOAD}× ${rate}) for ${OVERLOAD_SEC} s…`);
    await emu('/_bench/run', { contacts, n, rate: offered, providerId: world.conversationProviderId });
    const offerEnd = t0 + OVERLOAD_SEC * 1000;
    // Drain: allowed three times as long as the sustainable rate needs for what is left, plus 30 s.
    const deadline = offerEnd + ((3 * n) / rate) * 1000 + 30_000;
    while (reports.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const end = Date.now();
    sampling = false;
    await sampler;
    const answers = (
      await emu<{ answers: Array<[number, number]> }>('/_bench/answers', undefined, 'GET')
    ).answers.slice(answered0);
    const afterOffer = reports.filter((t) => t > offerEnd);
    const drainSecs = afterOffer.length > 1 ? (Math.max(...afterOffer) - offerEnd) / 1000 : 0;
    inbox.off('message', onMessage);
    return {
      rate,
      offered,
      n,
      reported: reports.length,
      delivered: new Set(ids).size,
      duplicates: ids.length - new Set(ids).size,
      answerP99: pct(
        answers.map(([, ms]) => ms),
        99,
      ),
      answers5xx: answers.filter(([st]) => st === 0 || st >= 500).length,
      answers: answers.length,
      backlogPeak: Math.max(0, ...backlog),
      drainRate: drainSecs > 0 ? afterOffer.length / drainSecs : 0,
      totalSecs: (end - t0) / 1000,
    };
  }
}

interface Overload {
  rate: number;
  offered: number;
  n: number;
  reported: number;
  delivered: number;
  duplicates: number;
  answerP99: number;
  answers5xx: number;
  answers: number;
  backlogPeak: number;
  drainRate: number;
  totalSecs: number;
}
let overload: Overload | undefined;

// ---------------------------------------------------------------- run and report

const storeName = STORE === 'postgres' ? 'PostgreSQL' : 'PGlite (disk)';
console.error(`bench:capacity on ${storeName}: intake baseline (${INTAKE_SEC} s)…`);
const intake = await intakeBaseline();
console.error(`intake ${intake.rps.toFixed(0)} req/s; relay steps of ${STEP_SEC} s from ${START} msg/s ×${FACTOR}…`);
const steps = await relaySteps();
await stopChild(child);
const logLines = readFileSync(logFile, 'utf8').split('\n').length - 1;

const held = steps.filter((s) => s.verdict === 'held');
const best = held[held.length - 1];
const cpuPerReq = intake.cpuMs / intake.total;
const ms = (x: number) => `${x.toFixed(2)} ms`;
const verdicts: Record<Step['verdict'], string> = {
  held: 'held',
  p99: `p99 > ${P99_MS} ms`,
  throughput: 'relayed < 95 % of offered',
  incomplete: 'not all relayed in 3× the step',
  harness: 'emulator fired < 95 % of offered (harness limit)',
};

console.log(
  `\nbench:capacity — store ${storeName}, ${LOCS} locations, loopback channel, ${DELIVERY === 'signed' ? 'signed Delivery-URL calls' : 'unsigned Delivery-URL calls + OutboundMessage confirmation'}, ` +
    `rate limit lifted, LOG_LEVEL=info (${logLines} log lines in ${logFile}), steps of ${STEP_SEC} s\n`,
);
console.log(
  table(
    [
      'offered msg/s',
      'fired msg/s',
      'relayed msg/s',
      'outbound p50 / p99',
      'CPU per msg',
      'statements per msg',
      'event loop busy',
      'result',
    ],
    steps.map((s) => [
      s.offered,
      s.fired.toFixed(0),
      s.relayed.toFixed(0),
      `${s.p50} / ${s.p99} ms`,
      ms(s.cpuMs / s.n),
      (s.statements / s.n).toFixed(1),
      `${(s.elu * 100).toFixed(0)} %`,
      verdicts[s.verdict],
    ]),
  ),
);
console.log('');
console.log(
  table(
    ['figure', 'relay (sustainable step)', 'intake baseline', 'ratio'],
    [
      [
        'rate',
        best ? `${best.offered} msg/s` : `none held (first step ${START} msg/s)`,
        `${intake.rps.toFixed(0)} req/s (p99 ${intake.p99} ms, ${intake.non2xx} non-2xx)`,
        best ? `${((100 * best.offered) / intake.rps).toFixed(1)} % (target ≥ 25 %)` : '-',
      ],
      [
        'CPU (this process) per message / request',
        best ? ms(best.cpuMs / best.n) : '-',
        ms(cpuPerReq),
        best ? `${(best.cpuMs / best.n / cpuPerReq).toFixed(1)}× (target ≤ 4×)` : '-',
      ],
      [
        'statements per message / request (counted in-process)',
        best ? (best.statements / best.n).toFixed(1) : '-',
        (intake.statements / intake.total).toFixed(2),
        best ? `${(best.statements / best.n / (intake.statements / intake.total)).toFixed(1)}×` : '-',
      ],
      ['event loop busy', best ? `${(best.elu * 100).toFixed(0)} %` : '-', `${(intake.elu * 100).toFixed(0)} %`, '-'],
    ],
  ),
);
console.log(
  `\nidle relay bridge (2 s, no load; included in each step's figures): ${(idle.cpuMs / idle.secs).toFixed(0)} ms CPU/s, ` +
    `${(idle.statements / idle.secs).toFixed(1)} statements/s, event loop ${(idle.elu * 100).toFixed(0)} % busy`,
);
if (SHAPES) {
  const at = best ?? steps[steps.length - 1];
  if (at) {
    console.log(`\nstatements per relayed message by shape (step ${at.offered} msg/s, ${at.n} messages)\n`);
    console.log(
      table(
        ['per msg', 'statement'],
        [...at.shapes]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 25)
          .map(([k, v]) => [(v / at.n).toFixed(2), k]),
      ),
    );
  }
}
if (overload) {
  const o = overload;
  console.log(
    `\noverload: ${o.offered} msg/s (${OVERLOAD}× the sustainable ${o.rate}) for ${OVERLOAD_SEC} s, ${o.n} messages\n`,
  );
  console.log(
    table(
      ['figure', 'value', 'target'],
      [
        ['Delivery-URL answers, p99', `${o.answerP99} ms (${o.answers} answers)`, '< 1,000 ms'],
        ['answers 5xx or none', o.answers5xx, '0'],
        ['queue backlog peak (/metrics, ready + running + blocked jobs)', o.backlogPeak, 'visible'],
        [
          'drain after the offer stopped',
          `${o.drainRate.toFixed(0)} msg/s (${((100 * o.drainRate) / o.rate).toFixed(0)} % of sustainable)`,
          '≈ sustainable',
        ],
        ['reported to GHL / delivered to the channel', `${o.reported} / ${o.delivered} of ${o.n}`, 'all'],
        ['duplicate channel sends', o.duplicates, '0'],
      ],
    ),
  );
}
if (intake.duplicates > 0)
  console.log(`note: the intake run repeated ${intake.duplicates} payloads (answered as duplicates, cheaper)`);
if (best && best === steps[steps.length - 1])
  console.log(`note: every step held; the sustainable rate is at least ${best.offered} msg/s (raise BENCH_STEPS)`);
process.exit(best ? 0 : 1);
