import { afterEach, describe, expect, it } from 'vitest';
import { bridgeMigrations, CORE_MIGRATIONS } from '../../src/app.js';
import { migrateToLatest, pendingMigrations } from '../../src/infra/db/migrations/index.js';
import { installationsModule } from '../../src/platform/installations/index.js';
import { allMigrations } from '../../src/modules.js';
import { providerModule } from '../../src/capabilities/provider/index.js';
import { webhooksModule } from '../../src/platform/webhooks/index.js';
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
      expect(await pendingMigrations(s.db, s.schema, await allMigrations())).toEqual([]);
      const applied = await s.db
        .withSchema(s.schema)
        .selectFrom('kysely_migration' as never)
        .select('name' as never)
        .execute();
      // The names databases already carry: renaming one would make Kysely run it again.
      expect(applied.map((r) => (r as { name: string }).name).sort()).toEqual([
        '0001_queue',
        '0002_installations',
        '0003_webhooks',
        '0004_provider',
        '0005_provider_confirmation',
        '0006_provider_catchup',
        '0007_apikeys',
        '0008_provider_send_log',
        '0010_chat',
        '0011_chat_replies',
        '0020_events',
        '0030_pipelines',
        '0040_console',
        '0050_calls',
        '0060_contacts',
        '0065_imports',
      ]);
    } finally {
      await s.close();
    }
  });

  it('applies the migrations of the modules given, leaves others alone and adds a module later', async () => {
    const s = await openTestStore({ migrate: false });
    try {
      const withWebhooks = bridgeMigrations([webhooksModule()]);
      expect(Object.keys(withWebhooks)).toEqual(['0001_queue', '0003_webhooks']);
      expect(await migrateToLatest(s.db, s.schema, withWebhooks)).toEqual(['0001_queue', '0003_webhooks']);
      // A module added later whose migration sorts before one already applied still gets it.
      const all = await allMigrations();
      expect(await pendingMigrations(s.db, s.schema, all)).toEqual([
        '0002_installations',
        '0004_provider',
        '0005_provider_confirmation',
        '0006_provider_catchup',
        '0007_apikeys',
        '0008_provider_send_log',
        '0010_chat',
        '0011_chat_replies',
        '0020_events',
        '0030_pipelines',
        '0040_console',
        '0050_calls',
        '0060_contacts',
        '0065_imports',
      ]);
      expect(
        await migrateToLatest(s.db, s.schema, bridgeMigrations([webhooksModule(), installationsModule()])),
      ).toEqual(['0002_installations']);
      // A bridge running fewer modules than the database has seen starts (nothing to apply, nothing undone).
      expect(await migrateToLatest(s.db, s.schema, CORE_MIGRATIONS)).toEqual([]);
      expect(await migrateToLatest(s.db, s.schema, all)).toEqual([
        '0004_provider',
        '0005_provider_confirmation',
        '0006_provider_catchup',
        '0007_apikeys',
        '0008_provider_send_log',
        '0010_chat',
        '0011_chat_replies',
        '0020_events',
        '0030_pipelines',
        '0040_console',
        '0050_calls',
        '0060_contacts',
        '0065_imports',
      ]);
      expect(await pendingMigrations(s.db, s.schema, all)).toEqual([]);
      expect(
        await s.db
          .selectFrom('provider_channels' as never)
          .select('location_id' as never)
          .execute(),
      ).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('refuses two modules declaring one migration name', () => {
    const twin = { ...providerModule(), name: 'twin', migrations: { '0003_webhooks': CORE_MIGRATIONS['0001_queue']! } };
    expect(() => bridgeMigrations([webhooksModule(), twin])).toThrow(
      'migration 0003_webhooks is declared by both webhooks and twin',
    );
  });
});
