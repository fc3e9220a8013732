import { sql } from 'kysely';
import type { GetMessageResponse } from '../../platform/ghl/types.js';
import type { Counter } from 'prom-client';
import { GhlApiError } from '../../platform/ghl/errors.js';
import type { Db } from '../../infra/db/index.js';
import type { Logger } from '../../infra/log/logger.js';
import { z } from 'zod';
import { backoffDelay, defineJob, PRIORITY, RetryLaterError } from '../../infra/queue/index.js';
import type { ProviderOutboundMessage } from '../../platform/webhooks/index.js';
import {
  enqueueSend as enqueueSendJob,
  keyId,
  RATE_WAIT_YIELD_MS,
  sendOnce,
  type OutboundRuntime,
} from './outbound.js';
import './tables.js';
import { locationKey } from '../../platform/keys.js';

export const JOB_CONFIRM = 'provider.confirm';

export type ConfirmationMode = 'event_then_lookup' | 'event' | 'lookup' | 'none';

export interface ConfirmationSettings {
  mode: ConfirmationMode;
  /** event_then_lookup: wait this long for the OutboundMessage event before the lookup. */
  waitMs: number;
  /** event: reject when the event has not come this long after the delivery. */
  timeoutMs: number;
  /** A lookup answered "not found" this soon after the delivery is retried (GHL read-after-write), not a rejection. */
  notFoundGraceMs: number;
}

export interface ConfirmRuntime {
  out: OutboundRuntime;
  settings: ConfirmationSettings;
  confirmed: Counter<'by'>;
  rejected: Counter<'reason'>;
  lookups: Counter<'outcome'>;
}

/** Why an unconfirmed delivery was not sent (stored in provider_outbound.rejected_reason, metric label). */
export type RejectReason =
  | 'not_in_ghl'
  | 'other_location'
  | 'other_contact'
  | 'not_outbound'
  | 'type_mismatch'
  | 'body_mismatch'
  | 'event_mismatch'
  | 'not_confirmed';

const REASON_TEXT: Record<RejectReason, string> = {
  not_in_ghl: 'GHL has no message with this messageId readable with this location’s token',
  other_location: 'the message belongs to another location',
  other_contact: 'the message belongs to another contact',
  not_outbound: 'the message in GHL is not outbound',
  type_mismatch: 'the message type in GHL does not match the delivery',
  body_mismatch: 'the message body in GHL differs from the delivery',
  event_mismatch: 'the signed OutboundMessage event names another location or contact',
  not_confirmed: 'no signed OutboundMessage event arrived in time (PROVIDER_CONFIRMATION=event)',
};

/**
 * `provider.confirm`: confirms an unsigned delivery from the signed OutboundMessage event or, failing that, by reading
 * the message from GHL; confirmed → send, otherwise rejected (see confirmDelivery below).
 */
export const confirmJob = defineJob<{ messageId: string; locationId: string }, ConfirmRuntime>({
  kind: JOB_CONFIRM,
  payload: z.object({ messageId: z.string().min(1), locationId: keyId }),
  dedupeKey: (p) => `${JOB_CONFIRM}:${p.messageId}`,
  scope: (p) => locationKey(p.locationId),
  priority: PRIORITY.live,
  maxAttempts: 50,
  perform: (p, _job, h) => confirmDelivery(h.deps, p.messageId, h),
});

const json = (v: unknown) => sql<string>`${JSON.stringify(v)}::jsonb`;

/**
 * A delivery authenticated only by the URL token (the dispatch job of its ProviderOutboundMessage event). Stored as
 * `awaiting_confirmation` together with its confirmation job; nothing is sent before it is confirmed. If the signed
 * OutboundMessage event came first, it is confirmed (and sent) right here.
 */
