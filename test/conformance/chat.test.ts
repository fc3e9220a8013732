import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeWorld, tokenFor, world, type World } from '../emulator/helpers.js';
import { call } from './spec.js';

/**
 * The operations the two-way chat sync (issue 13) relies on, checked against the spec: inbound with direction and
 * date (Custom and Live_Chat), the app events of API-created messages, get-messages pagination, status `read`, and
 * the live-chat typing endpoint; plus the emulator's drop-matching control.
 */
let w: World;
let t: string;
let contactId = '';
let conversationId = '';
beforeAll(async () => {
  w = await world({ wrapMessagesResponse: false }, { type: 'SMS', isCustom: true });
  t = String((await tokenFor(w, { locationId: w.locationId })).access_token);
  contactId = w.emu.control.createContact({ locationId: w.locationId, firstName: 'Vi', phone: '+15557654321' }).id;
  const r = await call(w.base, 'create-conversation', { token: t, body: { locationId: w.locationId, contactId } });
  conversationId = (r.body.conversation as { id: string }).id;
});
afterAll(async () => closeWorld(w));

const inbound = (type: string, i: number, direction: 'inbound' | 'outbound') => ({
  type,
  conversationId,
  contactId,
  conversationProviderId: String(w.app.conversationProviderId),
  message: `m${i}`,
  direction,
  date: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
  altId: `ext-${i}`,
});

describe('chat operations (conversations.json)', () => {
  it('add-an-inbound-message: Custom and Live_Chat, direction and date kept; app events for API-created messages', async () => {
    for (let i = 0; i < 30; i++)
      await call(w.base, 'add-an-inbound-message', {
        token: t,
        body: inbound(i % 2 ? 'Live_Chat' : 'Custom', i, i % 3 ? 'inbound' : 'outbound'),
      });
    const msgs = w.emu.control.listMessages({ conversationId }).sort((a, b) => a.createdAtMs - b.createdAtMs);
    expect(msgs.map((m) => m.dateAdded)).toEqual(Array.from({ length: 30 }, (_, i) => Date.UTC(2026, 0, 1, 0, i)));
    expect(msgs.map((m) => m.direction)).toEqual(
      Array.from({ length: 30 }, (_, i) => (i % 3 ? 'inbound' : 'outbound')),
    );
    expect(msgs[1]!.messageType).toBe('TYPE_LIVE_CHAT');
    await w.emu.idle();
    const types = w.emu.control.listDeliveries({ kind: 'app' }).map((d) => d.eventType);
    expect(types.filter((x) => x === 'InboundMessage')).toHaveLength(20);
    expect(types.filter((x) => x === 'OutboundMessage')).toHaveLength(10);
    await call(
      w.base,
      'add-an-inbound-message',
      { token: t, body: { ...inbound('Custom', 99, 'inbound'), type: 'Carrier_Pigeon' } },
      'invalid',
    );
  });

  it('get-messages: newest first, pages of `limit` chained by lastMessageId until nextPage is false', async () => {
    const seen: string[] = [];
    let lastMessageId: string | undefined;
    for (let page = 0; page < 10; page++) {
      const r = await call(w.base, 'get-messages', {
        token: t,
        pathParams: { conversationId },
        query: { limit: '7', ...(lastMessageId ? { lastMessageId } : {}) },
      });
      const b = r.body as { messages: Array<{ altId?: string }>; nextPage: boolean; lastMessageId: string };
      seen.push(...b.messages.map((m) => m.altId ?? ''));
      if (!b.nextPage) break;
      lastMessageId = b.lastMessageId;
    }
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => `ext-${29 - i}`));
    await call(
      w.base,
      'get-messages',
      { token: t, pathParams: { conversationId }, query: { lastMessageId: 'nope' } },
      'invalid',
    );
  });

  it('update-message-status: read after delivered (forward-only)', async () => {
    const m = w.emu.control.listMessages({ conversationId }).find((x) => x.altId === 'ext-1')!;
    const r = await call(w.base, 'update-message-status', {
      token: t,
      pathParams: { messageId: m.id },
      body: { status: 'read' },
    });
    expect(r.body.status).toBe('read');
    await call(
      w.base,
      'update-message-status',
      { token: t, pathParams: { messageId: m.id }, body: { status: 'delivered' } },
      'invalid',
    );
  });

  it('live-chat-agent-typing', async () => {
    const r = await call(w.base, 'live-chat-agent-typing', {
      token: t,
      body: { locationId: w.locationId, isTyping: 'true', visitorId: 'visitor-1', conversationId },
    });
    expect(r.body.success).toBe(true);
    expect(w.emu.control.listTyping()).toMatchObject([{ isTyping: true, visitorId: 'visitor-1', conversationId }]);
    await call(
      w.base,
      'live-chat-agent-typing',
      { token: t, body: { locationId: w.locationId, isTyping: 'true', visitorId: 'v', conversationId: 'missing' } },
      'invalid',
    );
    await call(w.base, 'live-chat-agent-typing', { token: t, body: { locationId: w.locationId } }, 'invalid');
  });

  it('control: drop-matching drops only the chosen webhooks', async () => {
    const r = await fetch(`${w.base}/_emulator/webhooks/drop-matching`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ eventType: 'ProviderOutboundMessage', contactId, count: 1 }),
    });
    expect(r.status).toBe(200);
    const a = w.emu.control.sendMessageAsUser({
      locationId: w.locationId,
      contactId,
      type: 'SMS',
      message: 'a',
      conversationProviderId: String(w.app.conversationProviderId),
    });
    const b = w.emu.control.sendMessageAsUser({
      locationId: w.locationId,
      contactId,
      type: 'SMS',
      message: 'b',
      conversationProviderId: String(w.app.conversationProviderId),
    });
    await w.emu.idle();
    const d = w.emu.control.listDeliveries({ eventType: 'ProviderOutboundMessage' });
    expect(d.find((x) => x.payload.messageId === a.id)?.state).toBe('dropped');
    expect(d.find((x) => x.payload.messageId === b.id)?.state).not.toBe('dropped');
    // The app event of the same message is not a ProviderOutboundMessage: it was sent.
    const ev = w.emu.control.listDeliveries({ eventType: 'OutboundMessage' }).find((x) => x.payload.messageId === a.id);
    expect(ev?.state).not.toBe('dropped');
    const bad = await fetch(`${w.base}/_emulator/webhooks/drop-matching`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ count: 0 }),
    });
    expect(bad.status).toBe(400);
  });
});
