import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import { JOB_INSERT_COLUMNS, jobsNotifySql } from '../../infra/queue/index.js';
import { locationKeySql } from '../../platform/keys.js';
import type { MappedCall } from './mapping.js';
import { processJob } from './process.js';

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
 * written) goes into one statement — a multi-row insert into calls_inbox whose data-modifying CTE inserts the
 * `calls.process` jobs of the mappable ones and wakes the workers — so a burst pays one round trip and one commit
 * (one fsync) per batch (before: BEGIN, two inserts, COMMIT). Each request is answered only after its batch
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
      const values = sql.join(
        batch.map(
          (p) =>
            sql`(${p.locationId}, 'workflow', ${JSON.stringify(p.payload)}::jsonb, ${
              p.mapped ? JSON.stringify(p.mapped) : null
            }::jsonb, ${p.state}, ${p.reason}::text)`,
        ),
      );
      // The job's ordering key is callOrderingKey(location, contact), written in SQL over the inserted rows.
      const job = processJob.columnsSql({
        payload: sql`jsonb_build_object('inboxId', ins.id)`,
        orderingKey: sql`'calls:' || ins.location_id || ':' || (ins.mapped->>'contactId')`,
        scope: locationKeySql(sql`ins.location_id`),
      });
      const r = await sql<{ id: number }>`
        with ins as (
          insert into calls_inbox (location_id, source, payload, mapped, state, reason)
          values ${values}
          returning id, location_id, state, mapped
        ), jobs as (
          insert into bridge_jobs (${JOB_INSERT_COLUMNS})
          select ${job} from ins where ins.state = 'received' and ins.mapped->>'contactId' is not null
          returning id
        )
        select ins.id, (${jobsNotifySql(['jobs'])}) as n from ins order by ins.id`.execute(this.db);
      // Ids are drawn in VALUES order: ascending ids are the batch's order.
      const ids = r.rows.map((x) => Number(x.id));
      if (ids.length !== batch.length) throw new Error('inbox insert returned an unexpected number of rows');
      batch.forEach((p, i) => p.resolve(ids[i]!));
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  }
}
