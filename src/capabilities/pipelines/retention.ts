import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';

/**
 * Deletes delivered trigger calls and done opportunity operations older than `days`, in batches (dead and failed ones
 * are kept for the operator). Returns the rows deleted.
 */
export async function prunePipelines(db: Db, days: number, batch = 5000, signal?: AbortSignal): Promise<number> {
  let total = 0;
  const cutoff = sql<Date>`now() - make_interval(days => ${days})`;
  for (const table of ['trigger_requests', 'opportunity_ops'] as const) {
    const state = table === 'trigger_requests' ? 'delivered' : 'done';
    for (;;) {
      if (signal?.aborted) return total;
      const r = await sql<{ n: number }>`
        with gone as (
          delete from ${sql.table(table)} where id in (
            select id from ${sql.table(table)} where state = ${state} and updated_at < ${cutoff} limit ${batch}
          ) returning 1
        ) select count(*)::int as n from gone`.execute(db);
      const n = r.rows[0]?.n ?? 0;
      total += n;
      if (n < batch) break;
    }
  }
  return total;
}
