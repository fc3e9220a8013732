import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeWorld, tokenFor, world, type World } from '../emulator/helpers.js';
import { call } from './spec.js';

let w: World;
let t: string;
beforeAll(async () => {
  w = await world();
  t = String((await tokenFor(w, { locationId: w.locationId })).access_token);
});
afterAll(async () => closeWorld(w));

describe('contacts.json', () => {
  let id = '';
  it('create-contact', async () => {
    const r = await call(w.base, 'create-contact', {
      token: t,
      body: {
        locationId: w.locationId,
        firstName: 'Ann',
        lastName: 'Lee',
        email: 'ann@example.com',
        phone: '+15551234567',
        tags: ['a'],
        source: 'api',
      },
    });
    expect(r.status).toBe(201);
    id = (r.body.contact as { id: string }).id;
    await call(w.base, 'create-contact', { token: t, body: { firstName: 'NoLocation' } }, 'invalid');
    const dup = await call(
      w.base,
      'create-contact',
      { token: t, body: { locationId: w.locationId, email: 'ann@example.com' } },
      'invalid',
    );
    expect(dup.status).toBe(400);
  });

  it('get-contact', async () => {
    await call(w.base, 'get-contact', { token: t, pathParams: { contactId: id } });
    await call(w.base, 'get-contact', { token: t, pathParams: { contactId: 'doesnotexist00000000' } }, 'invalid');
  });

  it('update-contact', async () => {
    await call(w.base, 'update-contact', { token: t, pathParams: { contactId: id }, body: { city: 'Paris' } });
    await call(
      w.base,
      'update-contact',
      { token: t, pathParams: { contactId: id }, body: { tags: 'not-an-array' } },
      'invalid',
    );
  });

  it('upsert-contact', async () => {
    const r = await call(w.base, 'upsert-contact', {
      token: t,
      body: { locationId: w.locationId, email: 'ann@example.com', firstName: 'Anne' },
    });
    expect(r.body.new).toBe(false);
    await call(w.base, 'upsert-contact', { token: t, body: { email: 'x@y.z' } }, 'invalid');
  });

  it('search-contacts-advanced', async () => {
    const r = await call(w.base, 'search-contacts-advanced', {
      token: t,
      body: {
        locationId: w.locationId,
        page: 1,
        pageLimit: 20,
        filters: [{ field: 'email', operator: 'eq', value: 'ann@example.com' }],
      },
    });
    expect(r.body.total).toBe(1);
    await call(w.base, 'search-contacts-advanced', { token: t, body: { pageLimit: 20 } }, 'invalid');
  });

  it('get-duplicate-contact', async () => {
    const r = await call(w.base, 'get-duplicate-contact', {
      token: t,
      query: { locationId: w.locationId, email: 'ann@example.com' },
    });
    expect((r.body.contact as { id: string }).id).toBe(id);
    await call(w.base, 'get-duplicate-contact', { token: t, query: { email: 'ann@example.com' } }, 'invalid');
  });

  it('get-contacts (deprecated list)', async () => {
    await call(w.base, 'get-contacts', { token: t, query: { locationId: w.locationId, limit: '10' } });
    await call(w.base, 'get-contacts', { token: t, query: { limit: '10' } }, 'invalid');
  });

  it('add-tags / remove-tags', async () => {
    const a = await call(w.base, 'add-tags', { token: t, pathParams: { contactId: id }, body: { tags: ['vip'] } });
    expect(a.status).toBe(201);
    await call(w.base, 'add-tags', { token: t, pathParams: { contactId: id }, body: {} }, 'invalid');
    await call(w.base, 'remove-tags', { token: t, pathParams: { contactId: id }, body: { tags: ['vip'] } });
    await call(w.base, 'remove-tags', { token: t, pathParams: { contactId: id }, body: { tags: 'vip' } }, 'invalid');
  });

  it('delete-contact', async () => {
    await call(w.base, 'delete-contact', { token: t, pathParams: { contactId: id } });
    await call(w.base, 'delete-contact', { token: t, pathParams: { contactId: id } }, 'invalid');
  });

  it('missing Version header and bad token are GHL-shaped errors', async () => {
    const v = await call(
      w.base,
      'get-contacts',
      { token: t, query: { locationId: w.locationId }, version: null },
      'invalid',
    );
    expect(v.status).toBe(400);
    const u = await call(w.base, 'get-contacts', { token: 'nope', query: { locationId: w.locationId } }, 'invalid');
    expect(u.status).toBe(401);
  });
});

describe('upsert-contact: email and phone matching different contacts (spec description; highlevel-api-docs #37)', () => {
  const clash = async (opts: Parameters<typeof world>[0]) => {
    const cw = await world(opts);
    const tok = String((await tokenFor(cw, { locationId: cw.locationId })).access_token);
    const byPhone = cw.emu.control.createContact({ locationId: cw.locationId, phone: '+15557770001', firstName: 'P' });
    const byMail = cw.emu.control.createContact({ locationId: cw.locationId, email: 'm@example.com', firstName: 'M' });
    return { cw, tok, byPhone, byMail };
  };

  it('default: updates the contact matching the first field of the sequence and silently drops the other field', async () => {
    const { cw, tok, byPhone, byMail } = await clash({});
    try {
      const r = await call(cw.base, 'upsert-contact', {
        token: tok,
        body: { locationId: cw.locationId, email: 'm@example.com', phone: '+15557770001', lastName: 'Both' },
      });
      expect(r.status).toBe(200);
      expect(r.body.new).toBe(false);
      const c = r.body.contact as { id: string; phone?: string; lastName?: string };
      expect(c.id).toBe(byMail.id);
      expect(c.lastName).toBe('Both');
      expect(c.phone).toBeUndefined();
      expect(
        cw.emu.control.listContacts({ locationId: cw.locationId }).find((x) => x.id === byPhone.id)?.lastName,
      ).toBeUndefined();
    } finally {
      await closeWorld(cw);
    }
  });

  it("upsertClash 'reject': answers 400 naming the contact that holds the other field, and changes nothing", async () => {
    const { cw, tok, byPhone, byMail } = await clash({ upsertClash: 'reject' });
    try {
      const r = await call(
        cw.base,
        'upsert-contact',
        {
          token: tok,
          body: { locationId: cw.locationId, email: 'm@example.com', phone: '+15557770001', lastName: 'Both' },
        },
        'invalid',
      );
      expect(r.status).toBe(400);
      expect(r.body.meta).toMatchObject({ matchingField: 'phone', contactId: byPhone.id });
      expect(
        cw.emu.control.listContacts({ locationId: cw.locationId }).find((x) => x.id === byMail.id)?.lastName,
      ).toBeUndefined();
    } finally {
      await closeWorld(cw);
    }
  });
});
