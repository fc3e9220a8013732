import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/infra/db/index.js';
import { tempDataDir } from '../helpers/store.js';

// The embedded store in its own thread (EMBEDDED_STORE_THREAD=worker, the default) against the same store in the
// bridge's thread. These run on PGlite whatever TEST_STORE says: they are about the embedded store itself.

/** Counts event-loop turns (setImmediate) until `p` settles: how much the loop could do while `p` ran. */
async function turnsWhile(p: Promise<unknown>): Promise<number> {
  let turns = 0;
  let done = false;
  void p.finally(() => (done = true)).catch(() => {});
  await new Promise<void>((resolve) => {
    const tick = () => {
      if (done) return resolve();
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
  });
  await p;
  return turns;
}

// A statement that keeps PostgreSQL busy for a while (hundreds of milliseconds on a slow machine).
const heavy = sql`select count(*)::int as n from generate_series(1, 3000000) g where g % 7 = 3`;

describe('embedded store thread', () => {
  it('keeps the event loop free while a statement runs (worker), unlike the in-thread store (main)', async () => {
    const worker = await openDatabase({ schema: 'w', dataDir: 'memory://', embeddedThread: 'worker' });
    const main = await openDatabase({ schema: 'm', dataDir: 'memory://', embeddedThread: 'main' });
    try {
      const inWorker = await turnsWhile(heavy.execute(worker.db));
      const inMain = await turnsWhile(heavy.execute(main.db));
      // In the worker the loop keeps turning for the whole statement; in the main thread the statement runs
      // synchronously and the loop only turns at the few awaits around it.
      expect(inWorker).toBeGreaterThan(200);
      expect(inMain).toBeLessThan(20);
      expect(inWorker).toBeGreaterThan(inMain * 10);
    } finally {
      await worker.close();
      await main.close();
    }
  });

  it('returns the same rows, errors and notifications as the in-thread store', async () => {
    for (const mode of ['worker', 'process', 'main'] as const) {
      const h = await openDatabase({ schema: 's', dataDir: 'memory://', embeddedThread: mode });
      try {
        await sql`create table t (id bigserial primary key, k text unique, n numeric, b bytea, at timestamptz, j jsonb)`.execute(
          h.db,
        );
        const at = new Date('2026-12-04T01:02:03.456Z');
        await sql`insert into t (k, n, b, at, j) values ('a', 1.5, ${Buffer.from('hi')}, ${at}, ${JSON.stringify({ x: [1] })})`.execute(
          h.db,
        );
        const { rows } = await sql<{
          id: number;
          n: number;
          b: Uint8Array;
          at: Date;
          j: unknown;
        }>`select id, n, b, at, j from t`.execute(h.db);
        expect(rows).toHaveLength(1);
        expect(rows[0]!.id).toBe(1);
        expect(rows[0]!.n).toBe(1.5);
        expect(Buffer.from(rows[0]!.b).toString()).toBe('hi');
        expect(rows[0]!.at).toBeInstanceOf(Date);
        expect(rows[0]!.at.toISOString()).toBe(at.toISOString());
        expect(rows[0]!.j).toEqual({ x: [1] });

        const err = await sql`insert into t (k) values ('a')`.execute(h.db).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(Error);
        expect(err).toMatchObject({ code: '23505', constraint: 't_k_key' });

        // A failed transaction rolls back as a whole, and the session is usable afterwards.
        await expect(
          h.db.transaction().execute(async (trx) => {
            await sql`insert into t (k) values ('b')`.execute(trx);
            await sql`insert into t (k) values ('a')`.execute(trx);
          }),
        ).rejects.toMatchObject({ code: '23505' });
        const count = await sql<{ n: number }>`select count(*)::int as n from t`.execute(h.db);
        expect(count.rows[0]!.n).toBe(1);

        const got: string[] = [];
        const unlisten = await h.listen('bridge_test', (p) => got.push(p));
        await sql`select pg_notify('bridge_test', 'hello')`.execute(h.db);
        await expect.poll(() => got, { timeout: 10_000 }).toEqual(['hello']);
        await unlisten();
      } finally {
        await h.close();
      }
    }
  });

  it('keeps an on-disk store across a close and a reopen in the worker', async () => {
    const dir = tempDataDir();
    const a = await openDatabase({ schema: 'd', dataDir: dir, embeddedThread: 'worker' });
    await sql`create table kept (v text)`.execute(a.db);
    await sql`insert into kept values ('still here')`.execute(a.db);
    await a.close();
    const b = await openDatabase({ schema: 'd', dataDir: dir, embeddedThread: 'worker' });
    try {
      const { rows } = await sql<{ v: string }>`select v from kept`.execute(b.db);
      expect(rows).toEqual([{ v: 'still here' }]);
    } finally {
      await b.close();
    }
  });
});
