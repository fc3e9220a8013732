import { sql, type Kysely, type Migration } from 'kysely';

export const webhooksMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      create table webhook_events (
        id bigserial primary key,
        source text not null check (source in ('app', 'provider')),
        dedupe_key text not null,
        type text,
        location_id text,
        company_id text,
        webhook_id text,
        ordering_key text,
        event_at timestamptz,
        received_at timestamptz not null default now(),
        -- json, not jsonb: kept as received (evidence), cheaper to write, and accepts NUL characters.
        payload json,
        raw bytea,
        signature text not null,
        status text not null check (status in ('received', 'dispatched', 'skipped', 'dead', 'unknown_type')),
        reason text,
        attempts integer not null default 0,
        processed_at timestamptz,
        updated_at timestamptz not null default now()
      )`.execute(db);
    // Dedup is enforced here (insert … on conflict do nothing), never by check-then-insert.
    await sql`create unique index webhook_events_dedupe on webhook_events (source, dedupe_key)`.execute(db);
    // Few indexes on purpose: every one is paid on the intake's write path.
    await sql`create index webhook_events_received on webhook_events (received_at)`.execute(db);
    await sql`create index webhook_events_open on webhook_events (status, id) where status in ('received', 'dead')`.execute(
      db,
    );
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table webhook_events`.execute(db);
  },
};
