import { sql, type Kysely, type Migration } from 'kysely';

export const installationsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // One row per GHL resource the app acts for: id = the resource key of src/platform/keys.ts (= job scope).
    await sql`
      create table ghl_installations (
        id text primary key,
        kind text not null check (kind in ('location', 'company')),
        company_id text not null,
        location_id text,
        user_type text not null check (user_type in ('Location', 'Company')),
        token_source text not null check (token_source in ('oauth', 'company', 'pit')),
        scopes text not null default '',
        user_id text,
        plan_id text,
        is_bulk boolean not null default false,
        install_to_future boolean not null default false,
        status text not null default 'active' check (status in ('active', 'reauth_required', 'uninstalled')),
        status_reason text,
        access_token_enc text,
        refresh_token_enc text,
        key_id text,
        expires_at timestamptz,
        refreshed_at timestamptz,
        refresh_count integer not null default 0,
        installed_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        uninstalled_at timestamptz
      )`.execute(db);
    await sql`create index ghl_installations_company on ghl_installations (company_id, kind)`.execute(db);
    await sql`create index ghl_installations_expiry on ghl_installations (expires_at) where status = 'active'`.execute(
      db,
    );

    // OAuth `state` values handed out by GET /oauth/install: single use, short-lived.
    await sql`
      create table ghl_oauth_states (
        state text primary key,
        expires_at timestamptz not null,
        used_at timestamptz,
        created_at timestamptz not null default now()
      )`.execute(db);

    // Shared rate-limit state per (app client, location/company): see src/platform/ghl/ratelimit.ts.
    await sql`
      create table ghl_rate_buckets (
        client_id text not null,
        resource_id text not null,
        slots jsonb not null,
        cap integer not null,
        day integer not null default 0,
        daily_used integer not null default 0,
        daily_limit integer not null,
        bulk_next_at double precision not null default 0,
        version bigint not null default 0,
        updated_at timestamptz not null default now(),
        primary key (client_id, resource_id)
      )`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table ghl_rate_buckets`.execute(db);
    await sql`drop table ghl_oauth_states`.execute(db);
    await sql`drop table ghl_installations`.execute(db);
  },
};
