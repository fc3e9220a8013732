import type { RawBuilder } from 'kysely';
import type { Db } from './index.js';

/**
 * Runs a delete that removes at most `batch` rows (its `limit`) until one removes fewer: pruning a
 * large backlog takes many short statements instead of one that holds many row locks for long.
 * Returns the number of rows deleted; stops between statements once `signal` aborts.
 */
export async function deleteInBatches(
  db: Db,
  batch: number,
  statement: (limit: number) => RawBuilder<unknown>,
  signal?: AbortSignal,
): Promise<number> {
  let total = 0;
  while (!signal?.aborted) {
    const r = await statement(batch).execute(db);
    const n = Number(r.numAffectedRows ?? 0);
    total += n;
    if (n < batch) break;
  }
  return total;
}
