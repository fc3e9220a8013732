import { Counter, Histogram, type Registry } from 'prom-client';

export interface WebhookMetrics {
  /** Every answered delivery: accepted | duplicate | rejected | throttled. */
  intake: Counter<'source' | 'outcome'>;
  rejected: Counter<'source' | 'reason'>;
  throttled: Counter<'source' | 'reason'>;
  /** Stored with a status other than received (dead on arrival, unknown_type, skipped). */
  stored: Counter<'source' | 'status'>;
  unknownTypes: Counter<'type'>;
  dispatch: Counter<'type' | 'outcome'>;
  commitBatch: Histogram;
  commitSeconds: Histogram;
}

export function createWebhookMetrics(registry: Registry): WebhookMetrics {
  const registers = [registry];
  return {
    intake: new Counter({
      name: 'ghl_bridge_webhook_intake_total',
      help: 'Webhook deliveries answered, by outcome',
      labelNames: ['source', 'outcome'],
      registers,
    }),
    rejected: new Counter({
      name: 'ghl_bridge_webhook_rejected_total',
      help: 'Webhook deliveries rejected (401/400) by reason: missing_signature, invalid_signature, legacy_disabled, invalid_token (provider URL token), stale, bad_timestamp',
      labelNames: ['source', 'reason'],
      registers,
    }),
    throttled: new Counter({
      name: 'ghl_bridge_webhook_throttled_total',
      help: 'Webhook deliveries answered 429 (GHL retries) by reason: store_error, timeout, backlog, overload',
      labelNames: ['source', 'reason'],
      registers,
    }),
    stored: new Counter({
      name: 'ghl_bridge_webhook_stored_total',
      help: 'New webhook events stored, by initial status',
      labelNames: ['source', 'status'],
      registers,
    }),
    unknownTypes: new Counter({
      name: 'ghl_bridge_webhook_unknown_type_total',
      help: 'Stored events of a type nobody knows or handles',
      labelNames: ['type'],
      registers,
    }),
    dispatch: new Counter({
      name: 'ghl_bridge_webhook_dispatch_total',
      help: 'Webhook dispatch job outcomes: dispatched, skipped, retry, dead',
      labelNames: ['type', 'outcome'],
      registers,
    }),
    commitBatch: new Histogram({
      name: 'ghl_bridge_webhook_commit_batch_size',
      help: 'Events written per group-commit transaction',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers,
    }),
    commitSeconds: new Histogram({
      name: 'ghl_bridge_webhook_commit_seconds',
      help: 'Duration of one group-commit transaction (insert events + enqueue jobs + commit)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
  };
}
