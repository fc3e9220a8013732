import type { ColumnType, Generated } from 'kysely';
import type { ChannelError, InboundMessage } from '../channels/index.js';

export type OutboundState =
  'awaiting_confirmation' | 'rejected' | 'received' | 'sending' | 'sent' | 'status_pending' | 'done' | 'failed';
export type GhlStatus = 'pending' | 'delivered' | 'read' | 'failed';
type Json<T> = ColumnType<T, string, string>;

export interface ProviderChannelsTable {
  location_id: string;
  kind: 'http' | 'cast' | 'loopback';
  /** Channel config; secret fields hold "v1.<keyId>.…" ciphertexts. */
  config: Json<Record<string, unknown>>;
  key_id: string | null;
  default_region: Generated<string>;
  conversation_provider_id: string | null;
  email_inbound_type: Generated<'Email' | 'Custom'>;
  enabled: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ProviderOutboundTable {
  message_id: string;
  location_id: string;
  contact_id: string;
  channel: string;
  payload: Json<Record<string, unknown>>;
  state: Generated<OutboundState>;
  channel_kind: string | null;
  channel_message_id: string | null;
  /** The status GHL should show (forward-only merge of send result and receipts). */
  status_target: GhlStatus | null;
  /** The last status GHL accepted from us. */
  ghl_status: GhlStatus | null;
  error: Json<ChannelError | null> | null;
  attempts: Generated<number>;
  status_attempts: Generated<number>;
  polls: Generated<number>;
  last_error: string | null;
  received_at: Generated<Date>;
  send_started_at: Date | null;
  sent_at: Date | null;
  /** When status_target last changed (relay latency: channel result/receipt → GHL status call). */
  target_at: Date | null;
  reported_at: Date | null;
  updated_at: Generated<Date>;
  /** signature | event | lookup | unconfirmed; null while awaiting confirmation. */
  confirmed_by: string | null;
  rejected_reason: string | null;
  confirm_lookups: Generated<number>;
  /** One entry per channel send attempt, appended in the statement that records the attempt. */
  send_log: ColumnType<SendLogEntry[], string | undefined, string>;
}

/** A channel send attempt as the trace shows it. */
export interface SendLogEntry {
  attempt: number;
  /** ms since the epoch */
  at: number;
  outcome: 'retry' | 'accepted' | 'delivered' | 'failed';
  code: string | null;
  error: string | null;
}

export interface ProviderDeliveryTokensTable {
  generation: number;
  token_enc: string;
  key_id: string;
  created_at: Generated<Date>;
  retire_at: Date | null;
  retired_at: Date | null;
}

export interface ProviderConfirmationsTable {
  message_id: string;
  location_id: string;
  contact_id: string | null;
  event_id: number | null;
  message_type: string | null;
  direction: string | null;
  received_at: Generated<Date>;
}

export interface ProviderInboundTable {
  id: Generated<number>;
  location_id: string;
  channel_message_id: string;
  address: string;
  /** The channel's parsed message, as storeInbound wrote it. */
  message: Json<InboundMessage>;
  state: Generated<'received' | 'done' | 'failed'>;
  contact_id: string | null;
  conversation_id: string | null;
  ghl_message_id: string | null;
  attempts: Generated<number>;
  last_error: string | null;
  received_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ProviderContactsTable {
  location_id: string;
  address: string;
  contact_id: string;
  conversation_id: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    provider_channels: ProviderChannelsTable;
    provider_outbound: ProviderOutboundTable;
    provider_inbound: ProviderInboundTable;
    provider_contacts: ProviderContactsTable;
    provider_delivery_tokens: ProviderDeliveryTokensTable;
    provider_confirmations: ProviderConfirmationsTable;
  }
}
