import type { ColumnType, Generated } from 'kysely';

export type WebhookSource = 'app' | 'provider';
/**
 * received: stored, dispatch job queued · dispatched: every handler finished · skipped: nothing to
 * do (no handler, unknown/uninstalled location) · dead: cannot be processed (malformed body,
 * invalid payload, handler failed all attempts) — replayable · unknown_type: not a type we know
 * and nobody handles; stored and counted.
 */
export type WebhookStatus = 'received' | 'dispatched' | 'skipped' | 'dead' | 'unknown_type';
export const WEBHOOK_STATUSES: readonly WebhookStatus[] = ['received', 'dispatched', 'skipped', 'dead', 'unknown_type'];

export interface WebhookEventsTable {
  id: Generated<number>;
  source: WebhookSource;
  /** webhookId, or messageId for provider deliveries, or a body hash when neither exists. */
  dedupe_key: string;
  /** Event type; 'ProviderOutboundMessage' for provider deliveries; null when the body did not parse. */
  type: string | null;
  location_id: string | null;
  company_id: string | null;
  webhook_id: string | null;
  /** Job ordering key chosen at intake; reused when the event is replayed. */
  ordering_key: string | null;
  /** The envelope `timestamp`, when present. */
  event_at: Date | null;
  received_at: Generated<Date>;
  payload: ColumnType<unknown, string | null, string | null>;
  /** Original bytes, kept only when they could not be stored as JSON. */
  raw: Buffer | null;
  /** ed25519 | rsa, with "+reserialized" when only the re-serialised JSON matched; "none" in insecure mode. */
  signature: string;
  status: WebhookStatus;
  reason: string | null;
  attempts: Generated<number>;
  processed_at: Date | null;
  updated_at: Generated<Date>;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    webhook_events: WebhookEventsTable;
  }
}
