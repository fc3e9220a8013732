import { afterEach, describe, expect, it } from 'vitest';
import { api, closeWorld, tokenFor, world, type World } from './helpers.js';

let w: World;
afterEach(async () => closeWorld(w));
const V = '2021-07-28';

async function setup() {
  w = await world();
  return String((await tokenFor(w, { locationId: w.locationId })).access_token);
}

describe('contacts', () => {
  it('create/get/update/delete with webhooks', async () => {
    const t = await setup();
    const c = await api(
      w,
      t,
      'POST',
      '/contacts/',
      { locationId: w.locationId, firstName: 'Ann', email: 'Ann@Example.com', phone: '+15551234567', tags: ['a'] },
      V,
    );
    expect(c.status).toBe(201);
    const id = (c.body.contact as { id: string }).id;
    const dup = await api(w, t, 'POST', '/contacts/', { locationId: w.locationId, email: 'ann@example.com' }, V);
    expect(dup.status).toBe(400);
    expect(dup.body).toMatchObject({ statusCode: 400, meta: { contactId: id, matchingField: 'email' } });
    const g = await api(w, t, 'GET', `/contacts/${id}`, undefined, V);
    expect(g.body.contact).toMatchObject({ id, firstName: 'Ann', emailLowerCase: 'ann@example.com', tags: ['a'] });
    const u = await api(w, t, 'PUT', `/contacts/${id}`, { lastName: 'Lee' }, V);
    expect(u.body).toMatchObject({ succeded: true, contact: { lastName: 'Lee', firstName: 'Ann' } });
    const d = await api(w, t, 'DELETE', `/contacts/${id}`, undefined, V);
    expect(d.body).toEqual({ succeded: true });
    expect((await api(w, t, 'GET', `/contacts/${id}`, undefined, V)).status).toBe(400);
    await w.emu.idle();
    expect(w.receiver.received.map((r) => r.json.type)).toEqual([
      'INSTALL',
      'ContactCreate',
      'ContactUpdate',
      'ContactDelete',
    ]);
  });

  it('upsert follows the duplicate priority and createNewIfDuplicateAllowed', async () => {
    const t = await setup();
    const a = w.emu.control.createContact({ locationId: w.locationId, email: 'a@x.com' });
    const b = w.emu.control.createContact({ locationId: w.locationId, phone: '+15550001111' });
    const r = await api(
      w,
      t,
      'POST',
      '/contacts/upsert',
      { locationId: w.locationId, email: 'a@x.com', phone: '+15550001111', firstName: 'Z' },
      V,
    );
    expect(r.body).toMatchObject({ new: false, contact: { id: a.id, firstName: 'Z' } });
    // Phone belonged to another contact → ignored on the email match.
    expect((r.body.contact as { phone?: string }).phone).toBeUndefined();
    w.emu.control.updateLocation(w.locationId, { duplicatePriority: ['phone', 'email'] });
    const r2 = await api(
      w,
      t,
      'POST',
      '/contacts/upsert',
      { locationId: w.locationId, email: 'a@x.com', phone: '+15550001111' },
      V,
    );
    expect((r2.body.contact as { id: string }).id).toBe(b.id);
    const r3 = await api(
      w,
      t,
      'POST',
      '/contacts/upsert',
      { locationId: w.locationId, email: 'a@x.com', createNewIfDuplicateAllowed: true },
      V,
    );
    expect(r3.body.new).toBe(false);
    w.emu.control.updateLocation(w.locationId, { allowDuplicateContact: true });
    const r4 = await api(
      w,
      t,
      'POST',
      '/contacts/upsert',
      { locationId: w.locationId, email: 'a@x.com', createNewIfDuplicateAllowed: true },
      V,
    );
    expect(r4.body.new).toBe(true);
    const r5 = await api(w, t, 'POST', '/contacts/upsert', { locationId: w.locationId, email: 'new@x.com' }, V);
    expect(r5.body.new).toBe(true);
  });

  it('search, duplicate search, tags, custom fields', async () => {
    const t = await setup();
    const cf = await api(
      w,
      t,
      'POST',
      `/locations/${w.locationId}/customFields`,
      { name: 'External ID', dataType: 'TEXT', model: 'contact' },
      V,
    );
    expect(cf.status).toBe(201);
    const field = cf.body.customField as { id: string; fieldKey: string };
    expect(field.fieldKey).toBe('contact.external_id');
    const list = await api(w, t, 'GET', `/locations/${w.locationId}/customFields?model=contact`, undefined, V);
    expect((list.body.customFields as unknown[]).length).toBe(1);
    const c = await api(
      w,
      t,
      'POST',
      '/contacts/',
      {
        locationId: w.locationId,
        firstName: 'Ann',
        phone: '+15551234567',
        customFields: [{ id: field.id, field_value: 'ext-1' }],
      },
      V,
    );
    const id = (c.body.contact as { id: string }).id;
    expect(c.body.contact).toMatchObject({ customFields: [{ id: field.id, value: 'ext-1' }] });
    w.emu.control.createContact({ locationId: w.locationId, firstName: 'Bob' });
    const s = await api(
      w,
      t,
      'POST',
      '/contacts/search',
      {
        locationId: w.locationId,
        pageLimit: 10,
        filters: [{ field: `customFields.${field.id}`, operator: 'eq', value: 'ext-1' }],
      },
      V,
    );
    expect(s.body).toMatchObject({ total: 1, contacts: [{ id }] });
    const q = await api(w, t, 'POST', '/contacts/search', { locationId: w.locationId, pageLimit: 10, query: 'bob' }, V);
    expect(q.body.total).toBe(1);
    const dup = await api(
      w,
      t,
      'GET',
      `/contacts/search/duplicate?locationId=${w.locationId}&number=${encodeURIComponent('+15551234567')}`,
      undefined,
      V,
    );
    expect(dup.body).toMatchObject({ contact: { id } });
    const none = await api(
      w,
      t,
      'GET',
      `/contacts/search/duplicate?locationId=${w.locationId}&email=nobody%40x.com`,
      undefined,
      V,
    );
    expect(none.body.contact).toBeNull();
    const add = await api(w, t, 'POST', `/contacts/${id}/tags`, { tags: ['vip', 'new'] }, V);
    expect(add.status).toBe(201);
    expect(add.body.tags).toEqual(['vip', 'new']);
    const rm = await api(w, t, 'DELETE', `/contacts/${id}/tags`, { tags: ['new'] }, V);
    expect(rm.body.tags).toEqual(['vip']);
  });

  it('search by dateAdded sees contacts created and deleted since the last search, in both directions', async () => {
    const t = await setup();
    const create = async (firstName: string) =>
      (
        (await api(w, t, 'POST', '/contacts/', { locationId: w.locationId, firstName }, V)).body.contact as {
          id: string;
        }
      ).id;
    const names = async (direction: 'asc' | 'desc') =>
      (
        (
          await api(
            w,
            t,
            'POST',
            '/contacts/search',
            { locationId: w.locationId, pageLimit: 100, sort: [{ field: 'dateAdded', direction }] },
            V,
          )
        ).body.contacts as Array<{ firstName: string }>
      ).map((c) => c.firstName);
    await create('a');
    w.emu.clock.advance(1000);
    const b = await create('b');
    expect(await names('asc')).toEqual(['a', 'b']);
    w.emu.clock.advance(1000);
    await create('c');
    expect(await names('asc')).toEqual(['a', 'b', 'c']);
    expect(await names('desc')).toEqual(['c', 'b', 'a']);
    await api(w, t, 'DELETE', `/contacts/${b}`, undefined, V);
    expect(await names('asc')).toEqual(['a', 'c']);
    expect(await names('desc')).toEqual(['c', 'a']);
  });
});
