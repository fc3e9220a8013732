import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import { enqueue } from '../../infra/queue/index.js';
import { dispatchJobFor } from './store.js';
import type { WebhookStatus } from './tables.js';
import './tables.js';

export interface ReplaySelection {
  ids?: number[];
  since?: Date;
  type?: string;
  /** Only events in status 'dead'. */
  dead?: boolean;
  limit?: number;
}

export interface ReplayResult {
  /** Events queued for dispatch again. */
  replayed: number[];
  /** Selected but not replayable: no parsed payload (malformed body) or already waiting for dispatch. */
  notReplayable: Array<{ id: number; reason: string }>;
}

/**
 * Puts stored events back through their handlers: status → received and a fresh dispatch job,
 * in one transaction. Handlers are idempotent, so re-running an already dispatched event is safe.
 * Events still 'received' already have a job waiting and are left alone (a dead job of one can
 * be retried with `ghl-bridge jobs retry`). Works from any process sharing the database: the
 * running bridge's workers pick the jobs up.
 */
export async function replayEvents(
  db: Db,
  sel: ReplaySelection,
  opts: { maxAttempts?: number } = {},
): Promise<ReplayResult> {
  if (!sel.ids?.length && !sel.since && !sel.type && !sel.dead)
    throw new Error('select events to replay: ids, since, type or dead');
  return db.transaction().execute(async (trx) => {
    let q = trx
      .selectFrom('webhook_events')
      .select(['id', 'status', 'type', 'ordering_key', 'location_id', sql<boolean>`payload is null`.as('no_payload')]);
    if (sel.ids?.length) q = q.where('id', 'in', sel.ids);
    if (sel.since) q = q.where('received_at', '>=', sel.since);
    if (sel.type) q = q.where('type', '=', sel.type);
    if (sel.dead) q = q.where('status', '=', 'dead');
    const rows = await q
      .orderBy('id')
      .limit(sel.limit ?? 10_000)
      .forUpdate()
      .execute();
    const notReplayable: ReplayResult['notReplayable'] = [];
    const take: typeof rows = [];
    for (const r of rows) {
      if (r.no_payload)
        notReplayable.push({ id: r.id, reason: 'body was not valid JSON; only the raw bytes are stored' });
      else if (r.status === 'received') notReplayable.push({ id: r.id, reason: 'already waiting for dispatch' });
      else take.push(r);
    }
    if (take.length) {
      await trx
        .updateTable('webhook_events')
        .set({ status: 'received' satisfies WebhookStatus, reason: null, processed_at: null, updated_at: sql`now()` })
        .where(
          'id',
          'in',
          take.map((r) => r.id),
        )
        .execute();
      await enqueue(
        trx,
        take.map((r) =>
          dispatchJobFor(
            r.id,
            { orderingKey: r.ordering_key, locationId: r.location_id, type: r.type },
            true,
            opts.maxAttempts,
          ),
        ),
      );
    }
    return { replayed: take.map((r) => r.id), notReplayable };
  });
}

export interface ListSelection {
  status?: WebhookStatus;
  type?: string;
  since?: Date;
  limit?: number;
}

export async function listEvents(db: Db, sel: ListSelection = {}) {
  let q = db
    .selectFrom('webhook_events')
    .select([
      'id',
      'source',
      'type',
      'status',
      'reason',
      'location_id',
      'company_id',
      'webhook_id',
      'signature',
      'attempts',
      'received_at',
      'processed_at',
    ]);
  if (sel.status) q = q.where('status', '=', sel.status);
  if (sel.type) q = q.where('type', '=', sel.type);
  if (sel.since) q = q.where('received_at', '>=', sel.since);
  return q
    .orderBy('id', 'desc')
    .limit(sel.limit ?? 100)
    .execute();
}

export async function getEvent(db: Db, id: number) {
  return db.selectFrom('webhook_events').selectAll().where('id', '=', id).executeTakeFirst();
}
