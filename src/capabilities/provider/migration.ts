import { sql, type Kysely, type Migration } from 'kysely';

/** Tables of the conversation-provider orchestration (issue 6). Runs on PostgreSQL and PGlite. */
export const providerMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // One channel per GHL location. Secret fields of `config` are AES-GCM ciphertexts (key id inside each value, and key_id).
    await sql`
      create table provider_channels (
        location_id text primary key,
        kind text not null check (kind in ('http', 'cast', 'loopback')),
        config jsonb not null,
        key_id text,
        default_region text not null default 'US',
        conversation_provider_id text,
        email_inbound_type text not null default 'Email' check (email_inbound_type in ('Email', 'Custom')),
        enabled boolean not null default true,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);

    // One row per GHL ProviderOutboundMessage (messageId): the durable send state machine.
    await sql`
      create table provider_outbound (
        message_id text primary key,
        location_id text not null,
        contact_id text not null,
        channel text not null,
        payload jsonb not null,
        state text not null default 'received' check (state in ('received', 'sending', 'sent', 'status_pending', 'done', 'failed')),
        channel_kind text,
        channel_message_id text,
        status_target text check (status_target in ('pending', 'delivered', 'read', 'failed')),
        ghl_status text check (ghl_status in ('pending', 'delivered', 'read', 'failed')),
        error jsonb,
        attempts integer not null default 0,
        status_attempts integer not null default 0,
        polls integer not null default 0,
        last_error text,
        received_at timestamptz not null default now(),
        send_started_at timestamptz,
        sent_at timestamptz,
        target_at timestamptz,
        reported_at timestamptz,
        updated_at timestamptz not null default now()
      )`.execute(db);
    await sql`create index provider_outbound_channel_id on provider_outbound (location_id, channel_message_id) where channel_message_id is not null`.execute(
      db,
    );
    await sql`create index provider_outbound_open on provider_outbound (state, updated_at) where state not in ('done', 'failed')`.execute(
      db,
    );

    // Inbound messages, deduped on the channel's own id per location.
    await sql`
      create table provider_inbound (
        id bigserial primary key,
        location_id text not null,
        channel_message_id text not null,
        address text not null,
        message jsonb not null,
        state text not null default 'received' check (state in ('received', 'done', 'failed')),
        contact_id text,
        conversation_id text,
        ghl_message_id text,
        attempts integer not null default 0,
        last_error text,
        received_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (location_id, channel_message_id)
      )`.execute(db);

    // Sender address (E.164 phone, lower-case e-mail or "contact:<id>") → GHL contact and conversation.
    await sql`
      create table provider_contacts (
        location_id text not null,
        address text not null,
        contact_id text not null,
        conversation_id text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        primary key (location_id, address)
      )`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    for (const t of ['provider_contacts', 'provider_inbound', 'provider_outbound', 'provider_channels'])
      await sql`drop table if exists ${sql.table(t)}`.execute(db);
  },
};

/**
 * Unsigned deliveries (issue 10): the Delivery-URL tokens, the signed OutboundMessage events that confirm a delivery,
 * and two more outbound states: `awaiting_confirmation` (stored, never sent before it is confirmed) and `rejected`.
 */
export const providerConfirmationMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // Generation 1 is created at first start; each rotation adds the next. Accepted: not retired and retire_at ahead.
    await sql`
      create table provider_delivery_tokens (
        generation integer primary key,
        token_enc text not null,
        key_id text not null,
        created_at timestamptz not null default now(),
        retire_at timestamptz,
        retired_at timestamptz
      )`.execute(db);
    // What the signed OutboundMessage app event said about a message (it may come before or after the delivery).
    await sql`
      create table provider_confirmations (
        message_id text primary key,
        location_id text not null,
        contact_id text,
        event_id bigint,
        message_type text,
        direction text,
        received_at timestamptz not null default now()
      )`.execute(db);
    await sql`create index provider_confirmations_received on provider_confirmations (received_at)`.execute(db);
    await sql`alter table provider_outbound drop constraint provider_outbound_state_check`.execute(db);
    await sql`alter table provider_outbound add constraint provider_outbound_state_check
      check (state in ('awaiting_confirmation', 'rejected', 'received', 'sending', 'sent', 'status_pending', 'done', 'failed'))`.execute(
      db,
    );
    // How the delivery was authenticated: signature | event | lookup | unconfirmed (PROVIDER_CONFIRMATION=none).
    await sql`alter table provider_outbound add column confirmed_by text`.execute(db);
    await sql`alter table provider_outbound add column rejected_reason text`.execute(db);
    await sql`alter table provider_outbound add column confirm_lookups integer not null default 0`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`delete from provider_outbound where state in ('awaiting_confirmation', 'rejected')`.execute(db);
    await sql`alter table provider_outbound drop constraint provider_outbound_state_check`.execute(db);
    await sql`alter table provider_outbound add constraint provider_outbound_state_check check (state in ('received', 'sending', 'sent', 'status_pending', 'done', 'failed'))`.execute(
      db,
    );
    for (const c of ['confirmed_by', 'rejected_reason', 'confirm_lookups'])
      await sql`alter table provider_outbound drop column ${sql.ref(c)}`.execute(db);
    await sql`drop table provider_confirmations`.execute(db);
    await sql`drop table provider_delivery_tokens`.execute(db);
  },
};

/** Each channel send attempt of an outbound message (time, outcome, the channel's code), for the console's trace. */
export const providerSendLogMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // A constant default: PostgreSQL adds the column without rewriting the table.
    await sql`alter table provider_outbound add column send_log jsonb not null default '[]'::jsonb`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`alter table provider_outbound drop column send_log`.execute(db);
  },
};
