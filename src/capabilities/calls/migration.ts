import { sql, type Kysely, type Migration } from 'kysely';

/** Tables of calls (issue 15). Runs on PostgreSQL and PGlite. */
export const callsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // One workflow-webhook endpoint per location: its URL token (SHA-256 for look-up, AES-GCM ciphertext to show it
    // again), the previous token during a rotation, the integration type and the field mapping (null = default).
    await sql`
      create table calls_endpoints (
        location_id text primary key,
        token_hash text not null unique,
        token_enc text not null,
        key_id text not null,
        previous_hash text unique,
        previous_until timestamptz,
        integration_type text not null default 'client' check (integration_type in ('internal', 'client')),
        mapping jsonb,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);

    // Every workflow payload and call app event as received, before anything else happens to it.
    await sql`
      create table calls_inbox (
        id bigserial primary key,
        location_id text not null,
        source text not null check (source in ('workflow', 'app')),
        dedupe_key text unique,
        payload jsonb not null,
        mapped jsonb,
        state text not null default 'received' check (state in ('received', 'done', 'unmappable', 'forged', 'failed')),
        reason text,
        call_id bigint,
        received_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);
    await sql`create index calls_inbox_state on calls_inbox (location_id, state, id)`.execute(db);

    // One record per call: GHL's call message id is the key once known.
    await sql`
      create table calls (
        id bigserial primary key,
        location_id text not null,
        contact_id text not null,
        message_id text,
        conversation_id text,
        integration_type text not null,
        direction text,
        from_number text,
        to_number text,
        status text,
        disposition text,
        duration_sec integer,
        user_id text,
        started_at timestamptz,
        ended_at timestamptz,
        sources jsonb not null default '[]',
        transcript_state text not null default 'pending' check (transcript_state in ('pending', 'ready', 'unavailable', 'not_expected')),
        transcript jsonb,
        transcript_text text,
        transcript_reason text,
        transcript_attempts integer not null default 0,
        completed_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);
    await sql`create unique index calls_message on calls (location_id, message_id) where message_id is not null`.execute(
      db,
    );
    await sql`create index calls_contact on calls (location_id, contact_id, id)`.execute(db);

    // Events the bridge emits (call.completed, call.disposition), readable through the API; once each (dedupe_key).
    await sql`
      create table calls_events (
        id bigserial primary key,
        location_id text not null,
        call_id bigint not null,
        type text not null,
        integration_type text not null,
        payload jsonb not null,
        dedupe_key text not null unique,
        created_at timestamptz not null default now()
      )`.execute(db);
    await sql`create index calls_events_location on calls_events (location_id, id)`.execute(db);

    // Call logs posted by an external telephony system (Call provider), idempotent on its call id.
    await sql`
      create table calls_provider_logs (
        id bigserial primary key,
        location_id text not null,
        external_id text not null,
        request jsonb not null,
        state text not null default 'received' check (state in ('received', 'posted', 'failed')),
        contact_id text,
        conversation_id text,
        ghl_message_id text,
        attempts integer not null default 0,
        last_error text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (location_id, external_id)
      )`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    for (const t of ['calls_provider_logs', 'calls_events', 'calls', 'calls_inbox', 'calls_endpoints'])
      await sql`drop table ${sql.id(t)}`.execute(db);
  },
};
