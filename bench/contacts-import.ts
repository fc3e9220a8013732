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
 *    messages in the same location (BENCH_LIVE_MESSAGES at BENCH_LIVE_RATE/s, loopback channel), as they do before
 *    any import (the baseline). For both trickles: the bridge's relay overhead (webhook stored → channel send;
 *    channel result → GHL status call; target p99 ≤ 50 ms, the relay target), the end-to-end latency (GHL creates the
 *    message → GHL records `delivered`, which includes the emulator on this same machine), and how many live calls
 *    waited more than 50 ms for a rate-limit slot (target 0: an import never starves live traffic). The second import
 *    is then cancelled.
 *
 * Env: BENCH_CONTACTS (100000), BENCH_LIVE_MESSAGES (100), BENCH_LIVE_RATE (4), TEST_STORE=postgres.
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
const LIVE = Number(process.env.BENCH_LIVE_MESSAGES ?? 100);
const LIVE_RATE = Number(process.env.BENCH_LIVE_RATE ?? 4);
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
/**
 * One trickle of live messages: end to end (GHL creates the message → GHL records `delivered`), and the bridge's own
 * legs from its relay events: webhook stored → channel send (outbound), channel result → GHL status call (status).
 */
const provider = b.ctx.services.get('provider');
async function trickle(label: string): Promise<{ e2e: number[]; outbound: number[]; status: number[] }> {
  const ids: string[] = [];
  const outbound = new Map<string, number>();
  const status = new Map<string, number>();
  const onSend = (e: { messageId: string; attempt: number; at: number; receivedAt: number }) => {
    if (e.attempt === 1) outbound.set(e.messageId, e.at - e.receivedAt);
  };
  const onStatus = (e: { messageId: string; at: number; since: number }) => status.set(e.messageId, e.at - e.since);
  provider.events.on('send', onSend);
  provider.events.on('status', onStatus);
  const start = Date.now();
  for (let i = 0; i < LIVE; i++) {
    // Open-loop pacing of the load generator, not synchronisation.
    const due = start + (i * 1000) / LIVE_RATE;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    ids.push(await send(i));
  }
  const deadline = Date.now() + 300_000;
  try {
    for (;;) {
      const t = await times(ids);
      if ([...t.values()].every((x) => x.d !== null))
        return {
          e2e: [...t.values()].map((x) => x.d! - x.c),
          outbound: ids.flatMap((id) => outbound.get(id) ?? []),
          status: ids.flatMap((id) => status.get(id) ?? []),
        };
      if (Date.now() > deadline) throw new Error(`timed out waiting for the ${label} messages`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    provider.events.off('send', onSend);
    provider.events.off('status', onStatus);
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
// The live lane's waits for a rate-limit slot during the trickle (the bridge's histogram, before and after).
const liveWaits = async () => {
  const text = await (await fetch(`${b.url}/metrics`)).text();
  const get = (le: string) =>
    Number(
      new RegExp(`^ghl_bridge_ghl_ratelimit_wait_seconds_bucket\\{le="${le}",lane="live"\\} (\\S+)$`, 'm').exec(
        text,
      )?.[1] ?? 0,
    );
  return { all: get('\\+Inf'), fast: get('0.05') };
};
const w0 = await liveWaits();
const during = await trickle('during the import');
const w1 = await liveWaits();
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
const p5099 = (xs: number[]) => `${f(pct(xs, 50))} / ${f(pct(xs, 99))}`;
console.log(
  '\n' +
    table(
      ['live phase', 'GHL → delivered p50 / p99', 'bridge: stored → channel send', 'bridge: result → status call'],
      [
        ['baseline (no import)', p5099(baseline.e2e), p5099(baseline.outbound), p5099(baseline.status)],
        [
          `during an import (its walk meanwhile: ${Math.round(load.rowsPerSecond)} rows/s)`,
          p5099(during.e2e),
          p5099(during.outbound),
          p5099(during.status),
        ],
      ],
    ),
);
const slow = [...during.e2e].sort((x, y) => y - x).slice(0, 3);
console.log(
  `live messages during the import: slowest end to end ${slow.map(f).join(', ')}; their GHL calls waiting > 50 ms ` +
    `for a rate-limit slot: ${w1.all - w0.all - (w1.fast - w0.fast)} of ${w1.all - w0.all}`,
);
const share = walked.rowsPerSecond / ceiling;
const heap = rss.map(([, , h]) => h).filter((h): h is number => h !== undefined);
const flat = heap.length < 2 || Math.max(...heap) <= 1.5 * Math.min(...heap);
const liveRatio = pct(during.e2e, 99) / pct(baseline.e2e, 99);
const overhead = Math.max(pct(during.outbound, 99), pct(during.status, 99));
const waited = w1.all - w0.all - (w1.fast - w0.fast);
console.log(
  `end to end, p99 during the import / baseline p99: ${liveRatio.toFixed(1)}× (includes GHL's side: the emulator shares this machine)`,
);
console.log(
  `${share >= 0.9 && flat && overhead <= 50 && waited === 0 ? 'PASS' : 'FAIL'}: walk ≥ 90 % of the ceiling (${Math.round(share * 100)} %), ` +
    `heap flat within 1.5× (${flat ? 'yes' : 'no'}${gc ? '' : ', not measured without --expose-gc'}), ` +
    `live relay overhead p99 during the import ≤ 50 ms, the relay target (${Math.round(overhead)} ms), ` +
    `no live call waiting > 50 ms for a rate-limit slot (${waited})`,
);
await b.close();
await stopChild(child);
