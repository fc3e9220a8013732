import { sql, type Kysely, type Migration } from 'kysely';

/** Tables of workflow triggers and pipeline bridging (issue 16). Runs on PostgreSQL and PGlite. */
export const pipelinesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // The GHL workflow "inbound webhook" URL per location + trigger name (AES-GCM ciphertext: the URL is the capability).
    await sql`
      create table trigger_configs (
        location_id text not null,
        name text not null,
        url_enc text not null,
        url_masked text not null,
        key_id text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        primary key (location_id, name)
      )`.execute(db);

    // One row per accepted trigger call: the durable payload and its forwarding state.
    await sql`
      create table trigger_requests (
        id bigserial primary key,
        location_id text not null,
        name text not null,
        idempotency_key text not null,
        body_hash text not null,
        payload jsonb not null,
        state text not null default 'pending' check (state in ('pending', 'delivered', 'dead')),
        attempts integer not null default 0,
        last_status integer,
        last_error text,
        received_at timestamptz not null default now(),
        delivered_at timestamptz,
        updated_at timestamptz not null default now(),
        unique (location_id, name, idempotency_key)
      )`.execute(db);

    // Pipelines and stages of a location as GHL last answered them.
    await sql`
      create table pipeline_cache (
        location_id text primary key,
        pipelines jsonb not null,
        fetched_at timestamptz not null default now()
      )`.execute(db);

    // External deal id ↔ GHL opportunity, with the values GHL last reported (API answers and webhooks).
    await sql`
      create table opportunity_map (
        location_id text not null,
        external_id text not null,
        opportunity_id text not null,
        contact_id text,
        name text,
        pipeline_id text,
        pipeline_stage_id text,
        status text,
        monetary_value double precision,
        assigned_to text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        primary key (location_id, external_id)
      )`.execute(db);
    await sql`create unique index opportunity_map_ghl on opportunity_map (location_id, opportunity_id)`.execute(db);

    // Accepted opportunity changes (upsert, status), worked by jobs; result readable by id.
    await sql`
      create table opportunity_ops (
        id bigserial primary key,
        location_id text not null,
        external_id text not null,
        kind text not null check (kind in ('upsert', 'status')),
        request jsonb not null,
        state text not null default 'pending' check (state in ('pending', 'done', 'failed')),
        create_started_at timestamptz,
        opportunity_id text,
        error text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);
    await sql`create index opportunity_ops_external on opportunity_ops (location_id, external_id, id)`.execute(db);
  },
};
