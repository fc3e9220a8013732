/**
 * Rate-limit benchmark: N locations × saturating bulk traffic against the emulator (GHL's limits:
 * 100 / 10 s per app per location), plus live-lane probes. Reports achieved / allowed requests,
 * 429s, Jain's fairness index across locations, and live-lane latency while bulk is saturated.
 *
 * Baseline, same run: first the same harness (same locations, concurrency and client) runs for --baseline seconds
 * against an emulator with its limits lifted and a limiter whose budget never binds. What it achieves is what this
 * machine can drive at all today; utilisation is reported against min(allowed, that capacity), so a slow day does
 * not read as a limiter that wastes budget.
 *
 *   npm run bench:ratelimit -- [--duration 60] [--baseline 10] [--locations 50] [--concurrency 6] [--live-every 250]
 *   TEST_STORE=postgres npm run bench:ratelimit   # limiter state on PostgreSQL (127.0.0.1:5432/test)
 */
import { setMaxListeners } from 'node:events';
import { parseArgs } from 'node:util';
import { createBridge } from '../src/app.js';
import { generateKeySpec } from '../src/infra/crypto/aes.js';
import { installationsModule, installationsServices } from '../src/platform/installations/index.js';
import { createLogger } from '../src/infra/log/logger.js';
import { dropSchema, STORE, testConfig } from '../test/helpers/store.js';
import { startChild, stopChild } from './common.js';

const { values: a } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    locations: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '6' },
    'live-every': { type: 'string', default: '250' },
    baseline: { type: 'string', default: '10' },
  },
});
const durationMs = Number(a.duration) * 1000;
const nLoc = Number(a.locations);
const perLocConcurrency = Number(a.concurrency);
const liveEvery = Number(a['live-every']);
const baselineMs = Number(a.baseline) * 1000;
const LIMIT = { burst: 100, intervalMs: 10_000, daily: 200_000 };
const NO_LIMIT = { burst: 100_000, intervalMs: 10_000, daily: 1_000_000_000, bulkDailyShare: 1 };

interface World {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  locationIds: string[];
}
interface PhaseResult {
  counts: number[];
  total: number;
  n429: number;
  served: number;
  liveLatency: number[];
  errors: Map<string, number>;
  limiterStats: unknown;
}

