import { sql, type Kysely, type Migration } from 'kysely';

export const eventsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      create table event_log (
        id text primary key,
        seq bigserial not null,
        source text not null check (source in ('ghl', 'bridge')),
        type text not null,
        version integer not null default 1,
        location_id text,
        contact_id text,
        webhook_event_id bigint unique,
        received_at timestamptz not null,
        data json not null
      )`.execute(db);
    await sql`create index event_log_received on event_log (received_at)`.execute(db);
    await sql`
      create table event_subscriptions (
        id text primary key,
        url text not null,
        description text,
        secret_enc text not null,
        previous_secret_enc text,
        previous_secret_until timestamptz,
        event_types json not null,
        location_ids json,
        ordering text not null default 'none' check (ordering in ('none', 'location', 'contact')),
        state text not null default 'enabled' check (state in ('enabled', 'disabled')),
        disabled_reason text,
        disabled_by text,
        disabled_at timestamptz,
        failing_since timestamptz,
        consecutive_failures integer not null default 0,
        circuit_open_until timestamptz,
        created_at timestamptz not null,
        updated_at timestamptz not null
      )`.execute(db);
    await sql`
      create table event_deliveries (
        id bigserial primary key,
        event_id text not null references event_log (id) on delete cascade,
        subscription_id text not null references event_subscriptions (id) on delete cascade,
        order_key text,
        status text not null check (status in ('pending', 'delivered', 'dead')),
        attempts integer not null default 0,
        next_at timestamptz not null,
        leased_until timestamptz,
        last_status integer,
        last_error text,
        dead_reason text,
        replays integer not null default 0,
        created_at timestamptz not null,
        finished_at timestamptz
      )`.execute(db);
    await sql`create unique index event_deliveries_once on event_deliveries (subscription_id, event_id)`.execute(db);
    await sql`create index event_deliveries_due on event_deliveries (subscription_id, next_at) where status = 'pending'`.execute(
      db,
    );
    await sql`create index event_deliveries_order on event_deliveries (subscription_id, order_key, id) where status = 'pending' and order_key is not null`.execute(
      db,
    );
    await sql`create index event_deliveries_event on event_deliveries (event_id)`.execute(db);
    await sql`
      create table event_delivery_attempts (
        id bigserial primary key,
        delivery_id bigint not null references event_deliveries (id) on delete cascade,
        subscription_id text not null,
        event_id text not null,
        attempt integer not null,
        at timestamptz not null,
        status_code integer,
        latency_ms integer not null,
        response_head text,
        error text
      )`.execute(db);
    await sql`create index event_delivery_attempts_delivery on event_delivery_attempts (delivery_id)`.execute(db);
    await sql`create index event_delivery_attempts_sub on event_delivery_attempts (subscription_id, id)`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table event_delivery_attempts`.execute(db);
    await sql`drop table event_deliveries`.execute(db);
    await sql`drop table event_subscriptions`.execute(db);
    await sql`drop table event_log`.execute(db);
  },
};
