import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeCast, type FakeCast } from '../fakes/cast-server.js';
import { replayEvents } from '../../src/platform/webhooks/index.js';
import { waitFor } from '../helpers/store.js';
import {
  CAST_INBOUND_KEY,
  CAST_KEY,
  finalStatus,
  startBridge,
  startWorld,
  statusHistory,
  type ProviderBridge,
  type World,
} from './harness.js';

let w: World | undefined;
let b: ProviderBridge | undefined;
let cast: FakeCast | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  await cast?.close();
  b = w = cast = undefined;
});

/** One SMS sent through a loopback channel and delivered; `deliveries()` counts every hand-over to the channel
 * (the inbox keeps one record per message id). */
async function deliveredOnce(phone: string, text: string) {
  w = await startWorld();
  b = await startBridge(w);
  const loc = w.locationIds[0]!;
  await b.provider.configureChannel(loc, { kind: 'loopback' });
  let n = 0;
  b.inbox.on('message', () => n++);
  const contact = w.emu.control.createContact({ locationId: loc, firstName: 'Ray', phone });
  const m = w.emu.control.sendMessageAsUser({
    locationId: loc,
    contactId: contact.id,
    type: 'SMS',
    message: text,
    conversationProviderId: w.providerId,
  });
  await waitFor(() => finalStatus(w!.emu, m.id) === 'delivered', { what: 'delivered' });
  return { m, db: b.ctx.db, deliveries: () => n };
}

