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

declare module '../../infra/db/schema.js' {
  interface Database {
    chat_clients: ChatClientsTable;
    chat_conversations: ChatConversationsTable;
    chat_messages: ChatMessagesTable;
    chat_fields: ChatFieldsTable;
  }
}
