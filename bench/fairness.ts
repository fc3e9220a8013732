/**
 * npm run bench:fairness — does one location's burst slow the others down? (issue 18 item 5)
 *
 * Two locations, GHL's real rate limit (100 requests / 10 s per location) in the emulator and in the bridge's limiter,
 * loopback channel, signed deliveries. The emulator runs in its own process (bench/fairness-emulator.ts). Location B
 * relays a trickle (BENCH_B_MESSAGES at BENCH_B_RATE/s) twice in one run:
 *   baseline  B alone;
 *   burst     B while location A gets BENCH_BURST messages at once (A's status reports then queue behind A's own
 *             rate limit for BENCH_BURST / 10 s).
 * Latency per message = GHL creates the message → GHL records its `delivered` status (both on the emulator's clock):
 * the whole relay (delivery webhook, intake, dispatch and channel send, status job, status call). Per leg it also
 * prints GHL creates → webhook stored, → outbound row, → channel send() (bridge clock; same machine).
 * Prints B's p50/p99 in both phases and the ratio burst p99 / baseline p99 (target ≤ 2).
 *
 * Env: BENCH_BURST (1000), BENCH_B_MESSAGES (40), BENCH_B_RATE (4), TEST_STORE=postgres, and any bridge variable
 * (e.g. WORKER_LOCATION_CONCURRENCY=500 to see the effect of the per-location cap).
 */
import { sql } from 'kysely';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoopbackInbox } from '../src/capabilities/channels/index.js';
import { installationsModule } from '../src/platform/installations/index.js';
import { providerModule } from '../src/capabilities/provider/index.js';
import { webhooksModule } from '../src/platform/webhooks/index.js';
import { startTestBridge } from '../test/helpers/store.js';
import { install } from '../test/provider/harness.js';
import { bridgeEnv, fileLogger, pct, startEmulator, stopChild, table } from './common.js';

const BURST = Number(process.env.BENCH_BURST ?? 1000);
const B_MESSAGES = Number(process.env.BENCH_B_MESSAGES ?? 40);
const B_RATE = Number(process.env.BENCH_B_RATE ?? 4);

const { child, world, call: emu } = await startEmulator(['bench/fairness-emulator.ts', '2']);
// The bridge logs at the shipped level into a file (bench/common.ts fileLogger).
const logFile = join(mkdtempSync(join(tmpdir(), 'ghl-bridge-fairness-')), 'bridge.log');
const inbox = new LoopbackInbox(BURST + 10 * B_MESSAGES);
const b = await startTestBridge({
  modules: [
    webhooksModule({ extraEd25519Keys: [world.keys.ed25519PublicKeyPem], extraRsaKeys: [world.keys.rsaPublicKeyPem] }),
    installationsModule(),
    providerModule({ loopbackInbox: inbox }),
  ],
  log: fileLogger(logFile),
  env: {
    ...bridgeEnv(world),
    ...(process.env.WORKER_LOCATION_CONCURRENCY
      ? { WORKER_LOCATION_CONCURRENCY: process.env.WORKER_LOCATION_CONCURRENCY }
      : {}),
  },
});
await emu(`/_emulator/apps/${world.clientId}`, { providerDeliveryUrl: `${b.url}/webhooks/ghl/provider` }, 'PATCH');
const provider = b.ctx.services.get('provider');
const [a, bLoc] = world.locationIds as [string, string];
const contactsOf: Record<string, string[]> = {};
for (const [i, loc] of world.locationIds.entries()) {
  await install(b.url, loc);
  await provider.configureChannel(loc, { kind: 'loopback' });
  contactsOf[loc] = await emu<string[]>('/_bench/contacts', { locationId: loc, n: 50, offset: i * 100 });
}
const providerId = world.conversationProviderId;
const sendB = async (i: number) =>
  (await emu<{ id: string }>('/_bench/send', { locationId: bLoc, contactId: contactsOf[bLoc]![i % 10]!, providerId }))
    .id;

type Times = Map<string, { created: number; delivered: number | null }>;
const times = async (ids: string[]): Promise<Times> =>
  new Map(
    (await emu<Array<[string, number, number | null]>>('/_bench/times', { ids })).map(([id, created, delivered]) => [
      id,
      { created, delivered },
    ]),
  );
