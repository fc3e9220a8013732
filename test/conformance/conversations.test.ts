import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeWorld, tokenFor, world, type World } from '../emulator/helpers.js';
import { call } from './spec.js';

let w: World;
let t: string;
let contactId = '';
let conversationId = '';
let messageId = '';
beforeAll(async () => {
  w = await world();
  t = String((await tokenFor(w, { locationId: w.locationId })).access_token);
  contactId = w.emu.control.createContact({
    locationId: w.locationId,
    firstName: 'Ann',
    phone: '+15551234567',
    email: 'ann@example.com',
  }).id;
});
afterAll(async () => closeWorld(w));

describe('conversations.json', () => {
  it('create-conversation', async () => {
    const r = await call(w.base, 'create-conversation', { token: t, body: { locationId: w.locationId, contactId } });
    conversationId = (r.body.conversation as { id: string }).id;
    const again = await call(
      w.base,
      'create-conversation',
      { token: t, body: { locationId: w.locationId, contactId } },
      'invalid',
    );
    expect(again.body.conversationId).toBe(conversationId);
  });

  it('search-conversation', async () => {
    const r = await call(w.base, 'search-conversation', { token: t, query: { locationId: w.locationId, contactId } });
    expect(r.body.total).toBe(1);
    await call(w.base, 'search-conversation', { token: t, query: { contactId } }, 'invalid');
  });

  it('get-conversation / update-conversation', async () => {
    await call(w.base, 'get-conversation', { token: t, pathParams: { conversationId } });
    await call(w.base, 'get-conversation', { token: t, pathParams: { conversationId: 'missing' } }, 'invalid');
    await call(w.base, 'update-conversation', {
      token: t,
      pathParams: { conversationId },
      body: { locationId: w.locationId, starred: true },
    });
    await call(
      w.base,
      'update-conversation',
      { token: t, pathParams: { conversationId }, body: { starred: true } },
      'invalid',
    );
  });

  it('send-a-new-message', async () => {
    const r = await call(w.base, 'send-a-new-message', {
      token: t,
      body: { type: 'SMS', contactId, message: 'hello', subType: {}, status: 'pending' },
    });
    messageId = String(r.body.messageId);
    await call(w.base, 'send-a-new-message', { token: t, body: { type: 'Pigeon', contactId } }, 'invalid');
  });

  it('update-message-status', async () => {
    await call(w.base, 'update-message-status', { token: t, pathParams: { messageId }, body: { status: 'delivered' } });
    await call(
      w.base,
      'update-message-status',
      { token: t, pathParams: { messageId }, body: { status: 'bogus' } },
      'invalid',
    );
    const back = await call(
      w.base,
      'update-message-status',
      { token: t, pathParams: { messageId }, body: { status: 'pending' } },
      'invalid',
    );
    expect(back.status).toBe(400);
  });

  it('add-an-inbound-message', async () => {
    await call(w.base, 'add-an-inbound-message', {
      token: t,
      body: {
        type: 'SMS',
        conversationId,
        contactId,
        conversationProviderId: String(w.app.conversationProviderId),
        message: 'hi',
        direction: 'inbound',
      },
    });
    await call(
      w.base,
      'add-an-inbound-message',
      { token: t, body: { type: 'SMS', contactId, message: 'hi' } },
      'invalid',
    );
  });

  it('add-an-outbound-message (external call)', async () => {
    await call(w.base, 'add-an-outbound-message', {
      token: t,
      body: {
        type: 'Call',
        conversationId,
        conversationProviderId: String(w.app.conversationProviderId),
        call: { to: '+15551234567', from: '+15550000001', status: 'completed' },
      },
    });
    await call(w.base, 'add-an-outbound-message', { token: t, body: { type: 'SMS', conversationId } }, 'invalid');
  });

  it('get-messages / get-message', async () => {
    // The spec declares the flat shape; the emulator's default wraps it (docs/ghl-behaviour.md#messages-response) — validate the inner object.
    const r = await call(w.base, 'get-messages', {
      token: t,
      pathParams: { conversationId },
      query: { limit: '20' },
      unwrap: (b) => b.messages,
    });
    expect((r.body.messages as { messages: unknown[] }).messages.length).toBeGreaterThan(0);
    await call(w.base, 'get-message', { token: t, pathParams: { id: messageId } });
    await call(w.base, 'get-message', { token: t, pathParams: { id: 'missing' } }, 'invalid');
    await call(w.base, 'get-messages', { token: t, pathParams: { conversationId: 'missing' } }, 'invalid');
  });

  it('get-messages flat (wrapMessagesResponse: false) matches the spec directly', async () => {
    const flat = await world({ wrapMessagesResponse: false });
    try {
      const ft = String((await tokenFor(flat, { locationId: flat.locationId })).access_token);
      const c = flat.emu.control.createContact({ locationId: flat.locationId, phone: '+15551112222' });
      flat.emu.control.sendMessageAsUser({ locationId: flat.locationId, contactId: c.id, type: 'SMS', message: 'x' });
      const conv = flat.emu.control.listConversations({ contactId: c.id })[0]!;
      const r = await call(flat.base, 'get-messages', { token: ft, pathParams: { conversationId: conv.id } });
      expect(r.body.nextPage).toBe(false);
    } finally {
      await closeWorld(flat);
    }
  });

  it('get-message of a custom provider message (what the bridge reads to confirm an unsigned delivery); another location → 403', async () => {
    const cw = await world({}, { type: 'SMS', isCustom: true });
    try {
      const ct = String((await tokenFor(cw, { locationId: cw.locationId })).access_token);
      const c = cw.emu.control.createContact({ locationId: cw.locationId, phone: '+15551113333' });
      const m = cw.emu.control.sendMessageAsUser({
        locationId: cw.locationId,
        contactId: c.id,
        type: 'SMS',
        message: 'confirm me',
        conversationProviderId: cw.app.conversationProviderId!,
      });
      const r = await call(cw.base, 'get-message', { token: ct, pathParams: { id: m.id } });
      expect(r.body).toMatchObject({
        id: m.id,
        locationId: cw.locationId,
        contactId: c.id,
        direction: 'outbound',
        messageType: 'TYPE_CUSTOM_PROVIDER_SMS',
        body: 'confirm me',
        status: 'pending',
      });
      const other = cw.emu.control.createLocation({ companyId: cw.companyId, name: 'Other' });
      const ot = String((await tokenFor(cw, { locationId: other.id })).access_token);
      const denied = await call(cw.base, 'get-message', { token: ot, pathParams: { id: m.id } }, 'invalid');
      expect(denied.status).toBe(403);
    } finally {
      await closeWorld(cw);
    }
  });

  it('export-messages-by-location: cursor pages ascending by createdAt, filters, errors', async () => {
    const ew = await world({}, { type: 'SMS', isCustom: true });
    try {
      const et = String((await tokenFor(ew, { locationId: ew.locationId })).access_token);
      const c = ew.emu.control.createContact({
        locationId: ew.locationId,
        phone: '+15551114444',
        email: 'e@example.com',
      });
      const ids: string[] = [];
      for (let i = 0; i < 25; i++) {
        ids.push(
          ew.emu.control.sendMessageAsUser({
            locationId: ew.locationId,
            contactId: c.id,
            type: 'SMS',
            message: `m${i}`,
            conversationProviderId: ew.app.conversationProviderId!,
          }).id,
        );
        ew.emu.clock.advance(1000);
      }
      ew.emu.control.sendMessageAsUser({
        locationId: ew.locationId,
        contactId: c.id,
        type: 'Email',
        html: '<p>e</p>',
        subject: 's',
      });
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const r = await call(ew.base, 'export-messages-by-location', {
          token: et,
          query: {
            locationId: ew.locationId,
            limit: '10',
            sortBy: 'createdAt',
            sortOrder: 'asc',
            ...(cursor ? { cursor } : {}),
          },
        });
        expect(r.body.total).toBe(25); // no channel: every non-email message
        for (const m of r.body.messages as Array<{
          id: string;
          messageType: string;
          conversationProviderId?: string;
        }>) {
          seen.push(m.id);
          expect(m.messageType).toBe('TYPE_CUSTOM_PROVIDER_SMS');
          expect(m.conversationProviderId).toBe(ew.app.conversationProviderId);
        }
        cursor = r.body.nextCursor as string | undefined;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual(ids);
      const email = await call(ew.base, 'export-messages-by-location', {
        token: et,
        query: { locationId: ew.locationId, channel: 'Email' },
      });
      expect(email.body.total).toBe(1);
      const since = await call(ew.base, 'export-messages-by-location', {
        token: et,
        query: {
          locationId: ew.locationId,
          sortOrder: 'desc',
          contactId: c.id,
          startDate: new Date(ew.emu.clock.now() - 5500).toISOString(),
        },
      });
      expect((since.body.messages as Array<{ id: string }>).map((m) => m.id)).toEqual(ids.slice(-5).reverse());
      for (const bad of <Record<string, string>[]>[
        { limit: '5' },
        { limit: '501' },
        { sortBy: 'size' },
        { sortOrder: 'up' },
        { channel: 'Pigeon' },
        { cursor: 'not-a-cursor' },
        { startDate: 'yesterday' },
      ]) {
        const r = await call(
          ew.base,
          'export-messages-by-location',
          { token: et, query: { locationId: ew.locationId, ...bad } },
          'invalid',
        );
        expect(r.status).toBe(400);
      }
      await call(ew.base, 'export-messages-by-location', { token: et, query: {} }, 'invalid');
      const other = ew.emu.control.createLocation({ companyId: ew.companyId, name: 'Other' });
      const ot = String((await tokenFor(ew, { locationId: other.id })).access_token);
      expect(
        (
          await call(
            ew.base,
            'export-messages-by-location',
            { token: ot, query: { locationId: ew.locationId } },
            'invalid',
          )
        ).status,
      ).toBe(403);
    } finally {
      await closeWorld(ew);
    }
  });

  it('delete-conversation', async () => {
    await call(w.base, 'delete-conversation', { token: t, pathParams: { conversationId } });
    await call(w.base, 'delete-conversation', { token: t, pathParams: { conversationId } }, 'invalid');
  });
});
