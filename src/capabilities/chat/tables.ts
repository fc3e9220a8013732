import type { ColumnType, Generated } from 'kysely';

type Json<T> = ColumnType<T, string, string>;
export type ChatDirection = 'inbound' | 'outbound';
export type ChatMessageState = 'pending' | 'posted' | 'failed';
export type ChatStatus = 'pending' | 'delivered' | 'read' | 'failed';

/** External client id → GHL contact, per location (the identity map; rebuilt from the contact custom field). */
export interface ChatClientsTable {
  location_id: string;
  client_id: string;
  contact_id: string | null;
  /** The contact's one GHL conversation. */
  ghl_conversation_id: string | null;
  name: string | null;
  email: string | null;
  phone: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** External conversation (thread) id → client and GHL conversation. */
export interface ChatConversationsTable {
  location_id: string;
  conversation_id: string;
  client_id: string;
  ghl_conversation_id: string | null;
  /** Last message either way (the reconcile reads conversations active within the look-back). */
  last_activity_at: Generated<Date>;
  created_at: Generated<Date>;
}

/** One message pushed by the chat product (keyed by its own id), and the GHL message it became. */
export interface ChatMessagesTable {
  location_id: string;
  message_id: string;
  conversation_id: string;
  client_id: string;
  direction: ChatDirection;
  body: Json<{ text?: string; attachments: string[]; author?: { id?: string; name?: string } }>;
  sent_at: Date;
  history: boolean;
  state: Generated<ChatMessageState>;
  ghl_message_id: string | null;
  attempts: Generated<number>;
  /** The status the chat product reported (forward-only) and the one GHL accepted. */
  status_target: ChatStatus | null;
  ghl_status: ChatStatus | null;
  last_error: string | null;
  received_at: Generated<Date>;
  posted_at: Date | null;
}

/** The per-location contact custom field holding the client id. */
export interface ChatFieldsTable {
  location_id: string;
  field_name: string;
  field_id: string;
  created_at: Generated<Date>;
}

export type ChatReplyState = 'pending' | 'sent' | 'failed';
/** How a GHL reply reached the chat product: the bridge's conversation provider, or another GHL channel. */
export type ChatReplyVia = 'provider' | 'other_channel';

/**
 * A GHL user's reply handed to the chat product, keyed by its GHL message id (migration 0011_chat_replies): the
 * record that makes a reply forwarded once, whichever way GHL announced it (ProviderOutboundMessage through the
 * provider, or the app-level OutboundMessage event for other channels), and that the reconcile checks.
 */
export interface ChatRepliesTable {
  ghl_message_id: string;
  location_id: string;
  contact_id: string;
  client_id: string;
  /** The external thread the reply was addressed to. */
  conversation_id: string;
  via: ChatReplyVia;
  /** GHL's channel name from the event (`SMS`, `Email`, `Live Chat`, `WhatsApp` …). */
  ghl_channel: string;
  /** other_channel: the message to hand to the channel (OutboundMessage). provider: '{}' (the provider keeps it). */
  payload: Json<Record<string, unknown>>;
  /** provider replies are 'sent' at once (the provider module tracks their delivery). */
  state: Generated<ChatReplyState>;
  attempts: Generated<number>;
  channel_message_id: string | null;
  last_error: string | null;
  received_at: Generated<Date>;
  sent_at: Date | null;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    chat_clients: ChatClientsTable;
    chat_conversations: ChatConversationsTable;
    chat_messages: ChatMessagesTable;
    chat_fields: ChatFieldsTable;
    chat_replies: ChatRepliesTable;
  }
}