export async function acceptUnconfirmed(
  cr: ConfirmRuntime,
  p: ProviderOutboundMessage,
  h: { signal: AbortSignal; log: Logger },
): Promise<void> {
  const { db } = cr.out;
  const s = cr.settings;
  const delay = s.mode === 'lookup' ? 0 : s.mode === 'event' ? s.timeoutMs : s.waitMs;
  const inserted = await db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('provider_outbound')
      .values({
        message_id: p.messageId,
        location_id: p.locationId,
        contact_id: p.contactId,
        channel: p.type,
        payload: json(p),
        state: 'awaiting_confirmation',
      })
      .onConflict((oc) => oc.column('message_id').doNothing())
      .returning('message_id')
      .executeTakeFirst();
    if (row)
      await confirmJob.enqueue(
        trx,
        { messageId: p.messageId, locationId: p.locationId },
        { runAt: new Date(Date.now() + delay) },
      );
    return row !== undefined;
  });
  if (inserted) cr.out.notify();
  else {
    const old = await db
      .selectFrom('provider_outbound')
      .select('state')
      .where('message_id', '=', p.messageId)
      .executeTakeFirst();
    // A redelivery or a re-run: sent, rejected or waiting already. A re-run after a crash between the
    // confirmation and the send finds it 'received': send it (same idempotency key) as relayOutbound would.
    if (old?.state === 'received' || old?.state === 'sending') {
      const retry = await sendOnce(cr.out, p.messageId, h.signal, h.log);
      if (retry) await enqueueSend(cr, p.messageId, retry.delayMs);
      return;
    }
    if (old?.state !== 'awaiting_confirmation') return;
  }
  // The OutboundMessage event may have been handled already (it can arrive first).
  const verdict = await confirmFromEvent(cr, p.messageId, h.log);
  if (verdict === 'confirmed') {
    const retry = await sendOnce(cr.out, p.messageId, h.signal, h.log);
    if (retry) await enqueueSend(cr, p.messageId, retry.delayMs);
  }
}

async function enqueueSend(cr: ConfirmRuntime, messageId: string, delayMs: number): Promise<void> {
  const row = await cr.out.db
    .selectFrom('provider_outbound')
    .select(['message_id', 'location_id', 'contact_id'])
    .where('message_id', '=', messageId)
    .executeTakeFirstOrThrow();
  await enqueueSendJob(
    cr.out,
    cr.out.db,
    { messageId, locationId: row.location_id, contactId: row.contact_id },
    delayMs > 0 ? new Date(Date.now() + delayMs) : undefined,
  );
  cr.out.notify();
}

/**
 * The signed OutboundMessage app event (dispatched through the webhook registry). Remembers it (a delivery may come
 * later), and confirms a waiting delivery of the same message whose location and contact match.
 */
export async function onOutboundMessageEvent(
  cr: ConfirmRuntime,
  evt: { id: number; payload: Record<string, unknown> },
  h: { signal: AbortSignal; log: Logger },
): Promise<void> {
  const log = h.log;
  const p = evt.payload;
  const messageId = typeof p.messageId === 'string' ? p.messageId : undefined;
  const locationId = typeof p.locationId === 'string' ? p.locationId : undefined;
  if (!messageId || !locationId) return;
  await cr.out.db
    .insertInto('provider_confirmations')
    .values({
      message_id: messageId,
      location_id: locationId,
      contact_id: typeof p.contactId === 'string' ? p.contactId : null,
      event_id: evt.id,
      message_type: typeof p.messageType === 'string' ? p.messageType : null,
      direction: typeof p.direction === 'string' ? p.direction : null,
    })
    .onConflict((oc) => oc.column('message_id').doNothing())
    .execute();
  // A re-run of this job after a crash between the confirmation and the send: the row is confirmed but unsent.
  const now = await cr.out.db
    .selectFrom('provider_outbound')
    .select(['state', 'confirmed_by'])
    .where('message_id', '=', messageId)
    .executeTakeFirst();
  if (now?.confirmed_by === 'event' && (now.state === 'received' || now.state === 'sending'))
    return enqueueSend(cr, messageId, 0);
  // Confirmed here: send in this job (as the delivery's own job would), a queue hop less per message; retries and
  // crash recovery go through provider.send. Unconfirmed messages of a contact go out in confirmation order.
  if ((await confirmFromEvent(cr, messageId, log)) === 'confirmed') {
    const retry = await sendOnce(cr.out, messageId, h.signal, log);
    if (retry) await enqueueSend(cr, messageId, retry.delayMs);
  }
}

/**
 * Confirms (or rejects) a waiting delivery from the stored OutboundMessage event, if both exist. Each side commits
 * its own row before calling this, so whichever runs second sees both; the state change is conditional, so exactly
 * one caller wins ('confirmed'), and only the winner sends.
 */
