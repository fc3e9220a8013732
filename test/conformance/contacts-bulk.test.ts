import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeWorld, tokenFor, world, type World } from '../emulator/helpers.js';
import { call } from './spec.js';

/**
 * The bulk-create control action (`POST /_emulator/contacts/bulk`, not a GHL operation) and what the import relies on
 * after it: `search-contacts-advanced` at GHL's largest page (500) with the `searchAfter` cursor and `total`, every
 * answer checked against the official spec by `call`.
 */
let w: World;
let t: string;
beforeAll(async () => {
  w = await world();
  t = String((await tokenFor(w, { locationId: w.locationId })).access_token);
});
afterAll(async () => closeWorld(w));

const bulk = async (body: Record<string, unknown>) => {
  const r = await fetch(`${w.base}/_emulator/contacts/bulk`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

describe('POST /_emulator/contacts/bulk', () => {
  it('creates the contacts with planted duplicates; the same seed gives the same contacts', async () => {
    const r = await bulk({
      locationId: w.locationId,
      count: 1200,
      seed: 7,
      duplicates: { email: 5, phone: 4, nameCompany: 3 },
    });
    expect(r.status).toBe(201);
    expect(r.body.created).toBe(1212);
    const planted = r.body.planted as Array<{ rule: string; originalId: string; duplicateId: string }>;
    expect(planted.map((p) => p.rule).sort()).toEqual([
      ...Array<string>(5).fill('email'),
      ...Array<string>(3).fill('name_company'),
      ...Array<string>(4).fill('phone'),
    ]);
    const byId = new Map(w.emu.control.listContacts({ locationId: w.locationId }).map((c) => [c.id, c]));
    for (const p of planted) {
      const [o, d] = [byId.get(p.originalId)!, byId.get(p.duplicateId)!];
      if (p.rule === 'email') expect(d.email!.trim().toLowerCase()).toBe(o.email);
      if (p.rule === 'phone') expect(`+1${d.phone!.replace(/\D/g, '')}`).toBe(o.phone);
      if (p.rule === 'name_company') {
        expect(d.firstName).toBe(o.firstName);
        expect(d.lastName).not.toBe(o.lastName);
        expect(d.companyName).toBe(`${o.companyName}, Inc.`);
      }
    }
    // Deterministic: a second emulator with the same seed makes the same contacts and ids.
    const w2 = await world();
    try {
      w2.emu.control.createLocation({ companyId: w2.companyId, name: 'x', id: w.locationId });
      const again = w2.emu.control.bulkCreateContacts({
        locationId: w.locationId,
        count: 1200,
        seed: 7,
        duplicates: { email: 5, phone: 4, nameCompany: 3 },
      });
      expect(again.planted).toEqual(planted);
      expect(again.firstId).toBe(r.body.firstId);
      const names = (x: World) =>
        x.emu.control
          .listContacts({ locationId: w.locationId })
          .map((c) => `${c.id} ${c.firstName} ${c.lastName} ${c.email} ${c.phone} ${c.companyName}`)
          .sort();
      expect(names(w2)).toEqual(names(w));
    } finally {
      await closeWorld(w2);
    }
  });

  it('refuses bad input, naming it', async () => {
    const big = await bulk({ locationId: w.locationId, count: 100_001 });
    expect(big.status).toBe(400);
    expect(String(big.body.message)).toMatch(/count must be a whole number 0–100000/);
    const loc = await bulk({ locationId: 'nope', count: 1 });
    expect(loc.status).toBe(400);
    expect(String(loc.body.message)).toMatch(/unknown locationId/);
    const dup = await bulk({ locationId: w.locationId, count: 2, duplicates: { email: 3 } });
    expect(String(dup.body.message)).toMatch(/must not outnumber count/);
  });
});

describe('search-contacts-advanced: the import walk', () => {
  it('pages of 500 with searchAfter cover every contact once, with total', async () => {
    const seen: string[] = [];
    let searchAfter: Array<string | number> | undefined;
    let pages = 0;
    for (;;) {
      const r = await call(w.base, 'search-contacts-advanced', {
        token: t,
        body: {
          locationId: w.locationId,
          pageLimit: 500,
          sort: [{ field: 'dateAdded', direction: 'asc' }],
          ...(searchAfter ? { searchAfter } : {}),
        },
      });
      pages++;
      expect(r.body.total).toBe(1212);
      const rows = r.body.contacts as Array<{ id: string; searchAfter: Array<string | number> }>;
      seen.push(...rows.map((c) => c.id));
      if (rows.length < 500) break;
      searchAfter = rows.at(-1)!.searchAfter;
    }
    expect(pages).toBe(3);
    expect(seen).toHaveLength(1212);
    expect(new Set(seen).size).toBe(1212);
    await call(
      w.base,
      'search-contacts-advanced',
      { token: t, body: { locationId: w.locationId, pageLimit: 501 } },
      'invalid',
    );
  });
});
