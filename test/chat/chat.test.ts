import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/store.js';
import { ADMIN } from '../provider/harness.js';
import { Webhook } from 'standardwebhooks';
import { SIGNING, chatMessage, post, replies, startChat, type ChatWorld } from './harness.js';

/** Two-way chat sync (issue 13) against the real emulator: chat API → GHL, GHL replies → the chat product. */

let cw: ChatWorld | undefined;
afterEach(async () => {
  await cw?.close();
  cw = undefined;
});

const ghlMessages = (c: ChatWorld, loc: string) =>
  c.w.emu.control.listMessages({ locationId: loc }).sort((a, b) => a.createdAtMs - b.createdAtMs);

async function posted(c: ChatWorld, loc: string, n: number, timeoutMs = 60_000) {
  return waitFor(
    async () => {
      const r = await c.b.ctx.db
        .selectFrom('chat_messages')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('location_id', '=', loc)
        .where('state', '=', 'posted')
        .executeTakeFirstOrThrow();
      return Number(r.n) >= n;
    },
    { what: `${n} chat messages posted`, timeoutMs },
  );
}

async function metric(c: ChatWorld, name: string, labels = ''): Promise<number> {
  const text = await c.b.ctx.metrics.registry.metrics();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name) && line.includes(labels) && !line.startsWith('#')) sum += Number(line.split(' ').pop());
  return sum;
}

