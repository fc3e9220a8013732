import type { DbOrTrx } from '../../infra/queue/index.js';
import type { PushOutcome, SyncStatus } from './tables.js';
import './tables.js';

/** A location's sync status record (brief 002's last_synced_at / last_sync_status / last_sync_error). */
export interface SyncStatusRecord {
  locationId: string;
  lastSyncAt: Date | null;
  status: SyncStatus | null;
  lastError: string | null;
  lastBatchId: string | null;
  /** The last finished batch, by outcome. */
  counts: Record<PushOutcome, number> | null;
  /** Every pushed record, by outcome. */
  totals: Record<PushOutcome, number>;
  /** Batches stored and not finished yet, and their records still to do. */
  pendingBatches: number;
  pendingRecords: number;
  mappedContacts: number;
}

/** Sync status of one location (null = never pushed) or of every location that has pushed. */
export async function syncStatus(db: DbOrTrx, locationId?: string): Promise<SyncStatusRecord[]> {
  let q = db.selectFrom('contacts_locations').selectAll();
  if (locationId) q = q.where('location_id', '=', locationId);
  const rows = await q.orderBy('location_id').execute();
  if (!rows.length) return [];
  const ids = rows.map((r) => r.location_id);
  const [pending, mapped] = await Promise.all([
    db
      .selectFrom('contacts_batches')
      .select((eb) => [
        'location_id',
        eb.fn.countAll<number>().as('n'),
        eb.fn.sum<number>(eb(eb.ref('total'), '-', eb.ref('done'))).as('left'),
      ])
      .where('location_id', 'in', ids)
      .where('completed_at', 'is', null)
      .groupBy('location_id')
      .execute(),
    db
      .selectFrom('contacts_map')
      .select((eb) => ['location_id', eb.fn.countAll<number>().as('n')])
      .where('location_id', 'in', ids)
      .groupBy('location_id')
      .execute(),
  ]);
  return rows.map((r) => {
    const p = pending.find((x) => x.location_id === r.location_id);
    return {
      locationId: r.location_id,
      lastSyncAt: r.last_sync_at,
      status: r.last_status,
      lastError: r.last_error,
      lastBatchId: r.last_batch_id,
      counts: r.last_counts,
      totals: r.totals,
      pendingBatches: Number(p?.n ?? 0),
      pendingRecords: Number(p?.left ?? 0),
      mappedContacts: Number(mapped.find((x) => x.location_id === r.location_id)?.n ?? 0),
    };
  });
}
