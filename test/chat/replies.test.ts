import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsModule } from '../../src/capabilities/events/index.js';
import { ConfigError } from '../../src/infra/config/index.js';
import { DISPATCH_JOB } from '../../src/platform/webhooks/index.js';
import { testConfig, waitFor } from '../helpers/store.js';
import { ADMIN } from '../provider/harness.js';
import { startReceiver } from '../events/harness.js';
import { chatMessage, post, replies, startChat, type ChatWorld } from './harness.js';

/**
 * Replies back from GHL's other channels (the app-level OutboundMessage event), the Live_Chat fallback for clients
 * with no phone and no e-mail, and the `chat.message` bridge event. Real emulator, both stores.
 */

async function postedCount(c: ChatWorld, loc: string): Promise<number> {
  const r = await c.b.ctx.db
    .selectFrom('chat_messages')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('location_id', '=', loc)
    .where('state', '=', 'posted')
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Every GHL event the emulator sent has been handled by the bridge, and every chat job has run. */
async function settled(c: ChatWorld): Promise<void> {
  await c.w.emu.idle();
  await waitFor(
    async () =>
      (
        await c.b.ctx.db
          .selectFrom('bridge_jobs')
          .select('id')
          .where((eb) => eb.or([eb('kind', '=', DISPATCH_JOB), eb('kind', 'like', 'chat.%')]))
          .execute()
      ).length === 0,
    { what: 'webhook dispatch and chat jobs finished' },
  );
}

async function link(c: ChatWorld, loc: string, thread: string, client: Record<string, unknown>, id: string) {
  const before = await postedCount(c, loc);
  expect((await post(c, loc, 'messages', { conversationId: thread, client, message: chatMessage(id) })).status).toBe(
    202,
  );
  await waitFor(async () => (await postedCount(c, loc)) > before, { what: `${id} posted` });
  const row = await c.b.ctx.db
    .selectFrom('chat_clients')
    .select('contact_id')
    .where('location_id', '=', loc)
    .where('client_id', '=', client.externalId as string)
    .executeTakeFirstOrThrow();
  return row.contact_id!;
}

describe('CHAT_FORWARD_OTHER_CHANNELS=true', () => {
  let c: ChatWorld;
  let loc: string;
  let sub: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    c = await startChat({
      env: { CHAT_FORWARD_OTHER_CHANNELS: 'true', EVENTS_ALLOWED_NETWORKS: '127.0.0.1/32', EVENTS_POLL_MS: '100' },
      modules: [eventsModule()],
    });
    loc = c.w.locationIds[0]!;
    sub = await startReceiver();
    const res = await fetch(`${c.b.url}/admin/api/subscriptions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: sub.url, eventTypes: ['chat.message'] }),
    });
    expect(res.status).toBe(201);
    // The subscription is seen by the bridge's modules (events.active()) within EVENTS_POLL_MS.
    await waitFor(() => c.b.ctx.services.get('events').active(), { what: 'events active' });
  }, 60_000);
  afterAll(async () => {
    await sub?.close();
    await c?.close();
  });

  it("a GHL user's SMS reply (GHL's own SMS, not the provider) to a linked contact reaches the chat channel once, with the chat ids; GHL's status is left alone", async () => {
    const contactId = await link(c, loc, 'thread-sms', { externalId: 'vcx-sms', phone: '+14155550301' }, 'o1');
    c.rx.received.length = 0;
    const reply = c.w.emu.control.sendMessageAsUser({ locationId: loc, contactId, type: 'SMS', message: 'native' });
    expect(reply.conversationProviderId).toBeUndefined();
    await waitFor(() => c.rx.received.length >= 1, { what: 'forwarded reply' });
    await settled(c);
    await c.b.runMaintenance();
    expect(replies(c.rx)).toHaveLength(1);
    expect(replies(c.rx)[0]).toMatchObject({
      messageId: reply.id,
      contactId,
      channel: 'SMS',
      message: 'native',
      phone: '+14155550301',
      contractVersion: 2,
      chat: {
        conversationId: 'thread-sms',
        clientId: 'vcx-sms',
        ghlConversationId: reply.conversationId,
        ghlChannel: 'SMS',
      },
    });
    expect(c.rx.received[0]!.headers['webhook-id']).toBe(reply.id);
    // The bridge is not this message's provider: GHL's status history has only GHL's own entry.
    expect(c.w.emu.control.getMessage(reply.id)!.statusHistory.map((s) => s.by)).toEqual(['ghl']);
    // A read receipt from the chat product for it is accepted, and still not reported to GHL.
    const rr = await post(c, loc, 'status', { ghlMessageId: reply.id, status: 'read' });
    expect(rr.status).toBe(202);
    expect(await rr.json()).toMatchObject({ changed: false });
    await settled(c);
    expect(c.w.emu.control.getMessage(reply.id)!.statusHistory.map((s) => s.by)).toEqual(['ghl']);
    // Redelivery of the same event (GHL retries, an operator replay): still one.
    const row = await c.b.ctx.db
      .selectFrom('chat_replies')
      .selectAll()
      .where('ghl_message_id', '=', reply.id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ state: 'sent', via: 'other_channel', conversation_id: 'thread-sms' });
    // The look-up answers for the reply's GHL id: the thread and client it went to.
    const look = await fetch(`${c.b.url}/v1/locations/${loc}/chat/lookup?ghlMessageId=${reply.id}`, {
      headers: { authorization: c.auth },
    });
    expect(look.status).toBe(200);
    expect(await look.json()).toMatchObject({
      reply: { ghlMessageId: reply.id, conversationId: 'thread-sms', via: 'other_channel', ghlChannel: 'SMS' },
      client: { externalId: 'vcx-sms', ghlContactId: contactId },
    });
  });

  it('an e-mail a GHL user sends to a linked contact is forwarded as channel Email with its subject and html', async () => {
    const contactId = await link(
      c,
      loc,
      'thread-mail',
      { externalId: 'vcx-mail', email: 'mia@example.com', name: 'Mia Mail' },
      'm1',
    );
    c.rx.received.length = 0;
    const mail = c.w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId,
      type: 'Email',
      subject: 'Your order',
      html: '<p>Shipped</p>',
    });
    await waitFor(() => c.rx.received.length >= 1, { what: 'forwarded e-mail' });
    expect(replies(c.rx)[0]).toMatchObject({
      messageId: mail.id,
      channel: 'Email',
      subject: 'Your order',
      html: '<p>Shipped</p>',
      emailTo: ['mia@example.com'],
      chat: { conversationId: 'thread-mail', clientId: 'vcx-mail', ghlChannel: 'Email' },
    });
  });

  it("an unlinked contact's OutboundMessage is ignored", async () => {
    const other = c.w.emu.control.createContact({ locationId: loc, firstName: 'Not', phone: '+14155550399' });
    c.rx.received.length = 0;
    const m = c.w.emu.control.sendMessageAsUser({ locationId: loc, contactId: other.id, type: 'SMS', message: 'x' });
    await settled(c);
    expect(c.rx.received).toHaveLength(0);
    const rec = await c.b.ctx.db
      .selectFrom('chat_replies')
      .select('ghl_message_id')
      .where('ghl_message_id', '=', m.id)
      .execute();
    expect(rec).toHaveLength(0);
  });

  it("a reply through the bridge's own provider is delivered once (ProviderOutboundMessage), not again from its OutboundMessage; the bridge's agent messages are never forwarded", async () => {
    const contactId = await link(c, loc, 'thread-p', { externalId: 'vcx-p', phone: '+14155550302' }, 'p1');
    c.rx.received.length = 0;
    const reply = c.w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId,
      type: 'SMS',
      message: 'via provider',
      conversationProviderId: c.w.providerId,
    });
    // An agent message pushed by the chat product lands in GHL as outbound (GHL sends an OutboundMessage for it).
    await post(c, loc, 'messages', {
      conversationId: 'thread-p',
      client: { externalId: 'vcx-p' },
      message: chatMessage('p-agent', { direction: 'outbound' }),
    });
    await waitFor(() => c.rx.received.length >= 1, { what: 'provider reply' });
    await waitFor(async () => (await postedCount(c, loc)) >= 3, { what: 'agent message posted' });
    await settled(c);
    await c.b.runMaintenance();
    const types = c.w.emu.control.listDeliveries({}).filter((d) => d.payload.messageId === reply.id);
    expect(types.map((d) => d.eventType).sort()).toEqual(['OutboundMessage', 'ProviderOutboundMessage']);
    expect(replies(c.rx).map((r) => r.messageId)).toEqual([reply.id]);
    expect(replies(c.rx)[0]!.chat).toMatchObject({ conversationId: 'thread-p', clientId: 'vcx-p' });
    expect((replies(c.rx)[0]!.chat as { ghlChannel?: string }).ghlChannel).toBeUndefined();
    const agent = c.w.emu.control.listMessages({ locationId: loc }).find((m) => m.altId === 'p-agent')!;
    expect(agent.direction).toBe('outbound');
    expect(c.w.emu.control.listDeliveries({}).some((d) => d.payload.messageId === agent.id)).toBe(true);
  });

  it('chat.message reaches a subscriber for a pushed message written into GHL and for replies handed to the chat product', async () => {
    const contactId = await link(c, loc, 'thread-e', { externalId: 'vcx-e', phone: '+14155550303' }, 'e1');
    const native = c.w.emu.control.sendMessageAsUser({ locationId: loc, contactId, type: 'WhatsApp', message: 'wa' });
    const viaProvider = c.w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId,
      type: 'SMS',
      message: 'p',
      conversationProviderId: c.w.providerId,
    });
    const ev = (pred: (d: Record<string, unknown>) => boolean) =>
      sub.got.filter((g) => g.body.type === 'chat.message' && pred(g.body.data));
    await waitFor(
      () => ev((d) => d.messageId === native.id).length && ev((d) => d.messageId === viaProvider.id).length,
      {
        what: 'chat.message for both replies',
      },
    );
    const pushed = c.w.emu.control.listMessages({ locationId: loc }).find((m) => m.altId === 'e1')!;
    await waitFor(() => ev((d) => d.externalMessageId === 'e1').length, { what: 'chat.message for the push' });
    expect(ev((d) => d.externalMessageId === 'e1')[0]!.body.data).toEqual({
      locationId: loc,
      contactId,
      conversationId: pushed.conversationId,
      messageId: pushed.id,
      externalConversationId: 'thread-e',
      externalMessageId: 'e1',
      direction: 'inbound',
      origin: 'chat',
    });
    expect(ev((d) => d.messageId === native.id)[0]!.body.data).toMatchObject({
      contactId,
      externalConversationId: 'thread-e',
      direction: 'outbound',
      origin: 'ghl',
    });
    await settled(c);
    await c.b.runMaintenance();
    // One event per message, however often the jobs ran.
    expect(ev((d) => d.messageId === native.id)).toHaveLength(1);
    expect(ev((d) => d.messageId === viaProvider.id)).toHaveLength(1);
    expect(ev((d) => d.externalMessageId === 'e1')).toHaveLength(1);
  });

  it('a dropped OutboundMessage of another channel is repaired by the reconcile, once', async () => {
    const contactId = await link(c, loc, 'thread-r', { externalId: 'vcx-rr', phone: '+14155550304' }, 'r1');
    c.rx.received.length = 0;
    c.w.emu.control.dropMatchingWebhooks({ eventType: 'OutboundMessage', contactId });
    const lost = c.w.emu.control.sendMessageAsUser({ locationId: loc, contactId, type: 'SMS', message: 'lost' });
    await settled(c);
    expect(c.rx.received).toHaveLength(0);
    const r = await c.b.ctx.services.get('chat').reconcile({ locationId: loc });
    expect(r.repaired).toBe(1);
    await waitFor(() => c.rx.received.length >= 1, { what: 'repaired reply' });
    expect(replies(c.rx)[0]).toMatchObject({ messageId: lost.id, chat: { conversationId: 'thread-r' } });
    expect((await c.b.ctx.services.get('chat').reconcile({ locationId: loc })).repaired).toBe(0);
    await settled(c);
    expect(c.rx.received).toHaveLength(1);
  });
});

describe('CHAT_FORWARD_OTHER_CHANNELS off (default)', () => {
  let c: ChatWorld;
  let loc: string;
  beforeAll(async () => {
    c = await startChat();
    loc = c.w.locationIds[0]!;
  }, 60_000);
  afterAll(async () => c?.close());

  it('a client with no phone and no e-mail goes into GHL as Live_Chat, and a GHL Live Chat reply reaches the chat product once', async () => {
    const contactId = await link(c, loc, 'thread-lc', { externalId: 'vcx-anon', name: 'Anon' }, 'lc1');
    const inGhl = c.w.emu.control.listMessages({ locationId: loc }).find((m) => m.altId === 'lc1')!;
    expect(inGhl.messageType).toBe('TYPE_LIVE_CHAT');
    // GHL cannot send SMS or e-mail to this contact: the provider's SMS type would leave it unreachable.
    expect(() =>
      c.w.emu.control.sendMessageAsUser({
        locationId: loc,
        contactId,
        type: 'SMS',
        message: 'no',
        conversationProviderId: c.w.providerId,
      }),
    ).toThrow(/phone/);
    c.rx.received.length = 0;
    const reply = c.w.emu.control.sendMessageAsUser({ locationId: loc, contactId, type: 'Live_Chat', message: 'hi!' });
    await waitFor(() => c.rx.received.length >= 1, { what: 'live chat reply' });
    await settled(c);
    await c.b.runMaintenance();
    expect(replies(c.rx)).toHaveLength(1);
    expect(replies(c.rx)[0]).toMatchObject({
      messageId: reply.id,
      message: 'hi!',
      chat: { conversationId: 'thread-lc', clientId: 'vcx-anon', ghlChannel: 'Live Chat' },
    });
    expect((replies(c.rx)[0] as { phone?: string }).phone).toBeUndefined();
    // Typing is forwarded for this Live_Chat client.
    const t = await post(c, loc, 'typing', { conversationId: 'thread-lc', isTyping: true });
    expect(await t.json()).toMatchObject({ forwarded: true });
    // Finished replies older than DATA_RETENTION_DAYS (and the reconcile look-back) than DATA_RETENTION_DAYS are pruned by housekeeping.
    await settled(c);
    await c.b.ctx.db
      .updateTable('chat_replies')
      .set({ received_at: new Date(Date.now() - 31 * 86_400_000) })
      .where('ghl_message_id', '=', reply.id)
      .execute();
    await c.b.runMaintenance();
    expect(
      await c.b.ctx.db
        .selectFrom('chat_replies')
        .select('ghl_message_id')
        .where('ghl_message_id', '=', reply.id)
        .execute(),
    ).toEqual([]);
  });

  it('a client with a phone keeps CHAT_MESSAGE_TYPE (Custom); its GHL SMS reply on another channel is not forwarded', async () => {
    const contactId = await link(c, loc, 'thread-off', { externalId: 'vcx-off', phone: '+14155550305' }, 'f1');
    expect(c.w.emu.control.listMessages({ locationId: loc }).find((m) => m.altId === 'f1')!.messageType).not.toBe(
      'TYPE_LIVE_CHAT',
    );
    c.rx.received.length = 0;
    c.w.emu.control.sendMessageAsUser({ locationId: loc, contactId, type: 'SMS', message: 'native' });
    await settled(c);
    expect(c.rx.received).toHaveLength(0);
    expect(
      await c.b.ctx.db.selectFrom('chat_replies').selectAll().where('contact_id', '=', contactId).execute(),
    ).toEqual([]);
  });
});

describe('config', () => {
  it('CHAT_FORWARD_OTHER_CHANNELS with a bad value is a start-up error naming it', () => {
    let err: unknown;
    try {
      testConfig({ CHAT_FORWARD_OTHER_CHANNELS: 'sometimes' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const issue = (err as ConfigError).issues.find((i) => i.name === 'CHAT_FORWARD_OTHER_CHANNELS');
    expect(issue?.message).toMatch(/expected true or false \(got "sometimes"\)/);
    expect(testConfig({ CHAT_FORWARD_OTHER_CHANNELS: 'true' }).CHAT_FORWARD_OTHER_CHANNELS).toBe(true);
    expect(testConfig().CHAT_FORWARD_OTHER_CHANNELS).toBe(false);
  });
});
