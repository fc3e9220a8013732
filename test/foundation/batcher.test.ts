import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { Batcher } from '../../src/infra/db/batches.js';
import { openTestStore, type TestStore } from '../helpers/store.js';

/**
 * The group commit behind the dispatch outcomes and the status reports (issue 18: statements per message): items
 * submitted together go out in one statement, each caller gets its own row's answer only once it is committed, and
 * a failed statement fails every caller of its batch.
 */
let store: TestStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe('Batcher', () => {
  it('writes items submitted together in one statement, one at a time, and answers each caller with its own row', async () => {
    store = await openTestStore();
    const db = store.db;
    await sql`create table batch_t (id int primary key, v text not null)`.execute(db);
    const sizes: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const b = new Batcher<{ id: number; v: string }, string | undefined>(async (items) => {
      sizes.push(items.length);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        const r = await sql<{ id: number; v: string }>`
          insert into batch_t (id, v) select * from unnest(${items.map((i) => i.id)}::int[], ${items.map((i) => i.v)}::text[])
          returning id, upper(v) as v`.execute(db);
        const by = new Map(r.rows.map((x) => [x.id, x.v]));
        return items.map((i) => by.get(i.id));
      } finally {
        inFlight--;
      }
    });
    const first = await Promise.all([1, 2, 3].map((id) => b.submit({ id, v: `v${id}` })));
    expect(first).toEqual(['V1', 'V2', 'V3']);
    expect(sizes).toEqual([3]);
    // Submitted while a write is in flight: they wait for it, then go out together.
    const a = b.submit({ id: 4, v: 'a' });
    await Promise.resolve();
    const later = Array.from({ length: 50 }, (_, i) => b.submit({ id: 10 + i, v: `x${i}` }));
    expect(await a).toBe('A');
    expect(await Promise.all(later)).toEqual(Array.from({ length: 50 }, (_, i) => `X${i}`));
    expect(sizes.slice(1).reduce((x, y) => x + y, 0)).toBe(51);
    expect(sizes.length).toBeLessThanOrEqual(3);
    expect(maxInFlight).toBe(1);
    const rows = await sql<{ n: number }>`select count(*)::int as n from batch_t`.execute(db);
    expect(rows.rows[0]!.n).toBe(54);
  });

  it('a failed statement rejects every caller of its batch and the next batch still runs', async () => {
    store = await openTestStore();
    const db = store.db;
    await sql`create table batch_u (id int primary key)`.execute(db);
    const b = new Batcher<number>(async (ids) => {
      await sql`insert into batch_u (id) select * from unnest(${ids}::int[])`.execute(db);
      return ids.map(() => undefined);
    });
    await b.submit(1);
    // 1 exists: the whole batch (1, 2) fails, and neither row is written.
    const r = await Promise.allSettled([b.submit(2), b.submit(1)]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    await b.submit(3);
    const rows = await sql<{ id: number }>`select id from batch_u order by id`.execute(db);
    expect(rows.rows.map((x) => x.id)).toEqual([1, 3]);
  });
});
