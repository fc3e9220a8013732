import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, pendingMigrations } from '../../src/db/migrations/index.js';
import { openTestStore, tempDataDir } from '../helpers/store.js';
import { spawnTs, type Child } from '../fixtures/child.js';

const children: Child[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.proc.kill('SIGKILL');
});

describe('embedded store', () => {
  it('refuses a second process on the same data dir, naming the holder pid', async () => {
    const dir = tempDataDir();
    const holder = spawnTs('test/fixtures/hold-store.ts', [], { DATA_DIR: dir });
    children.push(holder);
    const line = await holder.waitForLine(/^HOLDING \d+/);
    const pid = line.split(' ')[1];
    const second = spawnTs('src/cli/main.ts', ['migrate'], { DATA_DIR: dir });
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(`in use by another ghl-bridge process (pid ${pid})`);

    // Once the holder is gone (even killed), its stale lock is taken over.
    holder.proc.kill('SIGKILL');
    await holder.exited;
    const third = spawnTs('src/cli/main.ts', ['migrate'], { DATA_DIR: dir });
    expect(await third.exited).toBe(0);
  });

  it('introspects only its own schema (other schemas of a shared database are invisible)', async () => {
    const a = await openTestStore();
    const b = await openTestStore();
    try {
      const tables = await a.db.introspection.getTables({ withInternalKyselyTables: true });
      expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['bridge_jobs', 'kysely_migration']));
      expect(new Set(tables.map((t) => t.schema))).toEqual(new Set([a.schema]));
      const jobs = tables.find((t) => t.name === 'bridge_jobs')!;
      expect(jobs.columns.find((c) => c.name === 'id')).toMatchObject({ isAutoIncrementing: true, isNullable: false });
      expect((await a.db.introspection.getTables()).some((t) => t.name.startsWith('kysely_'))).toBe(false);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migrates a fresh store to the latest version', async () => {
    const s = await openTestStore();
    try {
      expect(await pendingMigrations(s.db, s.schema)).toEqual([]);
      const applied = await s.db.withSchema(s.schema).selectFrom('kysely_migration' as never).select('name' as never).execute();
      expect(applied.map((r) => (r as { name: string }).name)).toEqual(Object.keys(MIGRATIONS));
    } finally {
      await s.close();
    }
  });
});
