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

/**
 * Group commit for small writes that many jobs make at once: items submitted in the same I/O turn, or while the
 * previous write is in flight, go out together in one statement (`write`, which returns one result per item, in
 * order). Each caller awaits its own item, so nothing is acknowledged before it is committed; a failed write rejects
 * every item of its batch.
 */
export class Batcher<T, R = void> {
  #queue: Array<{ item: T; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  #active = false;
  #scheduled = false;

  constructor(
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly maxBatch = 256,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#active) return;
    this.#scheduled = true;
    // setImmediate: every job finishing in this turn joins the batch.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    if (this.#active || !this.#queue.length) return;
    this.#active = true;
    const batch = this.#queue.splice(0, this.maxBatch);
    try {
      const out = await this.write(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(out[i] as R));
    } catch (e) {
      for (const b of batch) b.reject(e);
    } finally {
      this.#active = false;
      if (this.#queue.length) this.#schedule();
    }
  }
}
