import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/infra/db/index.js';
import { allMigrations } from '../../src/modules.js';
import { dropSchema, freshSchema, PG_URL } from '../helpers/store.js';
import { spawnTs } from '../fixtures/child.js';

describe('migrations on PostgreSQL', () => {
  it('two processes starting at once apply each migration exactly once', async () => {
    const schema = freshSchema();
    const env = { DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema };
    const MIGRATIONS = await allMigrations();
    try {
      const a = spawnTs('src/cli/main.ts', ['migrate'], env);
      const b = spawnTs('src/cli/main.ts', ['migrate'], env);
      expect(await a.exited).toBe(0);
      expect(await b.exited).toBe(0);
      const applied = [a.output(), b.output()].flatMap((o) => /applied: (.*)/.exec(o)?.[1]?.split(', ') ?? []).sort();
      expect(applied).toEqual(Object.keys(MIGRATIONS).sort());
      const h = await openDatabase({ url: PG_URL, schema });
      const rows = await h.db
        .selectFrom('kysely_migration' as never)
        .select('name' as never)
        .execute();
      await h.close();
      expect(rows).toHaveLength(Object.keys(MIGRATIONS).length);
    } finally {
      await dropSchema(schema);
    }
  });
});
