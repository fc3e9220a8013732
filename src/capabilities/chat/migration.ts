import { sql, type Kysely, type Migration } from 'kysely';

/** Tables of the two-way chat sync (issue 13). Runs on PostgreSQL and PGlite. */
export const chatMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      create table chat_clients (
        location_id text not null,
        client_id text not null,
        contact_id text,
        ghl_conversation_id text,
        name text,
        email text,
        phone text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        primary key (location_id, client_id)
      )`.execute(db);
    await sql`create index chat_clients_contact on chat_clients (location_id, contact_id)`.execute(db);
    await sql`
      create table chat_conversations (
        location_id text not null,
        conversation_id text not null,
        client_id text not null,
        ghl_conversation_id text,
        last_activity_at timestamptz not null default now(),
        created_at timestamptz not null default now(),
        primary key (location_id, conversation_id)
      )`.execute(db);
    await sql`create index chat_conversations_client on chat_conversations (location_id, client_id, last_activity_at)`.execute(
      db,
    );
    await sql`create index chat_conversations_active on chat_conversations (last_activity_at)`.execute(db);
    await sql`
      create table chat_messages (
        location_id text not null,
        message_id text not null,
        conversation_id text not null,
        client_id text not null,
        direction text not null check (direction in ('inbound', 'outbound')),
        body jsonb not null,
        sent_at timestamptz not null,
        history boolean not null default false,
        state text not null default 'pending' check (state in ('pending', 'posted', 'failed')),
        ghl_message_id text,
        attempts integer not null default 0,
        status_target text check (status_target in ('pending', 'delivered', 'read', 'failed')),
        ghl_status text check (ghl_status in ('pending', 'delivered', 'read', 'failed')),
        last_error text,
        received_at timestamptz not null default now(),
        posted_at timestamptz,
        primary key (location_id, message_id)
      )`.execute(db);
    await sql`create unique index chat_messages_ghl on chat_messages (ghl_message_id)`.execute(db);
    await sql`
      create table chat_fields (
        location_id text primary key,
        field_name text not null,
        field_id text not null,
        created_at timestamptz not null default now()
      )`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    for (const t of ['chat_fields', 'chat_messages', 'chat_conversations', 'chat_clients'])
      await sql`drop table if exists ${sql.id(t)}`.execute(db);
  },
};

/** GHL replies handed to the chat product (issue 13: replies from other channels, one record per GHL message id). */
export const chatRepliesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      create table chat_replies (
        ghl_message_id text primary key,
        location_id text not null,
        contact_id text not null,
        client_id text not null,
        conversation_id text not null,
        via text not null check (via in ('provider', 'other_channel')),
        ghl_channel text not null,
        payload jsonb not null,
        state text not null default 'pending' check (state in ('pending', 'sent', 'failed')),
        attempts integer not null default 0,
        channel_message_id text,
        last_error text,
        received_at timestamptz not null default now(),
        sent_at timestamptz
      )`.execute(db);
    await sql`create index chat_replies_client on chat_replies (location_id, client_id)`.execute(db);
    await sql`create index chat_replies_received on chat_replies (received_at)`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table if exists chat_replies`.execute(db);
  },
};