describe('chat API → GHL', () => {
  it('20 concurrent first messages of a new client → one contact (client id in the custom field), all 20 posted', async () => {
    cw = await startChat();
    const c = cw;
    const loc = c.w.locationIds[0]!;
    const client = { externalId: 'vcx-client-1', name: 'Nina Park', email: 'nina@example.com' };
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        post(c, loc, 'messages', { conversationId: 'conv-1', client, message: chatMessage(`m-${i}`) }),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(202));
    await posted(c, loc, 20);
    const contacts = c.w.emu.control.listContacts({ locationId: loc });
    expect(contacts).toHaveLength(1);
    expect(contacts[0]!.email).toBe('nina@example.com');
    expect(contacts[0]!.customFields.map((f) => f.value)).toContain('vcx-client-1');
    const msgs = ghlMessages(c, loc);
    expect(msgs).toHaveLength(20);
    expect(new Set(msgs.map((m) => m.altId)).size).toBe(20);
    expect(msgs.every((m) => m.direction === 'inbound' && m.conversationId === msgs[0]!.conversationId)).toBe(true);
    expect(msgs.every((m) => m.conversationProviderId === c.w.providerId)).toBe(true);
    // Re-pushing the same external message is a no-op.
    const again = await post(c, loc, 'messages', { conversationId: 'conv-1', client, message: chatMessage('m-3') });
    expect(again.status).toBe(202);
    expect(await again.json()).toMatchObject({ accepted: 0, duplicates: 1 });
    // Look-ups both ways.
    const look = await fetch(`${c.b.url}/v1/locations/${loc}/chat/lookup?messageId=m-3`, {
      headers: { authorization: c.auth },
    });
    const lj = (await look.json()) as { message: { ghlMessageId: string }; client: { ghlContactId: string } };
    expect(lj.client.ghlContactId).toBe(contacts[0]!.id);
    const back = await fetch(`${c.b.url}/v1/locations/${loc}/chat/lookup?ghlMessageId=${lj.message.ghlMessageId}`, {
      headers: { authorization: c.auth },
    });
    expect(((await back.json()) as { message: { externalId: string } }).message.externalId).toBe('m-3');
    await c.b.runMaintenance();
    expect(ghlMessages(c, loc)).toHaveLength(20);
  });

  it('a lost client map is rebuilt from the custom field: no second contact', async () => {
    cw = await startChat();
    const c = cw;
    const loc = c.w.locationIds[0]!;
    const client = { externalId: 'vcx-nophone' };
    expect((await post(c, loc, 'messages', { conversationId: 't1', client, message: chatMessage('a1') })).status).toBe(
      202,
    );
    await posted(c, loc, 1);
    await c.b.ctx.db.updateTable('chat_clients').set({ contact_id: null, ghl_conversation_id: null }).execute();
    expect((await post(c, loc, 'messages', { conversationId: 't2', client, message: chatMessage('a2') })).status).toBe(
      202,
    );
    await posted(c, loc, 2);
    expect(c.w.emu.control.listContacts({ locationId: loc })).toHaveLength(1);
    const msgs = ghlMessages(c, loc);
    expect(msgs.map((m) => m.altId)).toEqual(['a1', 'a2']);
    expect(msgs[0]!.conversationId).toBe(msgs[1]!.conversationId);
    // Finished chat messages older than DATA_RETENTION_DAYS are pruned by housekeeping.
    await c.b.ctx.db
      .updateTable('chat_messages')
      .set({ received_at: new Date(Date.now() - 31 * 86_400_000) })
      .where('message_id', '=', 'a1')
      .execute();
    await c.b.runMaintenance();
    const left = await c.b.ctx.db.selectFrom('chat_messages').select('message_id').execute();
    expect(left.map((r) => r.message_id)).toEqual(['a2']);
  });

  it('history keeps order and original dates; an agent message lands as outbound and is not echoed back', async () => {
    cw = await startChat();
    const c = cw;
    const loc = c.w.locationIds[0]!;
    const t0 = Date.parse('2026-01-05T09:00:00Z');
    const history = Array.from({ length: 12 }, (_, i) =>
      chatMessage(`h-${i}`, {
        direction: i % 3 === 2 ? 'outbound' : 'inbound',
        sentAt: new Date(t0 + i * 60_000).toISOString(),
      }),
    );
    const r = await post(c, loc, 'history', {
      conversationId: 'conv-h',
      client: { externalId: 'vcx-h', phone: '+1 (415) 555-0100' },
      messages: history,
    });
    expect(r.status).toBe(202);
    expect(await r.json()).toMatchObject({ accepted: 12, duplicates: 0 });
    await posted(c, loc, 12);
    const msgs = ghlMessages(c, loc);
    expect(msgs.map((m) => m.altId)).toEqual(history.map((h) => h.externalId));
    expect(msgs.map((m) => m.dateAdded)).toEqual(history.map((_, i) => t0 + i * 60_000));
    expect(msgs.map((m) => m.direction)).toEqual(history.map((h) => h.direction));
    expect(c.w.emu.control.listContacts({ locationId: loc })[0]!.phone).toBe('+14155550100');
    // GHL's own events for the 12 messages the bridge created are matched and dropped, none reaches the chat product.
    await c.w.emu.idle();
    await waitFor(async () => (await metric(c, 'ghl_bridge_chat_echoes_dropped_total', 'ghl_event')) >= 12, {
      what: 'own events dropped',
    });
    expect(c.rx.received).toHaveLength(0);
  });

  it('a GHL user reply reaches the chat product exactly once with its ids; read receipts go both ways', async () => {
    cw = await startChat();
    const c = cw;
    const loc = c.w.locationIds[0]!;
    const client = { externalId: 'vcx-r', phone: '+14155550111', name: 'Rae' };
    await post(c, loc, 'messages', { conversationId: 'thread-A', client, message: chatMessage('r1') });
    await post(c, loc, 'messages', { conversationId: 'thread-B', client, message: chatMessage('r2') });
    await posted(c, loc, 2);
    const contact = c.w.emu.control.listContacts({ locationId: loc })[0]!;
    const reply = c.w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: contact.id,
      type: 'SMS',
      message: 'on our way',
      conversationProviderId: c.w.providerId,
    });
    await waitFor(() => c.rx.received.length >= 1, { what: 'reply delivered' });
    await c.w.emu.idle();
    await c.b.runMaintenance();
    const got = replies(c.rx);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({
      messageId: reply.id,
      message: 'on our way',
      contractVersion: 2,
      chat: { conversationId: 'thread-B', clientId: 'vcx-r', ghlConversationId: reply.conversationId },
    });
    // The chat product reports it read → GHL shows read.
    const rr = await post(c, loc, 'status', { ghlMessageId: reply.id, status: 'read' });
    expect(rr.status).toBe(202);
    await waitFor(() => c.w.emu.control.getMessage(reply.id)?.status === 'read', { what: 'reply read in GHL' });
    // A read receipt for a pushed message, then an older status: forward-only.
    const r1 = c.w.emu.control.listMessages({ locationId: loc }).find((m) => m.altId === 'r1')!;
    expect((await post(c, loc, 'status', { messageId: 'r1', status: 'read' })).status).toBe(202);
    await waitFor(() => c.w.emu.control.getMessage(r1.id)?.status === 'read', { what: 'r1 read' });
    const back = await post(c, loc, 'status', { messageId: 'r1', status: 'delivered' });
    expect(await back.json()).toMatchObject({ changed: false });
    expect(c.w.emu.control.getMessage(r1.id)?.statusHistory.map((s) => s.status)).toEqual(['delivered', 'read']);
  });

  it('a dropped ProviderOutboundMessage is repaired by the reconcile (counted), and only once', async () => {
    cw = await startChat();
    const c = cw;
    const loc = c.w.locationIds[0]!;
    await post(c, loc, 'messages', {
      conversationId: 'conv-d',
      client: { externalId: 'vcx-d', phone: '+14155550122' },
      message: chatMessage('d1'),
    });
    await posted(c, loc, 1);
    const contact = c.w.emu.control.listContacts({ locationId: loc })[0]!;
    c.w.emu.control.dropMatchingWebhooks({ eventType: 'ProviderOutboundMessage', contactId: contact.id });
    const reply = c.w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: contact.id,
      type: 'SMS',
      message: 'lost reply',
      conversationProviderId: c.w.providerId,
    });
    await c.w.emu.idle();
    expect(c.w.emu.control.listDeliveries({ eventType: 'ProviderOutboundMessage' })[0]!.state).toBe('dropped');
    expect(c.rx.received).toHaveLength(0);
    const r = await c.b.ctx.services.get('chat').reconcile();
    expect(r.repaired).toBe(1);
    await waitFor(() => c.rx.received.length >= 1, { what: 'repaired reply delivered' });
    expect(replies(c.rx)[0]).toMatchObject({
      messageId: reply.id,
      chat: { conversationId: 'conv-d', clientId: 'vcx-d' },
    });
    expect((await c.b.ctx.services.get('chat').reconcile()).repaired).toBe(0);
    expect(await metric(c, 'ghl_bridge_chat_repaired_total')).toBe(1);
    await c.b.runMaintenance();
    expect(c.rx.received).toHaveLength(1);
  });

  it('bad input → 4xx naming the field, nothing stored', async () => {
    cw = await startChat();
    const c = cw;
    const loc = c.w.locationIds[0]!;
    const ok = { conversationId: 'c', client: { externalId: 'x' }, message: chatMessage('bad-1') };
    const cases: Array<[string, unknown, number, string, string?, string?]> = [
      ['wrong key', ok, 401, '', loc, 'Bearer wrong-key'],
      // The admin key is allowed everywhere; a scoped key gets 403 for a location it does not cover.
      ['unknown location', ok, 404, 'params.locationId', 'unknownLocation1', `Bearer ${ADMIN}`],
      [
        'missing message id',
        { ...ok, message: { ...ok.message, externalId: undefined } },
        400,
        'body.message.externalId',
      ],
      ['missing client id', { ...ok, client: {} }, 400, 'body.client.externalId'],
      ['missing conversation id', { client: ok.client, message: ok.message }, 400, 'body.conversationId'],
      ['1 MB text', { ...ok, message: { ...ok.message, text: 'x'.repeat(1024 * 1024) } }, 400, 'body.message.text'],
      ['invalid date', { ...ok, message: { ...ok.message, sentAt: '2026-13-45 25:00' } }, 400, 'body.message.sentAt'],
      [
        'date without zone',
        { ...ok, message: { ...ok.message, sentAt: '2026-01-01T10:00:00' } },
        400,
        'body.message.sentAt',
      ],
      ['bad direction', { ...ok, message: { ...ok.message, direction: 'sideways' } }, 400, 'body.message.direction'],
      ['bad phone', { ...ok, client: { externalId: 'x', phone: '12' } }, 400, 'body.client.phone'],
    ];
    const { key: other } = await c.b.ctx.services.get('apiKeys').create({ name: 'other', locationIds: ['otherLoc1'] });
    cases.push(['key of another location', ok, 403, '', loc, `Bearer ${other}`]);
    for (const [what, body, status, field, l, auth] of cases) {
      const r = await post(c, l ?? loc, 'messages', body, auth);
      const j = (await r.json()) as { statusCode: number; message: string; details?: Array<{ path: string }> };
      expect(r.status, what).toBe(status);
      expect(j.statusCode, what).toBe(status);
      if (field) expect(j.details?.map((d) => d.path) ?? [j.message], what).toContain(field);
    }
    const stored = await c.b.ctx.db.selectFrom('chat_messages').selectAll().execute();
    expect(stored).toHaveLength(0);
    expect(await c.b.ctx.db.selectFrom('chat_clients').selectAll().execute()).toHaveLength(0);
  });

  it("the channel's Standard Webhooks signature is accepted instead of an API key", async () => {
    cw = await startChat();
    const c = cw;
    const loc = c.w.locationIds[0]!;
    const inbound = `whsec_${Buffer.from('chat-inbound-secret-0123456789abcdef').toString('base64')}`;
    await c.b.provider.configureChannel(loc, {
      kind: 'http',
      url: c.rx.url,
      signingSecret: SIGNING,
      inboundSecret: inbound,
    });
    const signed = (secret: string, body: string, id: string) => {
      const now = new Date();
      return fetch(`${c.b.url}/v1/locations/${loc}/chat/messages`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': new Webhook(secret).sign(id, now, body),
        },
        body,
      });
    };
    const body = JSON.stringify({
      conversationId: 'sig',
      client: { externalId: 'sig-c' },
      message: chatMessage('sig-1'),
    });
    const bad = await signed(SIGNING, body, 'evt-0');
    expect(bad.status).toBe(401);
    expect(await c.b.ctx.db.selectFrom('chat_messages').selectAll().execute()).toHaveLength(0);
    const ok = await signed(inbound, body, 'evt-1');
    expect(ok.status).toBe(202);
    await posted(c, loc, 1);
  });

  it('agent typing reaches GHL live chat (Live_Chat type)', async () => {
    cw = await startChat({ chat: { messageType: 'Live_Chat' }, env: { CHAT_MESSAGE_TYPE: 'Live_Chat' } });
    const c = cw;
    const loc = c.w.locationIds[0]!;
    await post(c, loc, 'messages', { conversationId: 'lc', client: { externalId: 'v' }, message: chatMessage('l1') });
    await posted(c, loc, 1);
    expect(ghlMessages(c, loc)[0]!.messageType).toBe('TYPE_LIVE_CHAT');
    const r = await post(c, loc, 'typing', { conversationId: 'lc', isTyping: true });
    expect(await r.json()).toMatchObject({ forwarded: true });
    const t = await waitFor(() => c.w.emu.control.listTyping()[0], { what: 'typing' });
    expect(t).toMatchObject({ isTyping: true, visitorId: 'v', conversationId: ghlMessages(c, loc)[0]!.conversationId });
  });
});

