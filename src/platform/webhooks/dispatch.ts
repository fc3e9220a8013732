import { sql } from 'kysely';
import type { Job } from '../../infra/queue/index.js';
import type { HandlerContext as JobContext } from '../../infra/queue/worker.js';
import type { WebhookMetrics } from './metrics.js';
import type { HandlerRegistry, LocationLookup, StoredEvent } from './registry.js';
import { KNOWN_EVENT_TYPES, validateEvent } from './schemas.js';
import type { DispatchJobPayload } from './store.js';
import type { WebhookStatus } from './tables.js';

export interface DispatcherDeps {
  registry: HandlerRegistry;
  metrics: WebhookMetrics;
  /** Looked up when a job runs, so the installations module may register after us. */
  locations: () => LocationLookup | undefined;
}

const known = new Set(KNOWN_EVENT_TYPES);

/**
 * The job behind every stored event: validate the payload, skip handlers that need a known
 * location when the location is unknown, run the handlers, and record the outcome on the event
 * row. Handler errors propagate to the queue (backoff, retries); on the last attempt the event
 * is marked dead with the reason, ready for `webhooks replay`.
 */
export function createDispatcher(deps: DispatcherDeps) {
  return async (job: Job<DispatchJobPayload>, jctx: JobContext): Promise<void> => {
    const { db, log } = jctx;
    // Not the raw body or signature: only replay and audits need those.
    const row = await db
      .selectFrom('webhook_events')
      .select([
        'id',
        'status',
        'type',
        'payload',
        'source',
        'location_id',
        'company_id',
        'webhook_id',
        'received_at',
        'signature',
      ])
      .where('id', '=', job.payload.eventId)
      .executeTakeFirst();
    if (!row) return; // purged meanwhile
    // Anything but 'received' was settled by an earlier run; a replay resets it to 'received'.
    if (row.status !== 'received') return;
    const type = row.type ?? '';
    const finish = async (status: WebhookStatus, reason: string | null, outcome: string) => {
      await db
        .updateTable('webhook_events')
        .set({ status, reason, processed_at: sql`now()`, updated_at: sql`now()`, attempts: sql`attempts + 1` })
        .where('id', '=', row.id)
        .where('status', '=', 'received')
        .execute();
      deps.metrics.dispatch.inc({ type: metricType(type), outcome });
    };

    const handlers = deps.registry.get(row.type);
    if (!handlers.length) {
      await finish(known.has(type) ? 'skipped' : 'unknown_type', 'no handler registered', 'skipped');
      return;
    }
    const valid = validateEvent(type, row.payload);
    if (!valid.ok) {
      await finish('dead', `invalid payload: ${valid.error}`, 'dead');
      return;
    }

    let runnable = handlers;
    if (handlers.some((h) => h.requireKnownLocation) && (row.location_id || row.company_id)) {
      const lookup = deps.locations();
      if (lookup && !(await lookup.isKnownLocation(row.location_id, row.company_id)))
        runnable = handlers.filter((h) => !h.requireKnownLocation);
    }
    if (!runnable.length) {
      await finish('skipped', 'unknown or uninstalled location', 'skipped');
      return;
    }

    const event: StoredEvent = {
      id: row.id,
      source: row.source,
      type,
      locationId: row.location_id,
      companyId: row.company_id,
      webhookId: row.webhook_id,
      receivedAt: row.received_at,
      payload: valid.value,
      replay: job.payload.replay === true,
      signature: row.signature,
    };
    const hctx = {
      signal: jctx.signal,
      log: log.child({ webhookEventId: row.id, eventType: type }),
      db,
      jobId: job.id,
      attempt: job.attempts,
      maxAttempts: job.maxAttempts,
    };
    for (const h of runnable) {
      try {
        await h.fn(event, hctx);
      } catch (err) {
        const reason =
          `handler ${h.name} failed (attempt ${job.attempts}/${job.maxAttempts}): ${err instanceof Error ? err.message : String(err)}`.slice(
            0,
            2000,
          );
        const last = jctx.isFinalFailure(err);
        const aborted = jctx.signal.aborted;
        // Keep the latest reason on the event; on the last attempt the event is dead too.
        await db
          .updateTable('webhook_events')
          .set({
            reason,
            updated_at: sql`now()`,
            attempts: sql`attempts + 1`,
            ...(last && !aborted ? { status: 'dead' as const } : {}),
          })
          .where('id', '=', row.id)
          .where('status', '=', 'received')
          .execute()
          .catch((e: unknown) => log.warn({ err: e }, 'recording the handler failure on the event failed'));
        if (!aborted) deps.metrics.dispatch.inc({ type: metricType(type), outcome: last ? 'dead' : 'retry' });
        throw err;
      }
    }
    await finish(
      'dispatched',
      runnable.length < handlers.length ? 'location unknown: handlers needing it were skipped' : null,
      'dispatched',
    );
  };
}

/** Label values stay bounded: only known or handled types, others collapse. */
function metricType(type: string): string {
  return known.has(type) ? type : 'other';
}
