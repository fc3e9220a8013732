import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import './tables.js';

/**
 * Read-only views of stored webhook events for the operator console: the events about one message (the provider
 * delivery, keyed by the message id, and any event whose body names it) and an event list filtered by location.
 */
export async function eventsForMessage(db: Db, messageId: string) {
  return db
    .selectFrom('webhook_events')
    .select(['id', 'source', 'type', 'status', 'reason', 'signature', 'attempts', 'received_at', 'processed_at'])
    .where((eb) => eb.or([eb('dedupe_key', '=', messageId), eb(sql<string>`payload->>'messageId'`, '=', messageId)]))
    .orderBy('id', 'asc')
    .limit(50)
    .execute();
}

export async function listLocationEvents(
  db: Db,
  sel: { locationId?: string; status?: string; type?: string; limit?: number },
) {
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
  if (sel.locationId) q = q.where('location_id', '=', sel.locationId);
  if (sel.status) q = q.where('status', '=', sel.status as never);
  if (sel.type) q = q.where('type', '=', sel.type);
  return q
    .orderBy('id', 'desc')
    .limit(sel.limit ?? 100)
    .execute();
}
