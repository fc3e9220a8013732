import type { Db } from '../../infra/db/index.js';
import { enqueue } from '../../infra/queue/index.js';
import { locationKey } from '../../platform/keys.js';
import type { MappedCall } from './mapping.js';
import { callOrderingKey, processJob } from './process.js';
import { json } from './records.js';

interface Pending {
  locationId: string;
  payload: Record<string, unknown>;
  mapped: MappedCall | null;
  state: 'received' | 'unmappable' | 'forged';
  reason: string | null;
  resolve: (id: number) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for workflow webhooks: every payload that arrives in the same I/O turn (and while a batch is being
 * written) goes into one transaction — one multi-row insert into calls_inbox and one of their jobs — so a burst pays
 * one commit (one fsync) per batch instead of one per request. Each request is answered only after its batch
 * committed; a failed batch fails every request in it.
 */
export class InboxBatcher {
  #queue: Pending[] = [];
  #writing = false;

  constructor(
    private readonly db: Db,
    private readonly maxBatch = 200,
  ) {}

  store(p: Omit<Pending, 'resolve' | 'reject'>): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...p, resolve, reject });
      if (!this.#writing) setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    if (this.#writing || this.#queue.length === 0) return;
    this.#writing = true;
    const batch = this.#queue.splice(0, this.maxBatch);
    void this.#write(batch).finally(() => {
      this.#writing = false;
      if (this.#queue.length) setImmediate(() => this.#flush());
    });
  }

  async #write(batch: Pending[]): Promise<void> {
    try {
      const ids = await this.db.transaction().execute(async (trx) => {
        const rows = await trx
          .insertInto('calls_inbox')
          .values(
            batch.map((p) => ({
              location_id: p.locationId,
              source: 'workflow' as const,
              payload: json(p.payload),
              mapped: p.mapped ? json(p.mapped) : null,
              state: p.state,
              reason: p.reason,
            })),
          )
          .returning('id')
          .execute();
        // RETURNING of a multi-row VALUES insert yields the rows in the order given.
        const ids = rows.map((r) => Number(r.id));
        if (ids.length !== batch.length) throw new Error('inbox insert returned an unexpected number of rows');
        const jobs = batch.flatMap((p, i) =>
          p.state === 'received' && p.mapped
            ? [
                processJob.job(
                  { inboxId: ids[i]! },
                  { orderingKey: callOrderingKey(p.locationId, p.mapped.contactId), scope: locationKey(p.locationId) },
                ),
              ]
            : [],
        );
        await enqueue(trx, jobs);
        return ids;
      });
      batch.forEach((p, i) => p.resolve(ids[i]!));
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  }
}
