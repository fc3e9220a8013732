/**
 * npm run bench:fanout — event-subscription fan-out under load, with one dead endpoint.
 *
 * The bridge (webhooks + events modules, in this process, at the shipped log level into a file) takes signed GHL
 * webhooks offered at BENCH_RATE events/s (1,000) for BENCH_SECONDS (10) and fans each out to 10 subscriptions on
 * loopback receivers. The receivers and the load generator run in another process (bench/fanout-load.ts), so the
 * CPU measured here is the bridge's. Two phases in one run, same rate and duration:
 *   baseline  — 10 healthy subscriptions
 *   dead      — 9 healthy + 1 endpoint that never answers (each attempt ends at EVENTS_DELIVERY_TIMEOUT_MS)
 * Per phase: delivery latency p50/p99 at the healthy endpoints (webhook sent → delivery received, one clock),
 * throughput = healthy deliveries received by BENCH_GRACE_MS (2 s) after the phase (the last webhook answered, or
 * BENCH_SECONDS, whichever is later) / (offered × healthy endpoints),
 * and bridge CPU per delivery. Targets on PostgreSQL: p99 ≤ 100 ms and ≥ 95 % of offered.
 *
 * Env: BENCH_RATE (1000), BENCH_SECONDS (10), BENCH_GRACE_MS (2000), TEST_STORE=postgres.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventsModule } from '../src/capabilities/events/index.js';
import { generateKeySpec } from '../src/infra/crypto/aes.js';
import { webhooksModule } from '../src/platform/webhooks/index.js';
import { startTestBridge, type TestBridge } from '../test/helpers/store.js';
import pg from 'pg';
import { fileLogger, pct, SHIPPED_LOG_LEVEL, startChild, stopChild, table } from './common.js';

// Statement count (PostgreSQL store): every query any pool client of this process sends. Bench instrumentation only.
let statements = 0;
const origQuery = pg.Client.prototype.query as (...a: unknown[]) => unknown;
(pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown }).query = function (
  this: unknown,
  ...a: unknown[]
) {
  statements++;
  return origQuery.apply(this, a);
};

const RATE = Number(process.env.BENCH_RATE ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const GRACE = Number(process.env.BENCH_GRACE_MS ?? 2000);
const SUBS = 10;

const { child, ready } = await startChild<{ control: string; publicKey: string }>(['bench/fanout-load.ts']);
const call = async <T>(path: string, body?: unknown): Promise<T> => {
  const r = await fetch(
    `${ready.control}${path}`,
    body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) },
  );
  return (await r.json()) as T;
};
const logFile = join(mkdtempSync(join(tmpdir(), 'ghl-bridge-fanout-')), 'bridge.log');

interface Row {
  phase: string;
  p50: number;
  p99: number;
  /** From the bridge storing the webhook to receipt (delivery only, without the intake). */
  storedP50: number;
  storedP99: number;
  share: number;
  cpuUs: number;
  stmtPerDelivery: number;
  engineStmtPerDelivery: number;
  deliveries: number;
  accepted: number;
}