async function waitDelivered(ids: string[], what: string): Promise<Times> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const t = await times(ids);
    if ([...t.values()].every((x) => x.delivered !== null)) return t;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Per message: created → webhook stored, → outbound row, → send(), → delivered in GHL. */
async function legs(ids: string[], t: Times) {
  const ev = await sql<{ id: string; at: Date }>`select payload->>'messageId' as id, received_at as at
    from webhook_events where payload->>'messageId' in (${sql.join(ids)})`.execute(b.ctx.db);
  const out = await b.ctx.db
    .selectFrom('provider_outbound')
    .select(['message_id', 'received_at'])
    .where('message_id', 'in', ids)
    .execute();
  const created = (id: string) => t.get(id)!.created;
  const sent = inbox.list(bLoc).filter((r) => t.has(r.message.messageId));
  return {
    total: ids.map((id) => t.get(id)!.delivered! - created(id)),
    intake: ev.rows.map((r) => r.at.getTime() - created(r.id)),
    dispatch: out.map((r) => r.received_at.getTime() - created(r.message_id)),
    send: sent.map((r) => Date.parse(r.at) - created(r.message.messageId)),
  };
}

async function trickle(label: string): Promise<Awaited<ReturnType<typeof legs>>> {
  const ids: string[] = [];
  const t0 = Date.now();
  for (let i = 0; i < B_MESSAGES; i++) {
    // Open-loop pacing of the load generator (message i is offered at t0 + i / rate), not synchronisation.
    const due = t0 + (i * 1000) / B_RATE;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    ids.push(await sendB(i));
  }
  return legs(ids, await waitDelivered(ids, `B's ${label} messages delivered`));
}

// Warm-up (connections, tokens, caches, JIT), not measured: a few messages in each location.
const warm = [
  ...(await emu<{ ids: string[] }>('/_bench/burst', { locationId: a, contacts: contactsOf[a], n: 5, providerId })).ids,
  ...(await Promise.all(Array.from({ length: 5 }, (_, i) => sendB(i)))),
];
await waitDelivered(warm, 'warm-up');

const baseline = await trickle('baseline');
const burst = emu<{ ids: string[] }>('/_bench/burst', { locationId: a, contacts: contactsOf[a], n: BURST, providerId });
const during = await trickle('burst');
const aIds = (await burst).ids;
const aDone = [...(await times(aIds)).values()].filter((x) => x.delivered !== null).length;

const f = (ms: number) => `${Math.round(ms)} ms`;
console.log(
  `\nbench:fairness — store ${b.ctx.store.kind}, emulator in its own process; location B: ${B_MESSAGES} messages at ${B_RATE}/s; ` +
    `location A: ${BURST} at once; GHL limit 100 / 10 s per location; WORKER_LOCATION_CONCURRENCY=${b.ctx.config.WORKER_LOCATION_CONCURRENCY}; LOG_LEVEL=${b.ctx.config.LOG_LEVEL} (log in ${logFile})\n`,
);
const row = (label: string, x: typeof baseline, ratio: string) => [
  label,
  f(pct(x.total, 50)),
  f(pct(x.total, 99)),
  ratio,
  f(pct(x.intake, 99)),
  f(pct(x.dispatch, 99)),
  f(pct(x.send, 99)),
];
console.log(
  table(
    ['phase', "B's relay p50", "B's relay p99", 'p99 ratio', '→ stored p99', '→ outbound row p99', '→ send() p99'],
    [
      row('baseline (B alone)', baseline, '1.00'),
      row("during A's burst", during, (pct(during.total, 99) / pct(baseline.total, 99)).toFixed(2)),
    ],
  ),
);
console.log(`B during the burst, message by message (ms): ${during.total.map((x) => Math.round(x)).join(' ')}`);
console.log(
  `\nA's burst: ${aDone} of ${BURST} delivered by the time B's last message was (A is held to 10 status calls/s). Target: p99 ratio ≤ 2.`,
);
await b.close();
await stopChild(child);
