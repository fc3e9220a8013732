import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openTestStore, PG_URL, waitFor } from '../helpers/store.js';

describe('PostgreSQL connection loss', () => {
  it('a connection killed mid-query rejects that query; the process and the pool carry on', async () => {
    const store = await openTestStore();
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      const slow = sql`select pg_sleep(30)`.execute(store.db);
      const outcome = slow.then(
        () => 'finished',
        (e: Error) => e.message,
      );
      // Kill the backend running the sleep, as a server restart or failover would.
      let killed = 0;
      for (let i = 0; i < 200 && !killed; i++) {
        const r = await admin.query(
          `select pg_terminate_backend(pid) from pg_stat_activity where query like 'select pg_sleep(30)%' and pid <> pg_backend_pid()`,
        );
        killed = r.rowCount ?? 0;
      }
      expect(killed).toBe(1);
      expect(await outcome).toMatch(/terminat/i);
      // The pool drops the dead client and the store works again. (A query sent in the instant
      // between the FATAL message and the socket closing can still meet the dying client; callers
      // retry.) An unhandled 'error' would have crashed this test process instead.
      const one = await waitFor(
        async () => (await sql<{ one: number }>`select 1 as one`.execute(store.db)).rows[0]?.one,
        { timeoutMs: 5000 },
      );
      expect(one).toBe(1);
    } finally {
      await admin.end();
      await store.close();
    }
  });
});