async function confirmFromEvent(
  cr: ConfirmRuntime,
  messageId: string,
  log: Logger,
): Promise<'confirmed' | 'rejected' | 'none'> {
  const db = cr.out.db;
  const [row, ev] = await Promise.all([
    db
      .selectFrom('provider_outbound')
      .select(['state', 'location_id', 'contact_id'])
      .where('message_id', '=', messageId)
      .executeTakeFirst(),
    db.selectFrom('provider_confirmations').selectAll().where('message_id', '=', messageId).executeTakeFirst(),
  ]);
  if (!row || !ev || row.state !== 'awaiting_confirmation') return 'none';
  if (ev.location_id !== row.location_id || (ev.contact_id !== null && ev.contact_id !== row.contact_id)) {
    return (await reject(cr, messageId, 'event_mismatch', log)) ? 'rejected' : 'none';
  }
  return (await markConfirmed(cr, messageId, 'event')) ? 'confirmed' : 'none';
}

async function markConfirmed(cr: ConfirmRuntime, messageId: string, by: 'event' | 'lookup'): Promise<boolean> {
  const r = await cr.out.db
    .updateTable('provider_outbound')
    .set({ state: 'received', confirmed_by: by, updated_at: sql`now()` })
    .where('message_id', '=', messageId)
    .where('state', '=', 'awaiting_confirmation')
    .executeTakeFirst();
  const won = Number(r.numUpdatedRows) === 1;
  if (won) cr.confirmed.inc({ by });
  return won;
}

async function reject(
  cr: ConfirmRuntime,
  messageId: string,
  reason: RejectReason,
  log: Logger,
  detail?: string,
): Promise<boolean> {
  const text = `${reason}: ${REASON_TEXT[reason]}${detail ? ` (${detail})` : ''}`.slice(0, 1000);
  const bus = cr.out.bus?.();
  const update = (db: Db) =>
    db
      .updateTable('provider_outbound')
      .set({ state: 'rejected', rejected_reason: text, updated_at: sql`now()` })
      .where('message_id', '=', messageId)
      .where('state', '=', 'awaiting_confirmation')
      .returning(['location_id'])
      .executeTakeFirst();
  const r = bus
    ? await cr.out.db.transaction().execute(async (trx) => {
        const row = await update(trx);
        if (row)
          await bus.publish(trx, {
            type: 'message.rejected',
            locationId: row.location_id,
            data: { messageId, locationId: row.location_id, reason: text },
          });
        return row;
      })
    : await update(cr.out.db);
  const done = r !== undefined;
  if (done) {
    cr.rejected.inc({ reason });
    log.warn({ messageId, reason }, 'unsigned provider delivery rejected: not sent');
  }
  return done;
}

const norm = (s: unknown) => (typeof s === 'string' ? s.replace(/\r\n/g, '\n').trim() : '');

/** Compares GHL's copy of the message (GET /conversations/messages/{id}) with the delivery. */
export function compareWithGhl(
  row: { location_id: string; contact_id: string; channel: string; payload: Record<string, unknown> },
  m: Pick<GetMessageResponse, 'locationId' | 'contactId' | 'direction' | 'messageType' | 'body'>,
): { ok: true } | { ok: false; reason: RejectReason; detail?: string } {
  if (m.locationId !== row.location_id) return { ok: false, reason: 'other_location' };
  if (m.contactId !== row.contact_id) return { ok: false, reason: 'other_contact' };
  if (m.direction !== 'outbound')
    return { ok: false, reason: 'not_outbound', detail: `direction ${String(m.direction)}` };
  const mt = String(m.messageType ?? '').toUpperCase();
  const want = row.channel === 'Email' ? 'EMAIL' : 'SMS';
  if (!mt.includes(want))
    return { ok: false, reason: 'type_mismatch', detail: `GHL ${mt || '(none)'}, delivery ${row.channel}` };
  const body = norm(m.body);
  const candidates = row.channel === 'Email' ? [row.payload.html, row.payload.message] : [row.payload.message];
  if (!candidates.some((c) => norm(c) === body)) return { ok: false, reason: 'body_mismatch' };
  return { ok: true };
}