describe('two-way storm', () => {
  const N = Number(process.env.CHAT_STORM_SIZE ?? 200);
  it(`${N} messages each way over 20 clients: all delivered once, 0 echoes either way`, async () => {
    // GHL's rate limit is not under test here: lifted, so the storm measures the bridge, not the 10 req/s window.
    cw = await startChat({ env: { WORKER_CONCURRENCY: '8' }, burst: 100_000 });
    const c = cw;
    const loc = c.w.locationIds[0]!;
    const clients = Array.from({ length: 20 }, (_, i) => ({
      externalId: `storm-${i}`,
      phone: `+14155550${String(200 + i)}`,
    }));
    // Seed the clients so GHL users have contacts to reply to.
    for (const [i, client] of clients.entries())
      await post(c, loc, 'messages', { conversationId: `sc-${i}`, client, message: chatMessage(`seed-${i}`) });
    await posted(c, loc, clients.length);
    const contacts = new Map(c.w.emu.control.listContacts({ locationId: loc }).map((x) => [x.phone, x.id]));
    const replyIds = new Set<string>();
    const pushes: Array<Promise<Response>> = [];
    for (let i = 0; i < N; i++) {
      const k = i % clients.length;
      pushes.push(
        post(c, loc, 'messages', {
          conversationId: `sc-${k}`,
          client: clients[k],
          message: chatMessage(`s-${i}`, { direction: i % 2 ? 'outbound' : 'inbound' }),
        }),
      );
      const m = c.w.emu.control.sendMessageAsUser({
        locationId: loc,
        contactId: contacts.get(clients[k]!.phone)!,
        type: 'SMS',
        message: `reply ${i}`,
        conversationProviderId: c.w.providerId,
      });
      replyIds.add(m.id);
      if (pushes.length >= 50) expect((await Promise.all(pushes.splice(0))).every((r) => r.status === 202)).toBe(true);
    }
    expect((await Promise.all(pushes)).every((r) => r.status === 202)).toBe(true);
    await posted(c, loc, N + clients.length, 60_000 + N * 100);
    await waitFor(() => new Set(replies(c.rx).map((r) => r.messageId)).size >= N, {
      what: 'all replies delivered',
      timeoutMs: 60_000 + N * 100,
    });
    await c.w.emu.idle();
    await c.b.runMaintenance();
    const got = replies(c.rx);
    const bridgeCreated = new Set(
      (await c.b.ctx.db.selectFrom('chat_messages').select('ghl_message_id').execute()).map((r) => r.ghl_message_id),
    );
    // Echo chat → GHL → chat: nothing the bridge posted came back; each reply exactly once, with the chat ids.
    expect(got.filter((r) => bridgeCreated.has(r.messageId))).toHaveLength(0);
    expect(got).toHaveLength(N);
    expect(new Set(got.map((r) => r.messageId))).toEqual(replyIds);
    expect(got.every((r) => r.chat?.clientId.startsWith('storm-'))).toBe(true);
    // Echo GHL → chat → GHL: each external message exactly once in GHL, and no reply was posted back into GHL.
    const inGhl = c.w.emu.control.listMessages({ locationId: loc });
    const alt = inGhl.filter((m) => m.altId).map((m) => m.altId);
    expect(alt).toHaveLength(N + clients.length);
    expect(new Set(alt).size).toBe(alt.length);
    expect(inGhl).toHaveLength(2 * N + clients.length);
  }, 600_000);
});
