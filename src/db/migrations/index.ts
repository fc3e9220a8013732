import { Migrator, type Migration, type MigrationResultSet } from 'kysely';
import type { Db } from '../index.js';
import { queueMigration } from '../../queue/migration.js';
import { installationsMigration } from '../../installations/migration.js';
import { webhooksMigration } from '../../webhooks/migration.js';
import { providerConfirmationMigration, providerMigration } from '../../provider/migration.js';

/**
 * Ordered, append-only list of migrations. Each module owns the SQL for its tables
 * (next to its code) and is registered here once; names sort in apply order.
 * Never edit an applied migration: add a new one.
 */
export const MIGRATIONS: Record<string, Migration> = {
  '0001_queue': queueMigration,
  '0002_installations': installationsMigration,
  '0003_webhooks': webhooksMigration,
  '0004_provider': providerMigration,
  '0005_provider_confirmation': providerConfirmationMigration,
};

export class MigrationError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
  ) {
    super(message);
    this.name = 'MigrationError';
  }
}

function migrator(db: Db, schema: string): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => MIGRATIONS },
    migrationTableSchema: schema,
  });
}

/**
 * Applies pending migrations. Kysely's Postgres adapter takes a transaction-scoped advisory
 * lock around the run, so replicas starting together apply each migration exactly once;
 * on PGlite the single connection serialises them anyway.
 */
export async function migrateToLatest(db: Db, schema: string): Promise<string[]> {
  const { error, results }: MigrationResultSet = await migrator(db, schema).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new MigrationError(`migration ${failed ?? '(unknown)'} failed: ${(error as Error).message ?? String(error)}`, error);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Names of migrations not yet applied (for /readyz and `ghl-bridge doctor`). */
export async function pendingMigrations(db: Db, schema: string): Promise<string[]> {
  const list = await migrator(db, schema).getMigrations();
  return list.filter((m) => !m.executedAt).map((m) => m.name);
}
