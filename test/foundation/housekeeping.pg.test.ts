import pg from 'pg';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { webhooksModule, pruneEvents } from '../../src/platform/webhooks/index.js';
import { PG_URL, startTestBridge, type TestBridge } from '../helpers/store.js';

let b: TestBridge | undefined;
let other: pg.Client | undefined;
afterEach(async () => {
  await other?.end().catch(() => {});
  await b?.close();
  b = other = undefined;
});

describe('housekeeping on PostgreSQL, beside other transactions', () => {
  it('never deletes an event another transaction is bringing back (a replay of an old event), and does not wait for it', async () => {
    b = await startTestBridge({ modules: [webhooksModule()], env: { DATA_RETENTION_DAYS: '0' } });
    const db = b.ctx.db;
    const old = sql<Date>`now() - interval '40 days'`;
    await db
      .insertInto('webhook_events')
      .values(
        ['a', 'b'].map((k) => ({
          source: 'app' as const,
          dedupe_key: k,
          type: 'ContactCreate',
          payload: '{}',
          signature: 'ed25519',
          status: 'dispatched' as const,
          received_at: old,
        })),
      )
      .execute();
    // Another session replays event 'a': it holds the row locked and sets it back to 'received'.
    other = new pg.Client({ connectionString: PG_URL, options: `-c search_path="${b.ctx.store.schema}"` });
    await other.connect();
    await other.query('begin');
    await other.query(`select id from webhook_events where dedupe_key = 'a' for update`);
    await other.query(`update webhook_events set status = 'received' where dedupe_key = 'a'`);
    expect(await pruneEvents(db, 30)).toBe(1); // 'b' only; 'a' is skipped, not waited for
    await other.query('commit');
    expect(await pruneEvents(db, 30)).toBe(0); // 'a' is waiting for its dispatch now: kept
    const left = await db.selectFrom('webhook_events').select(['dedupe_key', 'status']).execute();
    expect(left).toEqual([{ dedupe_key: 'a', status: 'received' }]);
  });
});
