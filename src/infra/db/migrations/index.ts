import { Migrator, sql, type Migration, type MigrationResultSet } from 'kysely';
import type { Db } from '../index.js';

/**
 * Migrations by name; Kysely applies them in name order. The db layer knows no feature: each
 * `BridgeModule` declares the migrations of its own tables and `createBridge` (or `ghl-bridge
 * migrate`) passes the union of its modules' lists here (see `bridgeMigrations` in src/app.ts).
 * Names are recorded in `kysely_migration`; never rename or edit an applied migration: add one.
 */
export type Migrations = Record<string, Migration>;

export class MigrationError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
  ) {
    super(message);
    this.name = 'MigrationError';
  }
}

/** Joins migration lists, refusing two migrations with one name (two modules would fight over it). */
export function mergeMigrations(...lists: Array<{ owner: string; migrations: Migrations | undefined }>): Migrations {
  const out: Migrations = {};
  const ownerOf = new Map<string, string>();
  for (const { owner, migrations } of lists) {
    for (const [name, m] of Object.entries(migrations ?? {})) {
      const prev = ownerOf.get(name);
      if (prev) throw new MigrationError(`migration ${name} is declared by both ${prev} and ${owner}`, undefined);
      ownerOf.set(name, owner);
      out[name] = m;
    }
  }
  return out;
}

/** Names already applied in this schema ([] before the first migration). */
async function executedNames(db: Db, schema: string): Promise<string[]> {
  const exists = await sql<{ t: string | null }>`select to_regclass(${`"${schema}".kysely_migration`}) as t`.execute(
    db,
  );
  if (!exists.rows[0]?.t) return [];
  const rows = await sql<{ name: string }>`select name from ${sql.table(`${schema}.kysely_migration`)}`.execute(db);
  return rows.rows.map((r) => r.name);
}

/**
 * A bridge may run a subset of the modules (an HTTP-only replica, a test, a module added later):
 * migrations other modules applied are left alone (known to Kysely as no-ops, so it does not call
 * the history corrupt), and a module's migration named before ones already applied still runs.
 */
async function migrator(db: Db, schema: string, migrations: Migrations): Promise<Migrator> {
  const known: Migrations = { ...migrations };
  for (const name of await executedNames(db, schema)) known[name] ??= { up: async () => {} };
  return new Migrator({
    db,
    provider: { getMigrations: async () => known },
    migrationTableSchema: schema,
    allowUnorderedMigrations: true,
  });
}

/**
 * Applies pending migrations. Kysely's Postgres adapter takes a transaction-scoped advisory
 * lock around the run, so replicas starting together apply each migration exactly once;
 * on PGlite the single connection serialises them anyway.
 */
export async function migrateToLatest(db: Db, schema: string, migrations: Migrations): Promise<string[]> {
  const { error, results }: MigrationResultSet = await (await migrator(db, schema, migrations)).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new MigrationError(
      `migration ${failed ?? '(unknown)'} failed: ${(error as Error).message ?? String(error)}`,
      error,
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Names of the given migrations not yet applied (for /readyz and `ghl-bridge doctor`). */
export async function pendingMigrations(db: Db, schema: string, migrations: Migrations): Promise<string[]> {
  const done = new Set(await executedNames(db, schema));
  return Object.keys(migrations)
    .sort()
    .filter((name) => !done.has(name));
}