describe('SMS round trips', () => {
  it('loopback: ProviderOutboundMessage → delivered in GHL; the auto-reply lands as an inbound message in the same conversation', async () => {
    w = await startWorld();
    b = await startBridge(w);
    const loc = w.locationIds[0]!;
    await b.provider.configureChannel(loc, { kind: 'loopback', autoReply: true });
    const contact = w.emu.control.createContact({ locationId: loc, firstName: 'Ann', phone: '+15551230001' });
    const m = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: contact.id,
      type: 'SMS',
      message: 'hello',
      attachments: ['https://cdn.example.com/a.png'],
      conversationProviderId: w.providerId,
    });
    await waitFor(() => finalStatus(w!.emu, m.id) === 'delivered', { what: 'delivered' });
    expect(statusHistory(w.emu, m.id)).toEqual(['pending', 'delivered']);
    const rec = b.inbox.list(loc);
    expect(rec).toHaveLength(1);
    expect(rec[0]!.message).toMatchObject({
      messageId: m.id,
      phone: '+15551230001',
      message: 'hello',
      attachments: ['https://cdn.example.com/a.png'],
    });
    const reply = await waitFor(
      () => w!.emu.control.listMessages({ contactId: contact.id }).find((x) => x.direction === 'inbound'),
      { what: 'auto-reply in GHL' },
    );
    expect(reply).toMatchObject({
      body: 'Auto-reply: got "hello"',
      conversationId: m.conversationId,
      conversationProviderId: w.providerId,
    });
    expect(w.emu.control.listContacts({ locationId: loc })).toHaveLength(1);
    await waitFor(
      async () =>
        (
          await b!.ctx.db
            .selectFrom('provider_outbound')
            .select('state')
            .where('message_id', '=', m.id)
            .executeTakeFirst()
        )?.state === 'done',
    );
    const row = await b.ctx.db
      .selectFrom('provider_outbound')
      .selectAll()
      .where('message_id', '=', m.id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      state: 'done',
      ghl_status: 'delivered',
      attempts: 1,
      channel_message_id: `loopback-${m.id}`,
    });
  });

  it('cast: send with the messageId as idempotency key → pending → polled receipt → delivered; inbound reply from the gateway reaches the contact', async () => {
    cast = await startFakeCast();
    w = await startWorld();
    b = await startBridge(w);
    const loc = w.locationIds[0]!;
    await b.provider.configureChannel(
      loc,
      { kind: 'cast', apiKey: CAST_KEY, baseUrl: cast.url, inboundApiKey: CAST_INBOUND_KEY },
      { defaultRegion: 'PH' },
    );
    const contact = w.emu.control.createContact({ locationId: loc, firstName: 'Juan', phone: '+639171234567' });
    const m = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: contact.id,
      type: 'SMS',
      message: 'Kumusta',
      conversationProviderId: w.providerId,
    });
    await waitFor(() => cast!.sends.length === 1, { what: 'cast send' });
    expect(cast.sends[0]).toMatchObject({ to: '09171234567', message: 'Kumusta', idempotencyKey: m.id });
    await waitFor(
      async () =>
        (
          await b!.ctx.db
            .selectFrom('provider_outbound')
            .select('ghl_status')
            .where('message_id', '=', m.id)
            .executeTakeFirst()
        )?.ghl_status === 'pending',
      { what: 'pending reported' },
    );
    cast.setStatus(cast.sends[0]!.messageId, 'delivered');
    await waitFor(() => finalStatus(w!.emu, m.id) === 'delivered', { what: 'delivered after poll' });
    expect(statusHistory(w.emu, m.id)).toEqual(['pending', 'pending', 'delivered']);
    expect(cast.sends).toHaveLength(1);

    // Inbound from the SIM gateway (national format) → same contact, same conversation.
    const inbound = (body: unknown, key = CAST_INBOUND_KEY) =>
      fetch(`${b!.url}/channels/${loc}/inbound`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
        body: JSON.stringify(body),
      });
    expect(
      (await inbound({ from: '09171234567', message: 'Salamat', message_id: 'gw-1' }, 'wrong-key-0123456789abcdef'))
        .status,
    ).toBe(401);
    const r = await inbound({ from: '09171234567', message: 'Salamat', message_id: 'gw-1' });
    expect(r.status).toBe(202);
    expect(await r.json()).toMatchObject({ accepted: 1, duplicates: 0 });
    const again = await inbound({ from: '09171234567', message: 'Salamat', message_id: 'gw-1' });
    expect(await again.json()).toMatchObject({ accepted: 0, duplicates: 1 });
    const got = await waitFor(
      () => w!.emu.control.listMessages({ contactId: contact.id }).find((x) => x.direction === 'inbound'),
      { what: 'inbound in GHL' },
    );
    expect(got).toMatchObject({
      body: 'Salamat',
      conversationId: m.conversationId,
      messageType: expect.stringContaining('SMS'),
    });
    expect(w.emu.control.listContacts({ locationId: loc })).toHaveLength(1);
    await waitFor(async () =>
      (await b!.ctx.db.selectFrom('provider_inbound').select('state').execute()).every((x) => x.state === 'done'),
    );
    expect(w.emu.control.listMessages({ contactId: contact.id }).filter((x) => x.direction === 'inbound')).toHaveLength(
      1,
    );
  });

  it('a replayed ProviderOutboundMessage (operator replay, redelivery) does not send the message again', async () => {
    const { m, db, deliveries } = await deliveredOnce('+15551230002', 'once');
    const events = () =>
      db.selectFrom('webhook_events').select(['id', 'status']).where('type', '=', 'ProviderOutboundMessage').execute();
    await waitFor(async () => (await events()).every((e) => e.status === 'dispatched'), { what: 'event dispatched' });
    const r = await replayEvents(db, { type: 'ProviderOutboundMessage' });
    expect(r.replayed).toHaveLength(1);
    await waitFor(async () => (await events()).every((e) => e.status === 'dispatched'), {
      what: 'replayed event dispatched',
    });
    // Anything the replay queued has run once the queue is empty.
    await waitFor(async () => (await db.selectFrom('bridge_jobs').select('id').execute()).length === 0, {
      what: 'queue empty',
    });
    expect(deliveries()).toBe(1);
    expect(statusHistory(w!.emu, m.id)).toEqual(['pending', 'delivered']);
    expect(
      await db
        .selectFrom('provider_outbound')
        .select(['state', 'attempts'])
        .where('message_id', '=', m.id)
        .executeTakeFirst(),
    ).toEqual({ state: 'done', attempts: 1 });
  });

  it('a replay older than DATA_RETENTION_DAYS whose send record was pruned is not sent again: the event goes dead saying why', async () => {
    const { m, db, deliveries } = await deliveredOnce('+15551230003', 'long ago');
    const event = () =>
      db
        .selectFrom('webhook_events')
        .select(['status', 'reason'])
        .where('type', '=', 'ProviderOutboundMessage')
        .executeTakeFirstOrThrow();
    await waitFor(async () => (await event()).status === 'dispatched', { what: 'event dispatched' });
    // 31 days later (default retention 30): the send record has been pruned; the event was kept as dead.
    await db
      .updateTable('webhook_events')
      .set({ status: 'dead', received_at: sql<Date>`now() - interval '31 days'` })
      .execute();
    await db.deleteFrom('provider_outbound').where('message_id', '=', m.id).execute();
    expect((await replayEvents(db, { dead: true })).replayed).toHaveLength(1);
    await waitFor(async () => (await event()).status === 'dead', { what: 'replayed event settled' });
    expect((await event()).reason).toContain('older than DATA_RETENTION_DAYS');
    expect(deliveries()).toBe(1);
    expect(await db.selectFrom('provider_outbound').select('message_id').execute()).toEqual([]);
  });
});