async function phase(name: string, dead: number): Promise<Row> {
  const b: TestBridge = await startTestBridge({
    modules: [
      webhooksModule({ extraEd25519Keys: [ready.publicKey], isKnownLocation: async () => true }),
      eventsModule(),
    ],
    env: {
      LOG_LEVEL: SHIPPED_LOG_LEVEL,
      SANDBOX: 'true',
      TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
      EVENTS_ALLOWED_NETWORKS: '127.0.0.0/8',
      WORKER_CONCURRENCY: '32',
      JOB_POLL_MS: '200',
      WEBHOOK_MAX_BACKLOG: '1000000',
      // EVENTS_* from the environment (e.g. EVENTS_ENDPOINT_CONCURRENCY) override the defaults.
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('EVENTS_'))),
    },
    log: fileLogger(logFile),
  });
  try {
    const r = await call<{ healthy: string[]; dead: string[] }>('/receivers', { healthy: SUBS - dead, dead });
    const store = b.ctx.services.get('events').subscriptions;
    for (const url of [...r.healthy, ...r.dead]) await store.create({ url, eventTypes: ['Contact*'] });
    await b.ctx.services.get('eventsInternal').engine.refresh();
    // Warm-up (not measured): connections, prepared statements, JIT.
    await call('/run', { target: b.url, rate: Math.min(RATE, 200), seconds: 2, phase: `${name}-warmup` });
    const engine = b.ctx.services.get('eventsInternal').engine;
    const s0 = statements;
    const e0 = engine.stats.statements;
    const d0 = engine.stats.attempts;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const { offered } = await call<{ offered: number }>('/run', {
      target: b.url,
      rate: RATE,
      seconds: SECONDS,
      phase: name,
    });
    const left = GRACE - (performance.now() - t0 - SECONDS * 1000);
    if (left > 0) await new Promise((res) => setTimeout(res, left));
    const cpu = process.cpuUsage(cpu0);
    const attempts = Math.max(1, engine.stats.attempts - d0);
    const stmts = statements - s0;
    const engineStmts = engine.stats.statements - e0;
    const st = await call<{ latencies: number[]; fromStored: number[]; deliveries: number; accepted: number }>(
      `/stats?phase=${name}`,
    );
    const healthy = SUBS - dead;
    return {
      phase: name,
      p50: pct(st.latencies, 50),
      p99: pct(st.latencies, 99),
      storedP50: pct(st.fromStored, 50),
      storedP99: pct(st.fromStored, 99),
      share: st.latencies.length / (offered * healthy),
      cpuUs: (cpu.user + cpu.system) / Math.max(1, st.deliveries),
      stmtPerDelivery: stmts / attempts,
      engineStmtPerDelivery: engineStmts / attempts,
      deliveries: st.latencies.length,
      accepted: st.accepted,
    };
  } finally {
    await b.close();
  }
}

try {
  const store = process.env.TEST_STORE === 'postgres' ? 'PostgreSQL' : 'PGlite';
  console.log(
    `bench:fanout — ${RATE} events/s for ${SECONDS} s into ${SUBS} subscriptions (loopback), store ${store}, log level ${SHIPPED_LOG_LEVEL}`,
  );
  const base = await phase('baseline', 0);
  const dead = await phase('dead', 1);
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
  console.log(
    table(
      [
        'phase',
        'healthy endpoints',
        'p50 ms',
        'p99 ms',
        'stored → received p50 / p99 ms',
        'delivered / offered',
        'webhooks accepted',
        'bridge CPU µs / delivery',
        'statements / attempt (all | delivery engine)',
      ],
      [base, dead].map((r) => [
        r.phase === 'baseline' ? 'baseline: 10 healthy' : 'one dead (never answers)',
        r.phase === 'baseline' ? SUBS : SUBS - 1,
        f(r.p50),
        f(r.p99),
        `${f(r.storedP50)} / ${f(r.storedP99)}`,
        `${(r.share * 100).toFixed(1)} %`,
        r.accepted,
        f(r.cpuUs),
        process.env.TEST_STORE === 'postgres'
          ? `${r.stmtPerDelivery.toFixed(3)} | ${r.engineStmtPerDelivery.toFixed(3)}`
          : `n/a | ${r.engineStmtPerDelivery.toFixed(3)}`,
      ]),
    ),
  );
  console.log(
    `dead vs baseline: p99 ×${(dead.p99 / base.p99).toFixed(2)}, throughput ×${(dead.share / base.share).toFixed(2)}; targets (PostgreSQL): p99 ≤ 100 ms ${dead.p99 <= 100 ? '✓' : '✗'}, ≥ 95 % ${dead.share >= 0.95 ? '✓' : '✗'}`,
  );
} finally {
  await stopChild(child);
}
