import { Counter, Histogram, type Registry } from 'prom-client';

/**
 * Prometheus metrics of workflow triggers and pipeline bridging (registered on the bridge's registry). Trigger
 * names are operator-configured, so `name` stays a small set; locations are not labels.
 */
export interface PipelineMetrics {
  /** Trigger calls by name and outcome: accepted (stored), forwarded (2xx), retried (an attempt failed and runs again), failed (given up). */
  triggers: Counter<'name' | 'outcome'>;
  /** One forwarding attempt: sending to GHL's answer, by outcome (ok, error). */
  triggerSeconds: Histogram<'outcome'>;
  /** Opportunity operations by kind (upsert, status) and outcome (created, updated, moved, status, retried, failed). */
  operations: Counter<'kind' | 'outcome'>;
  /** Opportunity webhooks applied to the map, by event type and outcome (updated, deleted, unmapped). */
  mapUpdates: Counter<'event' | 'outcome'>;
}

export function pipelineMetrics(registry: Registry): PipelineMetrics {
  return {
    triggers: new Counter({
      name: 'ghl_bridge_triggers_total',
      help: 'Workflow trigger calls by name and outcome (accepted, forwarded, retried, failed)',
      labelNames: ['name', 'outcome'],
      registers: [registry],
    }),
    triggerSeconds: new Histogram({
      name: 'ghl_bridge_trigger_forward_seconds',
      help: 'One workflow trigger forwarding attempt, from sending to the GHL hook’s answer',
      labelNames: ['outcome'],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    operations: new Counter({
      name: 'ghl_bridge_opportunity_operations_total',
      help: 'Opportunity operations by kind (upsert, status) and outcome (created, updated, moved, status, retried, failed)',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    mapUpdates: new Counter({
      name: 'ghl_bridge_opportunity_map_updates_total',
      help: 'Opportunity webhooks applied to the external-id map, by event type and outcome (updated, deleted, unmapped)',
      labelNames: ['event', 'outcome'],
      registers: [registry],
    }),
  };
}