/**
 * `provider.confirm`, due when the event had its chance (event_then_lookup), at once (lookup), or at the deadline
 * (event). Does nothing when the delivery was settled meanwhile — in particular no GHL call when the event came.
 * The lookup uses the location's token on the live lane; 429, 5xx, timeouts and network errors are retried (never
 * rejections); a definite answer that the message is not this location's outbound message rejects it.
 */
async function confirmDelivery(
  cr: ConfirmRuntime,
  messageId: string,
  h: { signal: AbortSignal; log: Logger },
): Promise<void> {
  const { db } = cr.out;
  const row = await db
    .selectFrom('provider_outbound')
    .select([
      'state',
      'location_id',
      'contact_id',
      'channel',
      'payload',
      'confirm_lookups',
      'received_at',
      'confirmed_by',
    ])
    .where('message_id', '=', messageId)
    .executeTakeFirst();
  // A re-run after a crash between a lookup confirmation and queueing its send.
  if (row?.state === 'received' && row.confirmed_by === 'lookup') return enqueueSend(cr, messageId, 0);
  if (!row || row.state !== 'awaiting_confirmation') return;
  const viaEvent = await confirmFromEvent(cr, messageId, h.log);
  if (viaEvent === 'confirmed') return enqueueSend(cr, messageId, 0);
  if (viaEvent === 'rejected') return;
  if (cr.settings.mode === 'event') {
    await reject(cr, messageId, 'not_confirmed', h.log);
    return;
  }
  await db
    .updateTable('provider_outbound')
    .set({ confirm_lookups: sql`confirm_lookups + 1` })
    .where('message_id', '=', messageId)
    .execute();
  let m: GetMessageResponse;
  try {
    m = await cr.out.ghl().messages.get(messageId, {
      installation: { locationId: row.location_id },
      lane: 'live',
      signal: h.signal,
      maxWaitMs: RATE_WAIT_YIELD_MS,
    });
  } catch (e) {
    // Not an answer from GHL (shutdown, installation paused for re-authorization, not installed): the queue decides.
    if (h.signal.aborted || !(e instanceof GhlApiError)) throw e;
    const definite = [400, 401, 403, 404, 422].includes(e.status);
    // GHL may not serve a message it has just created (read-after-write): "not found" is final only after a grace period.
    const young = Date.now() - row.received_at.getTime() < cr.settings.notFoundGraceMs;
    if (definite && !(young && e.status !== 401 && e.status !== 403)) {
      cr.lookups.inc({ outcome: 'refused' });
      await reject(
        cr,
        messageId,
        e.status === 401 || e.status === 403 ? 'other_location' : 'not_in_ghl',
        h.log,
        `HTTP ${e.status}`,
      );
      return;
    }
    cr.lookups.inc({ outcome: 'transient' });
    const delayMs = definite ? 5000 : backoffDelay(row.confirm_lookups + 1, { baseMs: 1000, maxMs: 60_000 });
    throw new RetryLaterError(delayMs, `message lookup not conclusive, retrying: ${e.message}`.slice(0, 500));
  }
  cr.lookups.inc({ outcome: 'answered' });
  const verdict = compareWithGhl({ ...row, payload: row.payload as Record<string, unknown> }, m);
  if (!verdict.ok) {
    await reject(cr, messageId, verdict.reason, h.log, verdict.detail);
    return;
  }
  if (await markConfirmed(cr, messageId, 'lookup')) await enqueueSend(cr, messageId, 0);
}

/** Recently rejected deliveries, for the dashboard. */
export async function listRejected(db: OutboundRuntime['db'], limit = 25) {
  const rows = await db
    .selectFrom('provider_outbound')
    .select(['message_id', 'location_id', 'contact_id', 'rejected_reason', 'updated_at'])
    .where('state', '=', 'rejected')
    .orderBy('updated_at', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    messageId: r.message_id,
    locationId: r.location_id,
    contactId: r.contact_id,
    reason: r.rejected_reason,
    at: r.updated_at,
  }));
}

export async function countAwaiting(db: OutboundRuntime['db']): Promise<number> {
  const r = await db
    .selectFrom('provider_outbound')
    .select(db.fn.countAll<number>().as('n'))
    .where('state', '=', 'awaiting_confirmation')
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}