/** One measured run: its own emulator process (GHL's limits or lifted), its own bridge and store. */
async function phase(o: { lifted: boolean; durationMs: number; live: boolean }): Promise<PhaseResult> {
  const durationMs = o.durationMs;
  // The emulator runs in its own process (see bench/ratelimit-emulator.ts).
  const { child, ready: world } = await startChild<World>([
    'bench/ratelimit-emulator.ts',
    String(nLoc),
    ...(o.lifted ? ['lifted'] : []),
  ]);
  const stats = async () =>
    (await (await fetch(`${world.baseUrl}/_bench/stats`)).json()) as { n429: number; served: number };
  const locs = world.locationIds;
  const app = { clientId: world.clientId, clientSecret: world.clientSecret };
  const emuBase = world.baseUrl;

  const config = testConfig({
    SANDBOX: 'false',
    GHL_CLIENT_ID: app.clientId,
    GHL_CLIENT_SECRET: app.clientSecret,
    GHL_API_BASE: emuBase,
    GHL_MARKETPLACE_BASE: emuBase,
    PUBLIC_URL: 'http://bench.test',
    TOKEN_ENCRYPTION_KEYS: generateKeySpec('bench'),
    GHL_RECONCILE_INTERVAL_MIN: '0',
    WORKER_CONCURRENCY: '0',
    DATABASE_POOL_MAX: '20',
  });
  const bridge = await createBridge(config, {
    log: createLogger({ level: 'silent' }),
    modules: [installationsModule(o.lifted ? { limits: NO_LIMIT } : {})],
    dataDir: 'memory://',
  });
  const s = installationsServices(bridge.ctx.services);
  for (const loc of locs) {
    const state = new URL(await s.installations.authorizeUrl()).searchParams.get('state')!;
    const r = await fetch(`${emuBase}/_emulator/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: app.clientId, locationId: loc, state }),
    });
    const { code } = (await r.json()) as { code: string };
    await s.installations.completeInstall(code, state);
  }
  console.log(
    `${o.lifted ? 'baseline (limits lifted)' : 'limited'}: store=${STORE} locations=${nLoc} duration=${durationMs / 1000}s bulk concurrency/location=${perLocConcurrency}${o.live ? ` live probe every ${liveEvery} ms` : ''}`,
  );

  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // one listener per waiting call
  const ok = new Map<string, number>(locs.map((l) => [l, 0]));
  const errors = new Map<string, number>();
  const liveLatency: number[] = [];
  const before = await stats();
  const t0 = Date.now();
  const deadline = t0 + durationMs;

  const bulkWorker = async (loc: string) => {
    while (Date.now() < deadline) {
      try {
        await s.ghl.customFields.list(loc, { installation: { locationId: loc }, lane: 'bulk', signal: stop.signal });
        if (Date.now() <= deadline) ok.set(loc, ok.get(loc)! + 1);
      } catch (e) {
        if (stop.signal.aborted) return;
        const k = (e as Error).message.slice(0, 80);
        errors.set(k, (errors.get(k) ?? 0) + 1);
      }
    }
  };
  const liveProbe = async () => {
    if (!o.live) return;
    let i = 0;
    const probes: Promise<void>[] = [];
    // Give bulk a head start so the probes meet saturated buckets.
    await new Promise((r) => setTimeout(r, Math.min(5000, durationMs / 4)));
    while (Date.now() < deadline - 1000) {
      const loc = locs[i++ % locs.length]!;
      const started = Date.now();
      probes.push(
        s.ghl.customFields
          .list(loc, { installation: { locationId: loc }, lane: 'live', signal: stop.signal })
          .then(() => {
            liveLatency.push(Date.now() - started);
            if (Date.now() <= deadline) ok.set(loc, ok.get(loc)! + 1);
          })
          .catch(() => undefined),
      );
      await new Promise((r) => setTimeout(r, liveEvery));
    }
    await Promise.all(probes);
  };

  const progress = setInterval(() => {
    const total = [...ok.values()].reduce((x, y) => x + y, 0);
    console.log(`  t=${((Date.now() - t0) / 1000).toFixed(0)}s ok=${total}`);
  }, 10_000);
  const timer = setTimeout(() => stop.abort(), durationMs);
  await Promise.all([
    ...locs.flatMap((l) => Array.from({ length: perLocConcurrency }, () => bulkWorker(l))),
    liveProbe(),
  ]);
  clearTimeout(timer);
  stop.abort();
  clearInterval(progress);

  const after = await stats();
  const counts = [...ok.values()];
  const out: PhaseResult = {
    counts,
    total: counts.reduce((x, y) => x + y, 0),
    n429: after.n429 - before.n429,
    served: after.served - before.served,
    liveLatency,
    errors,
    limiterStats: s.rateLimiter.stats,
  };
  await bridge.close();
  if (config.DATABASE_URL) await dropSchema(config.DATABASE_SCHEMA);
  await stopChild(child);
  return out;
}

const base = await phase({ lifted: true, durationMs: baselineMs, live: false });
const r = await phase({ lifted: false, durationMs, live: true });
const total = r.total;
const counts = r.counts;
const n429 = r.n429;
// GHL's fixed windows: a window opens with the first request after the previous closed.
const allowedPerLoc = LIMIT.burst * Math.ceil(durationMs / LIMIT.intervalMs);
const allowed = allowedPerLoc * nLoc;
// What the harness + emulator managed with no limit, scaled to the limited run's duration.
const capacity = Math.round((base.total / baselineMs) * durationMs);
const reachable = Math.min(allowed, capacity);
const jain = (total * total) / (counts.length * counts.reduce((x, y) => x + y * y, 0));
const liveLatency = r.liveLatency.sort((x, y) => x - y);
const pct = (p: number) =>
  liveLatency[Math.min(liveLatency.length - 1, Math.floor((p / 100) * liveLatency.length))] ?? NaN;
const result = {
  store: STORE,
  locations: nLoc,
  durationSec: durationMs / 1000,
  achieved: total,
  allowed,
  baseline: {
    errors: Object.fromEntries(base.errors),
    durationSec: baselineMs / 1000,
    achieved: base.total,
    perSec: +(base.total / (baselineMs / 1000)).toFixed(1),
    capacityOverRun: capacity,
    http429: base.n429,
  },
  reachable,
  utilization: +(total / reachable).toFixed(4),
  utilizationOfAllowed: +(total / allowed).toFixed(4),
  http429: n429,
  jain: +jain.toFixed(5),
  perLocation: { min: Math.min(...counts), max: Math.max(...counts) },
  live: {
    calls: liveLatency.length,
    p50ms: pct(50),
    p99ms: pct(99),
    maxMs: liveLatency.at(-1) ?? NaN,
    withinInterval: (liveLatency.at(-1) ?? 0) <= LIMIT.intervalMs,
  },
  emulatorServed: r.served,
  limiter: r.limiterStats,
  errors: Object.fromEntries(r.errors),
};
console.log(JSON.stringify(result, null, 2));
const pass = reachable > 0 && result.utilization >= 0.97 && n429 === 0 && jain >= 0.99 && result.live.withinInterval;
console.log(
  pass
    ? 'PASS: ≥97% of min(allowed, same-run capacity), 0×429, Jain ≥ 0.99, live within one interval'
    : 'FAIL: targets not met',
);
process.exit(pass ? 0 : 1);
