import { afterEach, describe, expect, it } from 'vitest';
import { ALL_SCOPES, api, closeWorld, tokenFor, world, type World } from './helpers.js';

let w: World;
afterEach(async () => closeWorld(w));

async function setup(opts = {}) {
  w = await world(opts);
  const t = String((await tokenFor(w, { locationId: w.locationId })).access_token);
  const contact = w.emu.control.createContact({
    locationId: w.locationId,
    firstName: 'Ann',
    phone: '+15551234567',
    email: 'ann@example.com',
  });
  return { t, contact };
}

describe('conversations and messages', () => {
  it('one conversation per contact: second create is 400 with the existing id', async () => {
    const { t, contact } = await setup();
    const a = await api(w, t, 'POST', '/conversations/', { locationId: w.locationId, contactId: contact.id });
    expect(a.status).toBe(201);
    const id = (a.body.conversation as { id: string }).id;
    const b = await api(w, t, 'POST', '/conversations/', { locationId: w.locationId, contactId: contact.id });
    expect(b.status).toBe(400);
    expect(b.body).toMatchObject({ statusCode: 400, conversationId: id });
    const s = await api(w, t, 'GET', `/conversations/search?locationId=${w.locationId}&contactId=${contact.id}`);
    expect(s.body).toMatchObject({ total: 1, conversations: [{ id, contactId: contact.id }] });
  });

  it('inbound message: provider id optional for a default provider, conversation must match contact', async () => {
    const { t, contact } = await setup();
    const conv = (await api(w, t, 'POST', '/conversations/', { locationId: w.locationId, contactId: contact.id })).body
      .conversation as { id: string };
    const ok = await api(w, t, 'POST', '/conversations/messages/inbound', {
      type: 'SMS',
      conversationId: conv.id,
      contactId: contact.id,
      message: 'hi',
      direction: 'inbound',
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ success: true, conversationId: conv.id });
    const other = w.emu.control.createContact({ locationId: w.locationId, firstName: 'Bob', phone: '+15550009999' });
    const bad = await api(w, t, 'POST', '/conversations/messages/inbound', {
      type: 'SMS',
      conversationId: conv.id,
      contactId: other.id,
      message: 'hi',
    });
    expect(bad.status).toBe(400);
    await w.emu.idle();
    expect(w.receiver.received.some((r) => r.json.type === 'InboundMessage' && r.json.body === 'hi')).toBe(true);
    expect(
      w.receiver.received.some((r) => r.json.type === 'ConversationUnreadUpdate' && r.json.unreadCount === 1),
    ).toBe(true);
  });

  it('inbound message for an extra (custom) provider requires conversationProviderId', async () => {
    w = await world({}, { type: 'SMS', isCustom: true });
    const t = String((await tokenFor(w, { locationId: w.locationId })).access_token);
    const contact = w.emu.control.createContact({ locationId: w.locationId, phone: '+15551234567' });
    const conv = (await api(w, t, 'POST', '/conversations/', { locationId: w.locationId, contactId: contact.id })).body
      .conversation as { id: string };
    const missing = await api(w, t, 'POST', '/conversations/messages/inbound', {
      type: 'SMS',
      conversationId: conv.id,
      contactId: contact.id,
      message: 'x',
    });
    expect(missing.status).toBe(400);
    const ok = await api(w, t, 'POST', '/conversations/messages/inbound', {
      type: 'SMS',
      conversationId: conv.id,
      contactId: contact.id,
      message: 'x',
      conversationProviderId: w.app.conversationProviderId,
      direction: 'inbound',
    });
    expect(ok.status).toBe(200);
    const m = w.emu.control.getMessage(String(ok.body.messageId));
    expect(m?.messageType).toBe('TYPE_CUSTOM_PROVIDER_SMS');
  });

  it('status updates: provider app only (403 otherwise), forward-only, refusal window', async () => {
    const { t, contact } = await setup({ statusRefusalWindowMs: 500 });
    const sent = await api(w, t, 'POST', '/conversations/messages', {
      type: 'SMS',
      contactId: contact.id,
      message: 'out',
    });
    const id = String(sent.body.messageId);
    const early = await api(w, t, 'PUT', `/conversations/messages/${id}/status`, { status: 'delivered' });
    expect(early.status).toBe(400);
    expect(early.body).toMatchObject({ statusCode: 400 });
    w.emu.clock.advance(500);
    // Another app installed on the same location may not update the status.
    const other = w.emu.control.createApp({ name: 'Other', redirectUri: 'http://127.0.0.1:1/cb', scopes: ALL_SCOPES });
    const { code } = w.emu.control.authorize({ clientId: other.clientId, locationId: w.locationId });
    const ot = (await (
      await fetch(`${w.base}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          client_id: other.clientId,
          client_secret: other.clientSecret,
          grant_type: 'authorization_code',
          code,
        }),
      })
    ).json()) as { access_token: string };
    const forbidden = await api(w, ot.access_token, 'PUT', `/conversations/messages/${id}/status`, {
      status: 'delivered',
    });
    expect(forbidden.status).toBe(403);
    const ok = await api(w, t, 'PUT', `/conversations/messages/${id}/status`, { status: 'delivered' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ messageId: id, status: 'delivered' });
    const back = await api(w, t, 'PUT', `/conversations/messages/${id}/status`, { status: 'pending' });
    expect(back.status).toBe(400);
    expect((await api(w, t, 'PUT', `/conversations/messages/${id}/status`, { status: 'read' })).status).toBe(200);
    const get = await api(w, t, 'GET', `/conversations/messages/${id}`);
    expect(get.body).toMatchObject({ id, status: 'read', direction: 'outbound' });
  });

  it("'any' transitions allow going back", async () => {
    const { t, contact } = await setup({ statusTransitions: 'any' });
    const id = String(
      (await api(w, t, 'POST', '/conversations/messages', { type: 'SMS', contactId: contact.id, message: 'o' })).body
        .messageId,
    );
    expect(
      (
        await api(w, t, 'PUT', `/conversations/messages/${id}/status`, {
          status: 'failed',
          error: { code: '1', type: 'saas', message: 'x' },
        })
      ).status,
    ).toBe(200);
    expect((await api(w, t, 'PUT', `/conversations/messages/${id}/status`, { status: 'pending' })).status).toBe(200);
  });

  it('messages of a conversation paginate with lastMessageId/nextPage (wrapped by default)', async () => {
    const { t, contact } = await setup();
    for (let i = 0; i < 5; i++) {
      await api(w, t, 'POST', '/conversations/messages', { type: 'SMS', contactId: contact.id, message: `m${i}` });
      w.emu.clock.advance(1000);
    }
    const conv = w.emu.control.listConversations({ contactId: contact.id })[0]!;
    const p1 = await api(w, t, 'GET', `/conversations/${conv.id}/messages?limit=2`);
    const inner1 = p1.body.messages as { lastMessageId: string; nextPage: boolean; messages: { body: string }[] };
    expect(inner1.messages.map((m) => m.body)).toEqual(['m4', 'm3']);
    expect(inner1.nextPage).toBe(true);
    const p3 = await api(
      w,
      t,
      'GET',
      `/conversations/${conv.id}/messages?limit=2&lastMessageId=${inner1.lastMessageId}`,
    );
    const inner2 = p3.body.messages as { nextPage: boolean; messages: { body: string }[] };
    expect(inner2.messages.map((m) => m.body)).toEqual(['m2', 'm1']);
    await w.emu.close();
    const flat = await world({ wrapMessagesResponse: false });
    await w.receiver.close();
    w = flat;
    const t2 = String((await tokenFor(w, { locationId: w.locationId })).access_token);
    const c2 = w.emu.control.createContact({ locationId: w.locationId, phone: '+15551230000' });
    await api(w, t2, 'POST', '/conversations/messages', { type: 'SMS', contactId: c2.id, message: 'x' });
    const cv = w.emu.control.listConversations({ contactId: c2.id })[0]!;
    const r = await api(w, t2, 'GET', `/conversations/${cv.id}/messages`);
    expect(Array.isArray(r.body.messages)).toBe(true);
    expect(r.body.nextPage).toBe(false);
  });

  it('outbound call log: to must match the contact', async () => {
    const { t, contact } = await setup();
    const conv = (await api(w, t, 'POST', '/conversations/', { locationId: w.locationId, contactId: contact.id })).body
      .conversation as { id: string };
    const base = { type: 'Call', conversationId: conv.id, conversationProviderId: w.app.conversationProviderId };
    expect(
      (
        await api(w, t, 'POST', '/conversations/messages/outbound', {
          ...base,
          call: { to: '+15559999999', from: '+15550000001', status: 'completed' },
        })
      ).status,
    ).toBe(400);
    const ok = await api(w, t, 'POST', '/conversations/messages/outbound', {
      ...base,
      call: { to: '+15551234567', from: '+15550000001', status: 'completed' },
    });
    expect(ok.status).toBe(200);
    expect(w.emu.control.getMessage(String(ok.body.messageId))?.messageType).toBe('TYPE_CALL');
  });

  it('Version header is required; wrong scope is 401; other location is 403', async () => {
    const { t, contact } = await setup();
    const noVersion = await fetch(`${w.base}/conversations/search?locationId=${w.locationId}`, {
      headers: { authorization: `Bearer ${t}` },
    });
    expect(noVersion.status).toBe(400);
    expect(await noVersion.json()).toMatchObject({ statusCode: 400 });
    w.emu.control.updateApp(w.app.clientId, { scopes: ['contacts.readonly'] });
    const t2 = String((await tokenFor(w, { locationId: w.locationId })).access_token);
    const noScope = await api(w, t2, 'POST', '/conversations/messages', {
      type: 'SMS',
      contactId: contact.id,
      message: 'x',
    });
    expect(noScope.status).toBe(401);
    expect(noScope.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
    const loc2 = w.emu.control.createLocation({ companyId: w.companyId, name: 'X' });
    expect((await api(w, t, 'GET', `/conversations/search?locationId=${loc2.id}`)).status).toBe(403);
  });

  it('deterministic ids with a seed', async () => {
    w = await world({ seed: 7 });
    const a = w.emu.control.createContact({ locationId: w.locationId, firstName: 'A' }).id;
    await closeWorld(w);
    w = await world({ seed: 7 });
    expect(w.emu.control.createContact({ locationId: w.locationId, firstName: 'A' }).id).toBe(a);
    expect(a).toMatch(/^[A-Za-z0-9]{20}$/);
  });
});
