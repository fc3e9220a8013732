import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/infra/db/index.js';
import { prepared, PREPARED_MARK } from '../../src/infra/db/prepared.js';
import { migrateToLatest } from '../../src/infra/db/migrations/index.js';
import { allMigrations } from '../../src/modules.js';
import { enqueue } from '../../src/infra/queue/index.js';
import { dropSchema, freshSchema, PG_URL } from '../helpers/store.js';

let store: DatabaseHandle | undefined;
let schema: string | undefined;
afterEach(async () => {
  await store?.close();
  if (schema) await dropSchema(schema);
  store = schema = undefined;
});

async function open(preparedStatements: boolean): Promise<DatabaseHandle> {
  schema = freshSchema();
  store = await openDatabase({ url: PG_URL, schema, poolMax: 2, preparedStatements });
  await migrateToLatest(store.db, schema, await allMigrations());
  return store;
}

/** Statements prepared in the session that runs `fn` (a transaction keeps one connection). */
async function preparedInSession(
  h: DatabaseHandle,
  fn: (trx: DatabaseHandle['db']) => Promise<unknown>,
): Promise<string[]> {
  return h.db.transaction().execute(async (trx) => {
    await fn(trx);
    const r = await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(trx);
    return r.rows.map((x) => x.statement);
  });
}

describe('prepared statements (PostgreSQL)', () => {
  it('marked statements are prepared once per connection and keep returning the right rows; unmarked ones are not', async () => {
    const h = await open(true);
    const statements = await preparedInSession(h, async (trx) => {
      // Past the server's five custom plans, so the cached (generic) plan is used too.
      for (let i = 0; i < 8; i++) {
        const r = await prepared<{ x: number }>(sql`select ${i}::int + 1 as x`).execute(trx);
        expect(r.rows[0]!.x).toBe(i + 1);
      }
      await sql`select 1 as unmarked`.execute(trx);
    });
    expect(statements.filter((s) => s.startsWith(PREPARED_MARK))).toHaveLength(1);
    expect(statements.some((s) => s.includes('unmarked'))).toBe(false);
  });

  it('enqueue of one job uses a prepared statement; the job is stored correctly every time', async () => {
    const h = await open(true);
    const statements = await preparedInSession(h, async (trx) => {
      for (let i = 0; i < 7; i++) await enqueue(trx, { kind: 'k', payload: { i }, orderingKey: 'o' });
    });
    expect(statements.some((s) => s.startsWith(PREPARED_MARK) && s.includes('insert into bridge_jobs'))).toBe(true);
    const rows = await h.db.selectFrom('bridge_jobs').select(['payload', 'state']).orderBy('id').execute();
    expect(rows.map((r) => (r.payload as { i: number }).i)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(rows.map((r) => r.state)).toEqual([
      'ready',
      'blocked',
      'blocked',
      'blocked',
      'blocked',
      'blocked',
      'blocked',
    ]);
  });

  it('can be switched off (e.g. behind a pooler without prepared-statement support)', async () => {
    const h = await open(false);
    const statements = await preparedInSession(h, async (trx) => {
      await prepared(sql`select 1 as x`).execute(trx);
    });
    expect(statements).toEqual([]);
  });
});
