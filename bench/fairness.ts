/**
 * npm run bench:fairness — does one location's burst slow the others down? (issue 18 item 5)
 *
 * Two locations, GHL's real rate limit (100 requests / 10 s per location) in the emulator and in the bridge's limiter,
 * loopback channel. Location B relays a trickle of messages (BENCH_B_MESSAGES at BENCH_B_RATE/s) twice in one run:
 *   baseline  B alone;
 *   burst     B while location A gets BENCH_BURST messages at once (A's status reports then queue behind A's own
 *             rate limit for BENCH_BURST / 10 s).
 * Latency per message = GHL creates the message → GHL records its `delivered` status (both on the emulator's clock),
 * i.e. the whole relay: delivery webhook, intake, send job, channel, status job, status call.
 * Prints B's p50/p99 in both phases and the ratio burst p99 / baseline p99 (target ≤ 2).
 *
 * Env: BENCH_BURST (1000), BENCH_B_MESSAGES (40), BENCH_B_RATE (4), TEST_STORE=postgres, and any bridge variable
 * (e.g. WORKER_LOCATION_CONCURRENCY=500 to see the effect of the per-location cap).
 */
import { sql } from 'kysely';
import { waitFor } from '../test/helpers/store.js';
import { startBridge, startWorld } from '../test/provider/harness.js';
import { table } from './common.js';

const BURST = Number(process.env.BENCH_BURST ?? 1000);
const B_MESSAGES = Number(process.env.BENCH_B_MESSAGES ?? 40);
const B_RATE = Number(process.env.BENCH_B_RATE ?? 4);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

const w = await startWorld({ locations: 2, emulator: { webhookTimeoutMs: 60_000 } });
const env: Record<string, string> = { LOG_LEVEL: 'warn' };
if (process.env.WORKER_LOCATION_CONCURRENCY) env.WORKER_LOCATION_CONCURRENCY = process.env.WORKER_LOCATION_CONCURRENCY;
const b = await startBridge(w, { env, settings: { retryBaseMs: 200, pollBaseMs: 1000 } });
const [a, bLoc] = w.locationIds as [string, string];
for (const loc of w.locationIds) await b.provider.configureChannel(loc, { kind: 'loopback' });
const contacts = (loc: string, n: number, base: number) =>
  Array.from(
    { length: n },
    (_, i) =>
      w.emu.control.createContact({ locationId: loc, phone: `+1213374${String(base + i).padStart(4, '0')}` }).id,
  );
const aContacts = contacts(a, 50, 0);
const bContacts = contacts(bLoc, 10, 5000);
const send = (loc: string, contactId: string, text: string) =>
  w.emu.control.sendMessageAsUser({
    locationId: loc,
    contactId,
    type: 'SMS',
    message: text,
    conversationProviderId: w.providerId,
  }).id;
const latency = (id: string): number | undefined => {
  const m = w.emu.control.getMessage(id);
  const d = m?.statusHistory.find((s) => s.status === 'delivered');
  return m && d ? d.at - m.createdAtMs : undefined;
};

/** GHL creates the message → the channel's send() (the loopback inbox records when). */
const toSend = (id: string): number | undefined => {
  const m = w.emu.control.getMessage(id);
  const r = b.inbox.list(bLoc).find((x) => x.message.messageId === id);
  return m && r ? Date.parse(r.at) - m.createdAtMs : undefined;
};

/** GHL creates the message → webhook stored by intake, and → outbound row created by the dispatch job. */
async function legs(ids: string[]): Promise<{ intake: number[]; dispatch: number[] }> {
  const ev = await sql<{ id: string; at: Date }>`select payload->>'messageId' as id, received_at as at
    from webhook_events where payload->>'messageId' in (${sql.join(ids)})`.execute(b.ctx.db);
  const out = await b.ctx.db
    .selectFrom('provider_outbound')
    .select(['message_id', 'received_at'])
    .where('message_id', 'in', ids)
    .execute();
  const created = (id: string) => w.emu.control.getMessage(id)!.createdAtMs;
  return {
    intake: ev.rows.map((r) => r.at.getTime() - created(r.id)),
    dispatch: out.map((r) => r.received_at.getTime() - created(r.message_id)),
  };
}

async function trickle(tag: string): Promise<{ total: number[]; send: number[]; ids: string[] }> {
  const ids: string[] = [];
  for (let i = 0; i < B_MESSAGES; i++) {
    ids.push(send(bLoc, bContacts[i % bContacts.length]!, `${tag}${i}`));
    await new Promise((r) => setTimeout(r, 1000 / B_RATE)); // pacing the load generator, not synchronisation
  }
  await waitFor(() => ids.every((id) => latency(id) !== undefined), {
    what: `B's ${tag} messages delivered`,
    timeoutMs: 300_000,
    intervalMs: 50,
  });
  return { total: ids.map((id) => latency(id)!), send: ids.map((id) => toSend(id) ?? NaN), ids };
}

// Warm-up (JIT, connections, tokens) in both locations, not measured.
const warm = [...aContacts.slice(0, 5).map((c) => send(a, c, 'w')), ...bContacts.map((c) => send(bLoc, c, 'w'))];
await waitFor(() => warm.every((id) => latency(id) !== undefined), { what: 'warm-up', timeoutMs: 120_000 });

const baseline = await trickle('base');
const aIds = Array.from({ length: BURST }, (_, i) => send(a, aContacts[i % aContacts.length]!, `a${i}`));
const during = await trickle('burst');
const aDone = aIds.filter((id) => latency(id) !== undefined).length;

const f = (ms: number) => `${Math.round(ms)} ms`;
console.log(
  `\nbench:fairness — store ${b.ctx.store.kind}, location B: ${B_MESSAGES} messages at ${B_RATE}/s; ` +
    `location A: ${BURST} at once; GHL limit 100 / 10 s per location; WORKER_LOCATION_CONCURRENCY=${b.ctx.config.WORKER_LOCATION_CONCURRENCY}\n`,
);
console.log(
  table(
    ['phase', "B's relay p50", "B's relay p99", 'ratio p99 to baseline', 'of which to send() p99'],
    [
      ['baseline (B alone)', f(pct(baseline.total, 50)), f(pct(baseline.total, 99)), '1.00', f(pct(baseline.send, 99))],
      [
        `during A's burst`,
        f(pct(during.total, 50)),
        f(pct(during.total, 99)),
        (pct(during.total, 99) / pct(baseline.total, 99)).toFixed(2),
        f(pct(during.send, 99)),
      ],
    ],
  ),
);
const [lb, ld] = [await legs(baseline.ids), await legs(during.ids)];
console.log(
  `legs p99 (GHL creates → webhook stored / → outbound row / → send()): alone ${f(pct(lb.intake, 99))} / ${f(pct(lb.dispatch, 99))} / ${f(pct(baseline.send, 99))}; ` +
    `during the burst ${f(pct(ld.intake, 99))} / ${f(pct(ld.dispatch, 99))} / ${f(pct(during.send, 99))}`,
);
console.log(`B during the burst, message by message (ms): ${during.total.map((x) => Math.round(x)).join(' ')}`);
console.log(
  `\nA's burst: ${aDone} of ${BURST} delivered by the time B's last message was (A is held to 10 status calls/s). Target: ratio ≤ 2.`,
);
await b.close();
await w.emu.close();
