import { sql } from 'kysely';
import { applyStatus, enqueueSend, type OutboundRuntime } from './outbound.js';
import type { GhlStatus } from './tables.js';
import type { ChannelError } from '../channels/index.js';

const json = (v: unknown) => sql<string>`${JSON.stringify(v)}::jsonb`;

/** An outbound SMS-type message of this provider found in GHL by a read (the chat module's reconcile). */
export interface FoundMessage {
  locationId: string;
  messageId: string;
  contactId: string;
  body: string;
  attachments: string[];
  userId?: string | undefined;
  phone?: string | undefined;
}

/**
 * Relays a message GHL never delivered to the Delivery URL, exactly like a delivery: the same row keyed by the
 * messageId and the same send job, so a delivery or catch-up racing it converges on one send. The read that found it
 * was made with the location's token, so it is its own proof of authenticity. False when the bridge already knew it.
 */
export async function relayFound(rt: OutboundRuntime, m: FoundMessage, confirmedBy: string): Promise<boolean> {
  const payload = {
    contactId: m.contactId,
    locationId: m.locationId,
    messageId: m.messageId,
    type: 'SMS',
    phone: m.phone ?? '',
    message: m.body,
    attachments: m.attachments,
    ...(m.userId ? { userId: m.userId } : {}),
  };
  const inserted = await rt.db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('provider_outbound')
      .values({
        message_id: m.messageId,
        location_id: m.locationId,
        contact_id: m.contactId,
        channel: 'SMS',
        payload: json(payload),
        state: 'received',
        confirmed_by: confirmedBy,
      })
      .onConflict((oc) => oc.column('message_id').doNothing())
      .returning('message_id')
      .executeTakeFirst();
    if (row) await enqueueSend(rt, trx, { messageId: m.messageId, locationId: m.locationId, contactId: m.contactId });
    return row !== undefined;
  });
  if (inserted) rt.notify();
  return inserted;
}

/** A receipt for a message the bridge relayed to the channel (forward-only). False when no such message. */
export async function applyReceipt(
  rt: OutboundRuntime,
  locationId: string,
  ghlMessageId: string,
  status: GhlStatus,
  error?: ChannelError,
): Promise<boolean> {
  const ok = await rt.db.transaction().execute((trx) => applyStatus(trx, { locationId, ghlMessageId }, status, error));
  if (ok) rt.notify();
  return ok;
}
