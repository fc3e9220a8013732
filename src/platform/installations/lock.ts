import { sql } from 'kysely';
import type { Db, StoreKind } from '../../infra/db/index.js';

// One chain per (database handle, installation) so every vault/client sharing a store in this
// process is serialised, not just callers of one instance.
const chains = new WeakMap<object, Map<string, Promise<void>>>();

/**
 * Runs `fn` holding the installation's refresh lock. In-process: a FIFO chain per id. Across
 * processes (PostgreSQL): a `SELECT … FOR UPDATE` on the installation row inside a transaction
 * that spans `fn` — including its HTTP call to GHL — so exactly one replica refreshes at a time and
 * the others, once they get the lock, re-read the row and find the new token. If the holder dies,
 * its connection drops and the lock goes with it. PGlite is one process, so the chain suffices.
 * `fn` must not throw after writing state it wants kept (it would roll back): return instead.
 */
export async function withInstallationLock<T>(
  db: Db,
  kind: StoreKind,
  id: string,
  fn: (q: Db) => Promise<T>,
): Promise<T> {
  let m = chains.get(db);
  if (!m) chains.set(db, (m = new Map()));
  const prev = m.get(id) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = prev.then(() => mine);
  m.set(id, tail);
  await prev;
  try {
    if (kind === 'postgres') {
      return await db.transaction().execute(async (trx) => {
        await sql`select id from ghl_installations where id = ${id} for update`.execute(trx);
        return fn(trx);
      });
    }
    return await fn(db);
  } finally {
    release();
    if (m.get(id) === tail) m.delete(id);
  }
}
