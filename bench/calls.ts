/**
 * npm run bench:calls — 1,000 workflow call webhooks across 10 locations (GHL's standard payload with the call's
 * message id in customData), posted 20 at a time as GHL's workflow action would. Reports, per store:
 *   - the webhook answer p50/p99 (target p99 ≤ 50 ms on PostgreSQL), beside a same-run baseline: GET /healthz of the
 *     same bridge at the same concurrency (HTTP + Fastify, no storage);
 *   - enrichment: time until every call is complete (confirmed through the API, transcript fetched, call.completed
 *     stored), against GHL's real rate limit (100 requests / 10 s per location, the emulator's default);
 *   - GHL API calls per call (target ≤ 3 with a transcript), counted by the emulator;
 *   - lost: webhooks answered 2xx without a stored inbox entry, a call record or a call.completed event (target 0).
 * Each store runs twice: intake only (WORKER_CONCURRENCY=0, as on a replica that only takes HTTP: the answer time
 * alone), then intake with the workers enriching in the same process.
 * The emulator runs in the same process as the bridge (its work per call is small next to the bridge's); PGlite is
 * in memory. App webhooks are off, so every record comes from the workflow webhook alone.
 *
 *   npm run bench:calls -- --calls 1000 --locations 10 --concurrency 20 --stores pglite,postgres
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { apiKeysModule } from '../src/platform/apikeys/index.js';
import { callsModule } from '../src/capabilities/calls/index.js';
import { freshSchema } from '../test/helpers/store.js';
import { PUBLIC_URL, startBridge, startWorld } from '../test/provider/harness.js';
import { fileLogger, pct, PG_URL, postgresAvailable, SHIPPED_LOG_LEVEL, table } from './common.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '1000' },
    locations: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '20' },
    stores: { type: 'string', default: 'pglite,postgres' },
  },
});
const CALLS = Number(values.calls);
const LOCATIONS = Number(values.locations);
const CONCURRENCY = Number(values.concurrency);

async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

async function timed(f: () => Promise<Response>): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  const r = await f();
  await r.arrayBuffer();
  return { ms: performance.now() - t0, status: r.status };
}

async function run(store: 'pglite' | 'postgres', workers: boolean) {
  const w = await startWorld({ locations: LOCATIONS });
  const env: Record<string, string> = { LOG_LEVEL: SHIPPED_LOG_LEVEL, ...(workers ? {} : { WORKER_CONCURRENCY: '0' }) };
  if (store === 'postgres') Object.assign(env, { DATABASE_URL: PG_URL, DATABASE_SCHEMA: freshSchema() });
  const b = await startBridge(w, {
    modules: [apiKeysModule(), callsModule()],
    env,
    log: fileLogger(join(tmpdir(), 'ghl-bridge-bench-calls.log')),
  });
  const endpoints = b.ctx.services.get('calls').endpoints;
  const urls = new Map<string, string>();
  for (const l of w.locationIds) urls.set(l, (await endpoints.url(l)).replace(PUBLIC_URL, b.url));

  // The calls, made in GHL (the emulator): one contact per 10 calls.
  const jobs: Array<{ url: string; payload: unknown }> = [];
  for (let i = 0; i < CALLS; i++) {
    const loc = w.locationIds[i % LOCATIONS]!;
    const contact = w.emu.control.createContact({
      locationId: loc,
      firstName: `C${i}`,
      phone: `+1415555${String(1000 + i).padStart(4, '0')}`,
    });
    const r = await fetch(`${w.emu.baseUrl}/_emulator/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ locationId: loc, contactId: contact.id, status: 'completed', duration: 30 + (i % 60) }),
    });
    const { messageId } = (await r.json()) as { messageId: string };
    jobs.push({
      url: urls.get(loc)!,
      payload: {
        contact_id: contact.id,
        full_name: `C${i}`,
        phone: contact.phone,
        location: { id: loc },
        workflow: { id: 'wf1', name: 'Call completed' },
        customData: { messageId, callStatus: 'completed', disposition: i % 3 ? 'Interested' : 'No interest' },
      },
    });
  }

  // Baseline: the same bridge, same concurrency, a route that stores nothing.
  const base: number[] = [];
  await pool(jobs, CONCURRENCY, async () => {
    base.push((await timed(() => fetch(`${b.url}/healthz`))).ms);
  });

  const apiBefore = w.emu.control.listApiCalls().length;
  const answers: number[] = [];
  let accepted = 0;
  const t0 = performance.now();
  await pool(jobs, CONCURRENCY, async (j) => {
    const r = await timed(() =>
      fetch(j.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(j.payload),
      }),
    );
    answers.push(r.ms);
    if (r.status === 202) accepted++;
  });
  const postedMs = performance.now() - t0;
  const db = b.ctx.db;
  const count = async (t: 'calls_inbox' | 'calls' | 'calls_events', where?: [string, string]) => {
    let q = db.selectFrom(t).select(db.fn.countAll().as('n'));
    if (where) q = q.where(where[0] as never, '=', where[1] as never);
    return Number((await q.executeTakeFirst())?.n ?? 0);
  };
  // Until every call is complete (or nothing moves for 60 s).
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    if (!workers) break;
    const done = await count('calls_events', ['type', 'call.completed']);
    if (done >= accepted) break;
    if (done !== last) [last, lastChange] = [done, Date.now()];
    if (Date.now() - lastChange > 60_000) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const enrichedMs = performance.now() - t0;
  const calls = w.emu.control
    .listApiCalls()
    .slice(apiBefore)
    .filter((c) => !c.path.startsWith('/oauth'));
  const inbox = await count('calls_inbox');
  const records = await count('calls');
  const completed = await count('calls_events', ['type', 'call.completed']);
  const ready = Number(
    (
      await db
        .selectFrom('calls')
        .select(db.fn.countAll().as('n'))
        .where('transcript_state', '=', 'ready')
        .executeTakeFirst()
    )?.n ?? 0,
  );
  await b.close();
  await w.emu.close();
  const perLocation = CALLS / LOCATIONS;
  return {
    store: store === 'postgres' ? 'PostgreSQL' : 'PGlite (memory)',
    p50: pct(answers, 50),
    p99: pct(answers, 99),
    baseP50: pct(base, 50),
    baseP99: pct(base, 99),
    postedMs,
    enrichedMs,
    // GHL's limit is 100 requests per 10 s per location: the shortest possible enrichment with this many calls.
    floorMs: ((perLocation * (calls.length / CALLS)) / 10) * 1000,
    apiPerCall: calls.length / CALLS,
    lost: workers ? accepted - Math.min(inbox, records, completed) : accepted - inbox,
    accepted,
    ready,
  };
}

const stores = values.stores!.split(',') as Array<'pglite' | 'postgres'>;
const rows: Array<Array<string | number>> = [];
for (const s of stores) {
  if (s === 'postgres' && !(await postgresAvailable())) {
    console.error('PostgreSQL not reachable; skipped');
    continue;
  }
  for (const workers of [false, true]) {
    const r = await run(s, workers);
    rows.push([
      `${r.store}, ${workers ? 'intake + enrichment' : 'intake only (WORKER_CONCURRENCY=0)'}`,
      `${r.p50.toFixed(1)} / ${r.p99.toFixed(1)} ms`,
      `${r.baseP50.toFixed(1)} / ${r.baseP99.toFixed(1)} ms`,
      (r.p99 / r.baseP99).toFixed(1) + '×',
      workers ? `${(r.enrichedMs / 1000).toFixed(1)} s (floor ${(r.floorMs / 1000).toFixed(1)} s)` : '—',
      workers ? r.apiPerCall.toFixed(2) : '—',
      workers ? `${r.ready} / ${r.accepted}` : '—',
      r.lost,
    ]);
  }
}
console.log(
  `\n${CALLS} workflow call webhooks, ${LOCATIONS} locations, ${CONCURRENCY} in flight\n\n` +
    table(
      [
        'store',
        'webhook answer p50 / p99',
        'baseline /healthz p50 / p99',
        'p99 ratio',
        'all enriched after',
        'GHL calls per call',
        'transcripts',
        'lost',
      ],
      rows,
    ),
);
process.exit(0);
