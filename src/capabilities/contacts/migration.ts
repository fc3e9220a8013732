import { sql, type Kysely, type Migration } from 'kysely';

/** Tables of contact push, field mapping and sync status (issue 14 part A). Runs on PostgreSQL and PGlite. */
export const contactsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      create table contacts_fields (
        location_id text not null,
        logical text not null,
        data_type text not null,
        field_key text,
        field_name text,
        options jsonb,
        ghl_field_id text,
        ghl_field_key text,
        ghl_name text,
        ghl_data_type text,
        ghl_options jsonb,
        pinned boolean not null default false,
        refreshed_at timestamptz,
        updated_at timestamptz not null default now(),
        primary key (location_id, logical)
      )`.execute(db);
    await sql`
      create table contacts_locations (
        location_id text primary key,
        region text,
        ghl_country text,
        allow_duplicates boolean,
        create_missing boolean not null default false,
        mapping_refreshed_at timestamptz,
        mapping_error text,
        last_sync_at timestamptz,
        last_status text check (last_status in ('success', 'partial', 'failed')),
        last_error text,
        last_batch_id text,
        last_counts jsonb,
        totals jsonb not null default '{"created":0,"updated":0,"unchanged":0,"conflict":0,"failed":0}'::jsonb,
        updated_at timestamptz not null default now()
      )`.execute(db);
    await sql`
      create table contacts_map (
        location_id text not null,
        external_id text not null,
        contact_id text not null,
        fields_hash text,
        tags jsonb not null default '[]'::jsonb,
        email text,
        phone text,
        company_name text,
        updated_at timestamptz not null default now(),
        primary key (location_id, external_id)
      )`.execute(db);
    await sql`create unique index contacts_map_contact on contacts_map (location_id, contact_id)`.execute(db);
    await sql`create index contacts_map_email on contacts_map (location_id, email) where email is not null`.execute(db);
    await sql`create index contacts_map_phone on contacts_map (location_id, phone) where phone is not null`.execute(db);
    await sql`
      create table contacts_batches (
        id text primary key,
        location_id text not null,
        total integer not null,
        done integer not null default 0,
        created integer not null default 0,
        updated integer not null default 0,
        unchanged integer not null default 0,
        conflict integer not null default 0,
        failed integer not null default 0,
        created_at timestamptz not null default now(),
        completed_at timestamptz
      )`.execute(db);
    await sql`create index contacts_batches_location on contacts_batches (location_id, created_at)`.execute(db);
    await sql`
      create table contacts_batch_records (
        batch_id text not null references contacts_batches (id) on delete cascade,
        idx integer not null,
        location_id text not null,
        external_id text not null,
        record jsonb,
        outcome text check (outcome in ('created', 'updated', 'unchanged', 'conflict', 'failed')),
        contact_id text,
        reason text,
        done_at timestamptz,
        primary key (batch_id, idx)
      )`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    for (const t of [
      'contacts_batch_records',
      'contacts_batches',
      'contacts_map',
      'contacts_locations',
      'contacts_fields',
    ])
      await sql`drop table if exists ${sql.id(t)}`.execute(db);
  },
};
