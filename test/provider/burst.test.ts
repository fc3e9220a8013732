import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/store.js';
import { startBridge, startWorld, type ProviderBridge, type World } from './harness.js';

let w: World | undefined;
let b: ProviderBridge | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  b = w = undefined;
});

describe('burst', () => {
  it('1,000 messages across 10 locations: every one delivered once, per-contact order kept', async () => {
    const LOCS = 10;
    const CONTACTS = 5;
    const PER = 20;
    // Rate limits raised on both sides: this test is about order, the benchmark measures the limit.
    // The emulator's webhook timeout is raised too. Here it fires 1,000 deliveries at once from this same process,
    // so its HTTP client, its API (status calls) and the bridge share one event loop, on a machine that runs other
    // test files beside this one: measured alone, the slowest answer took ~4 s, of which ~1 s with the workers
    // held back. Under CI load that crossed the 10 s default, which measures the machine, not the bridge. How fast
    // the bridge answers a burst from a separate GHL is measured by `BENCH_RATE=max npm run bench:relay` (stored
    // by intake: all 1,000 within ~0.7–0.9 s). A delivery answered with anything but 2xx still fails below.
    w = await startWorld({
      locations: LOCS,
      emulator: { rateLimit: { burst: 10_000, intervalMs: 10_000, daily: 1_000_000 }, webhookTimeoutMs: 60_000 },
    });
    b = await startBridge(w, { limits: { burst: 10_000 }, env: { WORKER_CONCURRENCY: '16' } });
    const contacts: Array<{ loc: string; id: string }> = [];
    for (const loc of w.locationIds) {
      await b.provider.configureChannel(loc, { kind: 'loopback' });
      for (let c = 0; c < CONTACTS; c++)
        contacts.push({
          loc,
          id: w.emu.control.createContact({
            locationId: loc,
            firstName: `C${c}`,
            phone: `+1213373${String(4100 + contacts.length).padStart(4, '0')}`,
          }).id,
        });
    }
    const sent: Array<{ contactId: string; messageId: string }> = [];
    b.inbox.on('message', (r) => sent.push({ contactId: r.message.contactId, messageId: r.message.messageId }));
    const ids: string[] = [];
    for (let i = 0; i < PER; i++) {
      for (const c of contacts)
        ids.push(
          w.emu.control.sendMessageAsUser({
            locationId: c.loc,
            contactId: c.id,
            type: 'SMS',
            message: `#${i}`,
            conversationProviderId: w.providerId,
          }).id,
        );
    }
    expect(ids).toHaveLength(1000);
    await waitFor(
      async () => {
        const r = await b!.ctx.db
          .selectFrom('provider_outbound')
          .select(b!.ctx.db.fn.countAll<number>().as('n'))
          .where('state', '=', 'done')
          .executeTakeFirstOrThrow();
        return Number(r.n) === 1000;
      },
      { what: '1000 done', timeoutMs: 90_000, intervalMs: 200 },
    );
    expect(ids.every((id) => w!.emu.control.getMessage(id)!.status === 'delivered')).toBe(true);
    // GHL saw a 2xx for every webhook (a timeout or 5xx would be an event lost for good).
    const failedDeliveries = w.emu.control.listDeliveries({}).filter((d) => d.state !== 'delivered');
    expect(failedDeliveries.map((d) => d.attempts.at(-1))).toEqual([]);
    expect(sent).toHaveLength(1000);
    expect(new Set(sent.map((s) => s.messageId)).size).toBe(1000);

    // Per contact, channel sends happen in the order the webhooks reached the bridge.
    const arrived = await sql<{ contact_id: string; message_id: string }>`
      select payload->>'contactId' as contact_id, payload->>'messageId' as message_id from webhook_events
      where type = 'ProviderOutboundMessage' order by id`.execute(b.ctx.db);
    const byContact = (rows: Array<{ contactId: string; messageId: string }>) => {
      const m = new Map<string, string[]>();
      for (const r of rows) m.set(r.contactId, [...(m.get(r.contactId) ?? []), r.messageId]);
      return m;
    };
    const expected = byContact(arrived.rows.map((r) => ({ contactId: r.contact_id, messageId: r.message_id })));
    const actual = byContact(sent);
    expect(actual.size).toBe(LOCS * CONTACTS);
    for (const [contact, order] of expected) expect(actual.get(contact), contact).toEqual(order);
  }, 120_000);
});
