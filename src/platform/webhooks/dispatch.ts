import { sql, type Selectable } from 'kysely';
import { z } from 'zod';
import { Batcher } from '../../infra/db/batches.js';
import type { Db } from '../../infra/db/index.js';
import { defineJob, type JobContext } from '../../infra/queue/index.js';
import type { WebhookMetrics } from './metrics.js';
import type { HandlerRegistry, LocationLookup, StoredEvent } from './registry.js';
import { KNOWN_EVENT_TYPES, validateEvent } from './schemas.js';
import type { WebhookEventsTable, WebhookStatus } from './tables.js';
import './tables.js';

export const DISPATCH_JOB = 'webhook.dispatch';

export interface DispatcherDeps {
  registry: HandlerRegistry;
  metrics: WebhookMetrics;
  /** Looked up when a job runs, so the installations module may register after us. */
  locations: () => LocationLookup | undefined;
  /** Records outcomes on event rows, group-committed across the dispatch jobs finishing together (`outcomeWriter`). */
  outcomes: Batcher<EventOutcome>;
  /** Reads event rows, one statement for the dispatch jobs starting together (`eventReader`). */
  events: Batcher<number, EventRow | undefined>;
}

const EVENT_COLUMNS = [
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
] as const;
type EventRow = Pick<Selectable<WebhookEventsTable>, (typeof EVENT_COLUMNS)[number]>;

/** Not the raw body or signature header: only replay and audits need those. */
export function eventReader(db: Db): Batcher<number, EventRow | undefined> {
  return new Batcher<number, EventRow | undefined>(async (ids) => {
    const rows = await db
      .selectFrom('webhook_events')
      .select(EVENT_COLUMNS)
      .where('id', '=', sql<number>`any(${ids}::bigint[])`)
      .execute();
    const by = new Map(rows.map((r) => [Number(r.id), r]));
    return ids.map((id) => by.get(id));
  });
}

/** What one dispatch run settles an event as. */
export interface EventOutcome {
  id: number;
  status: WebhookStatus;
  reason: string | null;
}

/**
 * One statement for every outcome in the batch: an event is settled only if it is still `received` (a replay or an
 * earlier run may have moved it meanwhile), exactly as one update per event would.
 */
export function outcomeWriter(db: Db): Batcher<EventOutcome> {
  return new Batcher<EventOutcome>(async (items) => {
    await sql`
      update webhook_events w set status = u.status, reason = u.reason, processed_at = now(), updated_at = now(),
        attempts = w.attempts + 1
      from unnest(${items.map((i) => i.id)}::bigint[], ${items.map((i) => i.status)}::text[],
        ${items.map((i) => i.reason)}::text[]) as u(id, status, reason)
      where w.id = u.id and w.status = 'received'`.execute(db);
    return items.map(() => undefined);
  });
}

const dispatchPayload = z.object({ eventId: z.number().int(), replay: z.boolean().optional() });
export type DispatchJobPayload = z.infer<typeof dispatchPayload>;

const known = new Set(KNOWN_EVENT_TYPES);

/**
 * The job behind every stored event: validate the payload, skip handlers that need a known
 * location when the location is unknown, run the handlers, and record the outcome on the event
 * row. Handler errors propagate to the queue (backoff, retries); when the queue gives up the event
 * is marked dead with the reason, ready for `webhooks replay`. Its ordering key and scope are the event's,
 * given per enqueue (replay.ts, or SQL over the stored events in store.ts).
 */
export const dispatchJob = defineJob<DispatchJobPayload, DispatcherDeps>({
  kind: DISPATCH_JOB,
  payload: dispatchPayload,
  perform: dispatch,
  onFailed: async (payload, _job, _err, ctx) => {
    const row = await settleFailure(ctx, payload.eventId, 'dead');
    if (row) ctx.deps.metrics.dispatch.inc({ type: metricType(row.type ?? ''), outcome: 'dead' });
  },
  onRetry: async (payload, _job, _err, ctx) => {
    const row = await ctx.db
      .selectFrom('webhook_events')
      .select('type')
      .where('id', '=', payload.eventId)
      .executeTakeFirst();
    if (row) ctx.deps.metrics.dispatch.inc({ type: metricType(row.type ?? ''), outcome: 'retry' });
  },
});

/** Marks an event still waiting for dispatch dead (its reason is the last failed attempt's). */
async function settleFailure(ctx: JobContext<DispatcherDeps>, eventId: number, status: 'dead') {
  return ctx.db
    .updateTable('webhook_events')
    .set({ status, updated_at: sql`now()` })
    .where('id', '=', eventId)
    .where('status', '=', 'received')
    .returning('type')
    .executeTakeFirst();
}

async function dispatch(
  payload: DispatchJobPayload,
  job: { id: number; attempts: number; maxAttempts: number },
  jctx: JobContext<DispatcherDeps>,
): Promise<void> {
  const { db, log, deps } = jctx;
  const row = await deps.events.submit(payload.eventId);
  if (!row) return; // purged meanwhile
  // Anything but 'received' was settled by an earlier run; a replay resets it to 'received'.
  if (row.status !== 'received') return;
  const type = row.type ?? '';
  const finish = async (status: WebhookStatus, reason: string | null, outcome: string) => {
    await deps.outcomes.submit({ id: row.id, status, reason });
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
    replay: payload.replay === true,
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
      // Keep the latest reason on the event; the queue's onFailed marks it dead when it gives up.
      await db
        .updateTable('webhook_events')
        .set({ reason, updated_at: sql`now()`, attempts: sql`attempts + 1` })
        .where('id', '=', row.id)
        .where('status', '=', 'received')
        .execute()
        .catch((e: unknown) => log.warn({ err: e }, 'recording the handler failure on the event failed'));
      throw err;
    }
  }
  await finish(
    'dispatched',
    runnable.length < handlers.length ? 'location unknown: handlers needing it were skipped' : null,
    'dispatched',
  );
}

/** Label values stay bounded: only known or handled types, others collapse. */
function metricType(type: string): string {
  return known.has(type) ? type : 'other';
}
