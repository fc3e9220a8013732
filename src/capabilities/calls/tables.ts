import type { ColumnType, Generated } from 'kysely';

type Json<T> = ColumnType<T, string, string>;
export type IntegrationType = 'internal' | 'client';
export type InboxState = 'received' | 'done' | 'unmappable' | 'forged' | 'failed';
export type TranscriptState = 'pending' | 'ready' | 'unavailable' | 'not_expected';

export interface TranscriptSentence {
  index: number;
  /** GHL's mediaChannel (1, 2: the two sides of the call) when given. */
  speaker: number | null;
  startMs: number | null;
  endMs: number | null;
  text: string;
  confidence: number | null;
}

export interface CallsEndpointsTable {
  location_id: string;
  token_hash: string;
  token_enc: string;
  key_id: string;
  previous_hash: string | null;
  previous_until: Date | null;
  integration_type: Generated<IntegrationType>;
  mapping: Json<Record<string, string[]> | null> | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface CallsInboxTable {
  id: Generated<number>;
  location_id: string;
  source: 'workflow' | 'app';
  dedupe_key: string | null;
  payload: Json<Record<string, unknown>>;
  /** The mapped call (workflow payloads: mapped with the endpoint's mapping at receipt). */
  mapped: Json<Record<string, unknown> | null> | null;
  state: Generated<InboxState>;
  reason: string | null;
  call_id: number | null;
  received_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface CallsTable {
  id: Generated<number>;
  location_id: string;
  contact_id: string;
  message_id: string | null;
  conversation_id: string | null;
  integration_type: IntegrationType;
  direction: string | null;
  from_number: string | null;
  to_number: string | null;
  status: string | null;
  disposition: string | null;
  duration_sec: number | null;
  user_id: string | null;
  started_at: Date | null;
  ended_at: Date | null;
  sources: Json<string[]>;
  transcript_state: Generated<TranscriptState>;
  transcript: Json<TranscriptSentence[] | null> | null;
  transcript_text: string | null;
  transcript_reason: string | null;
  transcript_attempts: Generated<number>;
  completed_at: Date | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface CallsEventsTable {
  id: Generated<number>;
  location_id: string;
  call_id: number;
  type: string;
  integration_type: IntegrationType;
  payload: Json<Record<string, unknown>>;
  dedupe_key: string;
  created_at: Generated<Date>;
}

export interface CallsProviderLogsTable {
  id: Generated<number>;
  location_id: string;
  external_id: string;
  request: Json<Record<string, unknown>>;
  state: Generated<'received' | 'posted' | 'failed'>;
  contact_id: string | null;
  conversation_id: string | null;
  ghl_message_id: string | null;
  attempts: Generated<number>;
  last_error: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    calls_endpoints: CallsEndpointsTable;
    calls_inbox: CallsInboxTable;
    calls: CallsTable;
    calls_events: CallsEventsTable;
    calls_provider_logs: CallsProviderLogsTable;
  }
}
