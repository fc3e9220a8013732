import { sql } from 'kysely';
import { deleteInBatches } from '../../infra/db/batches.js';
import type { Db } from '../../infra/db/index.js';
import './tables.js';

/**
 * Deletes finished message records last touched more than `olderThanDays` ago, `batch` rows per
 * statement: outbound messages whose final status GHL has (done, failed) or that were rejected unconfirmed,
 * the OutboundMessage events kept for confirmation, and inbound messages
 * posted to GHL. Inbound messages that could not be posted ('failed') are kept: they are customer
 * messages GHL never received, for a person to look at. The sender → contact map is kept too.
 */
export async function pruneMessages(
  db: Db,
  olderThanDays: number,
  batch = 5000,
  signal?: AbortSignal,
): Promise<number> {
  const cutoff = sql`now() - make_interval(days => ${olderThanDays})`;
  // Conditions repeated outside the sub-select and SKIP LOCKED: see pruneEvents (a late receipt may be moving a row).
  const finishedOut = sql`state in ('done', 'failed', 'rejected') and updated_at < ${cutoff}`;
  const outbound = await deleteInBatches(
    db,
    batch,
    (limit) => sql`
    delete from provider_outbound where ${finishedOut} and message_id in (
      select message_id from provider_outbound where ${finishedOut} limit ${limit} for update skip locked)`,
    signal,
  );
  const finishedIn = sql`state = 'done' and updated_at < ${cutoff}`;
  const inbound = await deleteInBatches(
    db,
    batch,
    (limit) => sql`
    delete from provider_inbound where ${finishedIn} and id in (
      select id from provider_inbound where ${finishedIn} limit ${limit} for update skip locked)`,
    signal,
  );
  // OutboundMessage events kept to confirm unsigned deliveries: a delivery comes within seconds of its event.
  const oldConfirmation = sql`received_at < ${cutoff}`;
  const confirmations = await deleteInBatches(
    db,
    batch,
    (limit) => sql`
    delete from provider_confirmations where ${oldConfirmation} and message_id in (
      select message_id from provider_confirmations where ${oldConfirmation} limit ${limit} for update skip locked)`,
    signal,
  );
  return outbound + inbound + confirmations;
}
