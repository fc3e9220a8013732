import { sql, type Kysely, type Migration } from 'kysely';

/** Tables of the contact import (issue 14 B: GHL → staging, duplicates, review). Runs on PostgreSQL and PGlite. */
export const importsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      create table contact_imports (
        id text primary key,
        location_id text not null,
        status text not null check (status in ('running', 'deduplicating', 'enriching', 'completed', 'failed', 'cancelled')),
        enrich_calls boolean not null default false,
        rows_enriched integer not null default 0,
        page_size integer not null,
        cursor jsonb,
        pages_done integer not null default 0,
        rows_done integer not null default 0,
        total integer,
        duplicate_groups integer not null default 0,
        walked boolean not null default false,
        walked_at timestamptz,
        error text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        run_started_at timestamptz not null default now(),
        run_rows_start integer not null default 0,
        finished_at timestamptz
      )`.execute(db);
    await sql`create index contact_imports_location on contact_imports (location_id, created_at)`.execute(db);
    // At most one unfinished import per location.
    await sql`create unique index contact_imports_active on contact_imports (location_id)
      where status in ('running', 'deduplicating', 'enriching')`.execute(db);
    await sql`
      create table contact_import_rows (
        import_id text not null references contact_imports (id) on delete cascade,
        contact_id text not null,
        page integer not null,
        original jsonb not null,
        logical jsonb not null,
        email_norm text,
        phone_e164 text,
        name_key text,
        company_key text,
        mapped_external_id text,
        calls jsonb,
        calls_checked boolean not null default false,
        decision text not null default 'pending' check (decision in ('pending', 'approved', 'rejected', 'merged')),
        merge_into text,
        decided_at timestamptz,
        primary key (import_id, contact_id)
      )`.execute(db);
    await sql`create index contact_import_rows_email on contact_import_rows (import_id, email_norm) where email_norm is not null`.execute(
      db,
    );
    await sql`create index contact_import_rows_phone on contact_import_rows (import_id, phone_e164) where phone_e164 is not null`.execute(
      db,
    );
    // Rows whose call history is still to be read (an import with enrichCalls).
    await sql`create index contact_import_rows_unenriched on contact_import_rows (import_id, contact_id) where not calls_checked`.execute(
      db,
    );
    await sql`create index contact_import_rows_decision on contact_import_rows (import_id, decision, contact_id)`.execute(
      db,
    );
    await sql`create index contact_import_rows_merge on contact_import_rows (import_id, merge_into) where merge_into is not null`.execute(
      db,
    );
    // Blocking keys of the name + company rule (one row per name token): duplicates are only compared within a block.
    await sql`
      create table contact_import_blocks (
        import_id text not null references contact_imports (id) on delete cascade,
        block text not null,
        contact_id text not null,
        primary key (import_id, block, contact_id)
      )`.execute(db);
    await sql`
      create table contact_import_groups (
        id serial primary key,
        import_id text not null references contact_imports (id) on delete cascade,
        rule text not null check (rule in ('email', 'phone', 'name_company')),
        match_key text not null,
        score double precision not null,
        size integer not null,
        unique (import_id, rule, match_key)
      )`.execute(db);
    await sql`
      create table contact_import_group_members (
        group_id integer not null references contact_import_groups (id) on delete cascade,
        import_id text not null,
        contact_id text not null,
        primary key (group_id, contact_id)
      )`.execute(db);
    await sql`create index contact_import_group_members_contact on contact_import_group_members (import_id, contact_id)`.execute(
      db,
    );
  },
  async down(db: Kysely<unknown>) {
    for (const t of [
      'contact_import_group_members',
      'contact_import_groups',
      'contact_import_blocks',
      'contact_import_rows',
      'contact_imports',
    ])
      await sql`drop table if exists ${sql.id(t)}`.execute(db);
  },
};
