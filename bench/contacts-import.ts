/**
 * npm run bench:contacts-import — the contact import (issue 14 B) against GHL's rate limit.
 *
 * One location with BENCH_CONTACTS (100,000) contacts bulk-created in the emulator (its own process, GHL's real limit
 * of 100 requests / 10 s per location, in the emulator and in the bridge's limiter). Two phases:
 *
 * 1. **Walk.** The bridge imports them at pages of 500 on the bulk lane, with nothing else using the location's
 *    budget. Prints rows/s against the bulk-lane ceiling (page size × requests per 10 s = 500 × 100 / 10 s = 5,000
 *    rows/s; target ≥ 90 %), the bridge's RSS as the walk passes 10 %, 50 % and 100 % of the rows (it must stay flat:
 *    pages are streamed into the store, nothing is held), and the duplicate-detection time.
 * 2. **Live lane during an import.** As many contacts again are added and a second import starts. Once it has used a
 *    whole window of the budget (100 pages: from then on the location's limit binds), a GHL user sends provider
 *    messages in the same location (BENCH_LIVE_MESSAGES at BENCH_LIVE_RATE/s, loopback channel). Their relay latency
 *    (GHL creates the message → GHL records `delivered`) is compared with the same trickle before any import: an
 *    import must never starve live traffic. The second import is then cancelled.
 *
 * Env: BENCH_CONTACTS (100000), BENCH_LIVE_MESSAGES (40), BENCH_LIVE_RATE (2), TEST_STORE=postgres.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoopbackInbox } from '../src/capabilities/channels/index.js';
import { importsModule } from '../src/capabilities/imports/index.js';
import { providerModule } from '../src/capabilities/provider/index.js';
import { apiKeysModule } from '../src/platform/apikeys/index.js';
import { installationsModule } from '../src/platform/installations/index.js';
import { webhooksModule } from '../src/platform/webhooks/index.js';
import { startTestBridge } from '../test/helpers/store.js';
import { install } from '../test/provider/harness.js';
import { bridgeEnv, fileLogger, pct, startEmulator, stopChild, table } from './common.js';

const CONTACTS = Number(process.env.BENCH_CONTACTS ?? 100_000);
const LIVE = Number(process.env.BENCH_LIVE_MESSAGES ?? 40);
const LIVE_RATE = Number(process.env.BENCH_LIVE_RATE ?? 2);
const PAGE = 500;
const BURST = 100;
const INTERVAL_S = 10;

const { child, world, call: emu } = await startEmulator(['bench/fairness-emulator.ts', '1']);
const logFile = join(mkdtempSync(join(tmpdir(), 'ghl-bridge-import-')), 'bridge.log');
const inbox = new LoopbackInbox(10 * LIVE);
const b = await startTestBridge({
  modules: [
    webhooksModule({ extraEd25519Keys: [world.keys.ed25519PublicKeyPem], extraRsaKeys: [world.keys.rsaPublicKeyPem] }),
    installationsModule(),
    providerModule({ loopbackInbox: inbox }),
    apiKeysModule(),
    importsModule(),
  ],
  log: fileLogger(logFile),
  env: bridgeEnv(world),
});
await emu(`/_emulator/apps/${world.clientId}`, { providerDeliveryUrl: `${b.url}/webhooks/ghl/provider` }, 'PATCH');
const loc = world.locationIds[0]!;
await install(b.url, loc);
await b.ctx.services.get('provider').configureChannel(loc, { kind: 'loopback' });
const liveContacts = await emu<string[]>('/_bench/contacts', { locationId: loc, n: 10, offset: 0 });
const t0 = Date.now();
await emu('/_emulator/contacts/bulk', {
  locationId: loc,
  count: CONTACTS,
  seed: 1,
  duplicates: { email: 100, phone: 100, nameCompany: 100 },
});
const seeded = CONTACTS + 300;
console.error(`seeded ${seeded} contacts in ${Date.now() - t0} ms`);

const providerId = world.conversationProviderId;
const send = async (i: number) =>
  (await emu<{ id: string }>('/_bench/send', { locationId: loc, contactId: liveContacts[i % 10]!, providerId })).id;
const times = async (ids: string[]) =>
  new Map(
    (await emu<Array<[string, number, number | null]>>('/_bench/times', { ids })).map(([id, c, d]) => [id, { c, d }]),
  );
async function trickle(label: string): Promise<number[]> {
  const ids: string[] = [];
  const start = Date.now();
  for (let i = 0; i < LIVE; i++) {
    // Open-loop pacing of the load generator, not synchronisation.
    const due = start + (i * 1000) / LIVE_RATE;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    ids.push(await send(i));
  }
  const deadline = Date.now() + 300_000;
  for (;;) {
    const t = await times(ids);
    if ([...t.values()].every((x) => x.d !== null)) return [...t.values()].map((x) => x.d! - x.c);
    if (Date.now() > deadline) throw new Error(`timed out waiting for the ${label} messages`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

await trickle('warm-up');
const baseline = await trickle('baseline');

const imports = b.ctx.services.get('imports');
const until = async (id: string, done: (p: Awaited<ReturnType<typeof imports.get>>) => boolean) => {
  for (;;) {
    const p = await imports.get(loc, id);
    if (done(p)) return p;
    await new Promise((r) => setTimeout(r, 250));
  }
};

// Phase 1: the walk alone.
const started = await imports.start(loc, { pageSize: PAGE });
const rss: Array<[string, number, number | undefined]> = [];
// With --expose-gc (the npm script passes it), the heap is also read after a full collection: what the walk retains.
const gc = (globalThis as { gc?: () => void }).gc;
const marks = [0.1, 0.5, 1];
let walked = await until(started.id, (p) => {
  const frac = p.rowsDone / seeded;
  while (marks.length && frac >= marks[0]!)
    rss.push([
      `${Math.round(marks.shift()! * 100)} % (${p.rowsDone} rows)`,
      process.memoryUsage().rss,
      gc ? (gc(), process.memoryUsage().heapUsed) : undefined,
    ]);
  return p.status !== 'running';
});
const walkSeenAt = Date.now();
walked = await until(started.id, (p) => p.status !== 'deduplicating');
if (walked.status !== 'completed') throw new Error(`import ended ${walked.status}: ${walked.error}`);
// Approximate (from when the sampler saw the walk end): the duplicate job's run.
const dedupeMs = Math.max(0, walked.finishedAt!.getTime() - walkSeenAt);

// Phase 2: live messages while a second import holds the location's budget.
await emu('/_emulator/contacts/bulk', { locationId: loc, count: CONTACTS, seed: 2 });
const second = await imports.start(loc, { pageSize: PAGE });
await until(second.id, (p) => p.pagesDone >= BURST || p.status !== 'running');
const during = await trickle('during the import');
const load = await imports.get(loc, second.id);
if (load.status !== 'running')
  console.error(
    `warning: the second import ended (${load.status}) before the last live message; the sample is partial`,
  );
await imports.cancel(loc, second.id);

const ceiling = (PAGE * BURST) / INTERVAL_S;
const mb = (n: number) => `${Math.round(n / 1048576)} MB`;
const f = (ms: number) => `${Math.round(ms)} ms`;
console.log(
  `\nbench:contacts-import — store ${b.ctx.store.kind}; ${seeded} contacts; pages of ${PAGE}; GHL limit ${BURST} / ${INTERVAL_S} s per location; live: ${LIVE} provider messages at ${LIVE_RATE}/s in the same location (log in ${logFile})\n`,
);
console.log(
  table(
    ['rows', 'pages', 'rows/s (walk)', 'bulk-lane ceiling', 'of ceiling', 'duplicate groups'],
    [
      [
        walked.rowsDone,
        walked.pagesDone,
        Math.round(walked.rowsPerSecond),
        `${ceiling} rows/s`,
        `${Math.round((walked.rowsPerSecond / ceiling) * 100)} %`,
        walked.duplicateGroups,
      ],
    ],
  ),
);
console.log(`\nRSS of the bridge process: ${rss.map(([k, v]) => `${k}: ${mb(v)}`).join(' · ')}`);
if (gc) console.log(`heap after a full GC: ${rss.map(([k, , h]) => `${k}: ${mb(h!)}`).join(' · ')}`);
console.log(`duplicate detection after the walk: about ${dedupeMs} ms`);
console.log(
  '\n' +
    table(
      ['live phase', 'relay p50', 'relay p99'],
      [
        ['baseline (no import)', f(pct(baseline, 50)), f(pct(baseline, 99))],
        [
          `during an import (its walk meanwhile: ${Math.round(load.rowsPerSecond)} rows/s)`,
          f(pct(during, 50)),
          f(pct(during, 99)),
        ],
      ],
    ),
);
console.log(`\nlive p99 during the import / baseline p99: ${(pct(during, 99) / pct(baseline, 99)).toFixed(1)}×`);
console.log('Targets: ≥ 90 % of the ceiling; RSS flat; live p99 during the import close to the baseline.');
await b.close();
await stopChild(child);
