import { sql, type Kysely, type Migration } from 'kysely';

/** API keys of the public /v1 API (hashed; scoped to locations). Runs on PostgreSQL and PGlite. */
export const apiKeysMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      create table api_keys (
        id text primary key,
        name text not null,
        prefix text not null,
        key_hash text not null unique,
        location_ids jsonb not null,
        created_at timestamptz not null default now(),
        last_used_at timestamptz,
        revoked_at timestamptz
      )`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table api_keys`.execute(db);
  },
};
