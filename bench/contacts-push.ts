/**
 * Contact push part of `bench:contacts` (issue 14): BENCH_CONTACTS (10,000) contacts across BENCH_LOCATIONS (10)
 * locations, pushed in batches of 1,000 through POST /v1/locations/:loc/contacts/batches, against GHL (emulated in its
 * own process, bench/contacts-push-emulator.ts) with GHL's rate limit (BENCH_BURST = 100 requests / 10 s per location)
 * in both the emulator and the bridge's limiter. Reports:
 *   - push: wall time, records/s, GHL calls, the share of the API budget used (calls ÷ (locations × burst per 10 s ×
 *     elapsed)), and 429 answers (target 0);
 *   - re-push of the same records: GHL calls (target 0: every record is `unchanged`).
 * Each record: names, email, phone, company, source, two tags and two custom fields (one text, one number).
 *
 * Env: BENCH_CONTACTS, BENCH_LOCATIONS, BENCH_BURST, TEST_STORE=postgres.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contactsModule } from '../src/capabilities/contacts/index.js';
import { apiKeysModule } from '../src/platform/apikeys/index.js';
import { installationsModule } from '../src/platform/installations/index.js';
import { webhooksModule } from '../src/platform/webhooks/index.js';
import { startTestBridge } from '../test/helpers/store.js';
import { install } from '../test/provider/harness.js';
import { CONTACT_SCOPES } from '../test/contacts/harness.js';
import { bridgeEnv, fileLogger, startEmulator, stopChild, table } from './common.js';

const N = Number(process.env.BENCH_CONTACTS ?? 10_000);
const LOCS = Number(process.env.BENCH_LOCATIONS ?? 10);
const BURST = Number(process.env.BENCH_BURST ?? 100);
const INTERVAL = 10_000;
const BATCH = 1000;
/** Valid US area codes (one per location, so phones stay unique across locations too). */
const AREAS = [201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217];

const {
  child,
  world,
  call: emu,
} = await startEmulator(['bench/contacts-push-emulator.ts', String(LOCS), String(BURST), String(INTERVAL)]);
const logFile = join(mkdtempSync(join(tmpdir(), 'ghl-bridge-contacts-')), 'bridge.log');
const b = await startTestBridge({
  modules: [
    webhooksModule({ extraEd25519Keys: [world.keys.ed25519PublicKeyPem], extraRsaKeys: [world.keys.rsaPublicKeyPem] }),
    installationsModule({ limits: { burst: BURST, intervalMs: INTERVAL } }),
    apiKeysModule(),
    contactsModule(),
  ],
  env: { ...bridgeEnv(world), GHL_SCOPES: CONTACT_SCOPES, WORKER_CONCURRENCY: '32' },
  log: fileLogger(logFile),
});
type Calls = { total: number; by429: number; byOp: Record<string, number> };
const calls = () => emu<Calls>('/_bench/calls', undefined, 'GET');
try {
  const locs = world.locationIds;
  for (const loc of locs) await install(b.url, loc);
  const { key } = await b.ctx.services.get('apiKeys').create({ name: 'bench', locationIds: locs });
  const api = async (path: string, method = 'GET', body?: unknown) => {
    const r = await fetch(`${b.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const j = (await r.json()) as Record<string, unknown>;
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
    return j;
  };
  // Mapping (not measured): two logical fields per location, created in GHL.
  for (const loc of locs) {
    await api(`/v1/locations/${loc}/contacts/mapping/job_title`, 'PUT', { dataType: 'TEXT' });
    await api(`/v1/locations/${loc}/contacts/mapping/dial_attempts`, 'PUT', { dataType: 'NUMERICAL' });
    await api(`/v1/locations/${loc}/contacts/mapping/refresh`, 'POST', { create: true });
  }
  const per = Math.ceil(N / LOCS);
  const records = (li: number) =>
    Array.from({ length: per }, (_, i) => ({
      externalId: `crm-${li}-${i}`,
      firstName: `First${i}`,
      lastName: `Last${li}`,
      email: `p${li}.${i}@bench.example.com`,
      phone: `+1${AREAS[li % AREAS.length]}${2_000_000 + li * 100_000 + i}`,
      companyName: `Company ${i % 50}`,
      source: 'bench',
      tags: ['bench', `cohort-${i % 5}`],
      customFields: { job_title: `Role ${i % 20}`, dial_attempts: i % 7 },
    }));
  const run = async () => {
    const before = await calls();
    const t0 = Date.now();
    const batches: Array<[string, string]> = [];
    for (const [li, loc] of locs.entries()) {
      const recs = records(li);
      for (let i = 0; i < recs.length; i += BATCH) {
        const r = await api(`/v1/locations/${loc}/contacts/batches`, 'POST', { records: recs.slice(i, i + BATCH) });
        batches.push([loc, String(r.batchId)]);
      }
    }
    const counts: Record<string, number> = {};
    for (const [loc, id] of batches) {
      for (;;) {
        const s = await api(`/v1/locations/${loc}/contacts/batches/${id}`);
        if (s.state === 'completed') {
          for (const [k, v] of Object.entries(s.counts as Record<string, number>)) counts[k] = (counts[k] ?? 0) + v;
          break;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const secs = (Date.now() - t0) / 1000;
    const after = await calls();
    const used = after.total - before.total - (after.by429 - before.by429);
    const budget = LOCS * BURST * (secs / (INTERVAL / 1000));
    const ops = Object.fromEntries(
      Object.entries(after.byOp)
        .map(([k, v]) => [k, v - (before.byOp[k] ?? 0)] as const)
        .filter(([, v]) => v > 0),
    );
    return { secs, used, budget, n429: after.by429 - before.by429, counts, ops };
  };
  const first = await run();
  const second = await run();
  const f = (x: number) => x.toFixed(1);
  console.log(
    `\nbench:contacts (push) — ${process.env.TEST_STORE === 'postgres' ? 'PostgreSQL' : 'PGlite'}, ${per * LOCS} contacts across ${LOCS} locations, GHL limit ${BURST} req / 10 s per location\n`,
  );
  console.log(
    table(
      ['run', 'seconds', 'records/s', 'GHL calls', 'budget used', '429s', 'outcomes'],
      [first, second].map((r, i) => [
        i === 0 ? 'push' : 're-push',
        f(r.secs),
        f((per * LOCS) / r.secs),
        r.used,
        `${((100 * r.used) / r.budget).toFixed(0)} %`,
        r.n429,
        Object.entries(r.counts)
          .filter(([, v]) => v)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
      ]),
    ),
  );
  console.log(
    `\ntargets: push ≥ 90 % of the API budget with 0 × 429; re-push 0 GHL calls (got ${second.used}). Log: ${logFile}`,
  );
  if (second.used || process.env.BENCH_DEBUG)
    console.log('GHL calls of the push:', first.ops, '\nof the re-push:', second.ops);
} finally {
  await b.close();
  await stopChild(child);
}
