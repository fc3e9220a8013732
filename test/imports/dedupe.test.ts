import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectDuplicates, matchKeys, nameCompanyScore, similarity } from '../../src/capabilities/imports/index.js';
import { openTestStore, type TestStore } from '../helpers/store.js';

/** Duplicate detection on hand-made rows: the match keys, the score, and the chunked block walk. */
let store: TestStore;
beforeAll(async () => {
  store = await openTestStore();
});
afterAll(async () => store?.close());

const people: Array<Record<string, unknown>> = [
  {
    id: 'c01',
    firstName: 'Ann',
    lastName: 'Lee',
    email: 'ann@x.com',
    phone: '+14155550101',
    companyName: 'Acme Widgets',
  },
  { id: 'c02', firstName: 'Anne', lastName: 'Lee', email: ' ANN@X.COM ', companyName: 'Acme Widgets, Inc.' },
  { id: 'c03', firstName: 'Bob', lastName: 'Stone', phone: '(415) 555-0101', companyName: 'Stone Roofing' },
  { id: 'c04', firstName: 'Stone', lastName: 'Bob', companyName: 'Stone Roofing LLC' },
  { id: 'c05', firstName: 'Carla', lastName: 'Diaz', companyName: 'Diaz Dental' },
  { id: 'c06', firstName: 'Carla', lastName: 'Diaz', companyName: 'Bright Motors' },
  { id: 'c07', firstName: 'Dana', lastName: 'Whitfield', companyName: 'Harbor Freight 12' },
  { id: 'c08', firstName: 'Dana', lastName: 'Whitfeld', companyName: 'Harbor Freight 12' },
  { id: 'c09', firstName: 'Dana', lastName: 'Whitfielt', companyName: 'Harbor Freight 12' },
  {
    id: 'c10',
    firstName: 'Émile',
    lastName: 'Zola',
    email: 'not-an-email',
    phone: 'n/a',
    companyName: 'Zola Éditions',
  },
  { id: 'c11', firstName: 'Emile', lastName: 'Zola', companyName: 'Zola Editions GmbH' },
];

async function stage(importId: string) {
  await store.db
    .insertInto('contact_imports')
    .values({
      id: importId,
      location_id: `L-${importId}`,
      status: 'deduplicating',
      page_size: 500,
      cursor: null,
      total: null,
      error: null,
      finished_at: null,
      walked_at: null,
    })
    .execute();
  for (const p of people) {
    const k = matchKeys(p, 'US');
    await store.db
      .insertInto('contact_import_rows')
      .values({
        import_id: importId,
        contact_id: String(p.id),
        page: 0,
        original: JSON.stringify(p),
        logical: '{}',
        email_norm: k.email,
        phone_e164: k.phone,
        name_key: k.name,
        company_key: k.company,
        mapped_external_id: null,
        merge_into: null,
        decided_at: null,
      })
      .execute();
    for (const block of k.blocks)
      await store.db
        .insertInto('contact_import_blocks')
        .values({ import_id: importId, block, contact_id: String(p.id) })
        .execute();
  }
}

async function groups(importId: string) {
  const g = await store.db
    .selectFrom('contact_import_groups as g')
    .innerJoin('contact_import_group_members as m', 'm.group_id', 'g.id')
    .select(['g.id', 'g.rule', 'g.score', 'm.contact_id'])
    .where('g.import_id', '=', importId)
    .execute();
  const by = new Map<string, { rule: string; score: number; ids: string[] }>();
  for (const r of g) {
    const k = String(r.id);
    const e = by.get(k) ?? { rule: r.rule, score: r.score, ids: [] };
    e.ids.push(r.contact_id);
    by.set(k, e);
  }
  return [...by.values()].map((e) => `${e.rule} ${e.ids.sort().join(',')}`).sort();
}

describe('match keys', () => {
  it('normalise e-mail, phone, name and company; invalid values give no key', () => {
    expect(matchKeys(people[1]!, 'US')).toMatchObject({
      email: 'ann@x.com',
      name: 'anne lee',
      company: 'acme widgets',
    });
    expect(matchKeys(people[2]!, 'US').phone).toBe('+14155550101');
    expect(matchKeys(people[3]!, 'US')).toMatchObject({ name: 'bob stone', company: 'stone roofing' });
    expect(matchKeys(people[9]!, 'US')).toMatchObject({
      email: null,
      phone: null,
      name: 'emile zola',
      company: 'zola editions',
    });
    expect(matchKeys({ id: 'x', firstName: 'Solo' }, 'US').blocks).toEqual([]);
    expect(similarity('abc', 'abc')).toBe(1);
    expect(similarity('whitfield', 'whitfeld')).toBeCloseTo(1 - 1 / 9);
    expect(
      nameCompanyScore(
        { name: 'carla diaz', company: 'diaz dental' },
        { name: 'carla diaz', company: 'bright motors' },
      ),
    ).toBeNull();
  });
});

describe('detectDuplicates', () => {
  it('groups by rule with scores, the same whatever the chunk size; oversized blocks are skipped', async () => {
    await stage('imp_a');
    const r = await detectDuplicates(store.db, 'imp_a');
    const expected = [
      'email c01,c02',
      'name_company c01,c02',
      'name_company c03,c04',
      'name_company c07,c08,c09',
      'name_company c10,c11',
      'phone c01,c03',
    ];
    expect(await groups('imp_a')).toEqual(expected);
    expect(r).toMatchObject({ groups: 6, byRule: { email: 1, phone: 1, name_company: 4 }, skippedBlocks: 0 });
    const scores = await store.db
      .selectFrom('contact_import_groups')
      .select(['rule', 'score', 'size'])
      .where('import_id', '=', 'imp_a')
      .execute();
    for (const s of scores) {
      if (s.rule === 'name_company') expect(s.score).toBeLessThanOrEqual(1);
      else expect(s.score).toBe(1);
    }
    // Chunks that cut blocks in two: the same groups (a cut block is read again whole).
    for (const chunk of [2, 3, 5]) {
      await detectDuplicates(store.db, 'imp_a', { nameMin: 0.85, companyMin: 0.85, maxBlock: 500, chunk });
      expect(await groups('imp_a'), `chunk ${chunk}`).toEqual(expected);
    }
    // Blocks above maxBlock (here 2) are skipped and counted: the three Danas are not compared.
    const small = await detectDuplicates(store.db, 'imp_a', {
      nameMin: 0.85,
      companyMin: 0.85,
      maxBlock: 2,
      chunk: 5000,
    });
    expect(small.skippedBlocks).toBeGreaterThan(0);
    expect(await groups('imp_a')).not.toContain('name_company c07,c08,c09');
  });
});
