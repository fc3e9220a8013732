import type { ColumnType, Generated, Selectable } from 'kysely';

export type Ordering = 'none' | 'location' | 'contact';
export type SubscriptionState = 'enabled' | 'disabled';
export type DeliveryStatus = 'pending' | 'delivered' | 'dead';
export type EventSource = 'ghl' | 'bridge';

type Json<T> = ColumnType<T, string, string>;

/** One event the bridge saw or emitted (the outbox): fan-out rows in event_deliveries point here. */
export interface EventLogTable {
  /** Stable event id (`evt_…`), the webhook-id of every delivery of it. */
  id: string;
  seq: Generated<number>;
  source: EventSource;
  type: string;
  /** Schema version of a bridge event's data (GHL events: 1, the payload as GHL sent it). */
  version: number;
  location_id: string | null;
  contact_id: string | null;
  /** For GHL events: webhook_events.id (one event per stored webhook). */
  webhook_event_id: number | null;
  received_at: Date;
  data: Json<unknown>;
}

export interface EventSubscriptionsTable {
  id: string;
  url: string;
  description: string | null;
  /** Current signing secret (whsec_…), AES-GCM with TOKEN_ENCRYPTION_KEYS, AAD = subscription id. */
  secret_enc: string;
  /** The previous secret during a rotation overlap, and until when it still signs. */
  previous_secret_enc: string | null;
  previous_secret_until: Date | null;
  event_types: Json<string[]>;
  location_ids: ColumnType<string[] | null, string | null, string | null>;
  ordering: Ordering;
  state: SubscriptionState;
  disabled_reason: string | null;
  /** 'operator' | 'system' (410, failing too long): system disables are the alerts. */
  disabled_by: string | null;
  disabled_at: Date | null;
  /** Start of the current run of failures (null after a success). */
  failing_since: Date | null;
  consecutive_failures: Generated<number>;
  circuit_open_until: Date | null;
  created_at: Date;
  updated_at: Date;
}

export type SubscriptionRow = Selectable<EventSubscriptionsTable>;

export interface EventDeliveriesTable {
  id: Generated<number>;
  event_id: string;
  subscription_id: string;
  /** Deliveries sharing a key go one at a time, in event order (subscription ordering). */
  order_key: string | null;
  status: DeliveryStatus;
  attempts: Generated<number>;
  next_at: Date;
  leased_until: Date | null;
  last_status: number | null;
  last_error: string | null;
  /** Why a dead delivery was given up. */
  dead_reason: string | null;
  replays: Generated<number>;
  created_at: Date;
  finished_at: Date | null;
}

export interface EventDeliveryAttemptsTable {
  id: Generated<number>;
  delivery_id: number;
  subscription_id: string;
  event_id: string;
  attempt: number;
  at: Date;
  status_code: number | null;
  latency_ms: number;
  /** First bytes of the answer (or the network error). */
  response_head: string | null;
  error: string | null;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    event_log: EventLogTable;
    event_subscriptions: EventSubscriptionsTable;
    event_deliveries: EventDeliveriesTable;
    event_delivery_attempts: EventDeliveryAttemptsTable;
  }
}
