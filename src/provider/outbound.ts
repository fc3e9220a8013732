import type { EventEmitter } from 'node:events';
import { sql } from 'kysely';
import {
  ChannelConfigError,
  ChannelRetryableError,
  type ChannelError,
  type DeliveryReceipt,
  type OutboundMessage,
  type SendResult,
} from '../channels/index.js';
import type { Db } from '../db/index.js';
import { GhlApiError } from '../ghl/errors.js';
import type { GhlClient } from '../ghl/client.js';
import type { Logger } from '../log/logger.js';
import { backoffDelay, enqueue, PermanentJobError, PRIORITY, RetryLaterError, type DbOrTrx, type Job } from '../queue/index.js';
import type { HandlerContext } from '../queue/worker.js';
import type { ProviderOutboundMessage } from '../webhooks/index.js';
import type { ChannelCache } from './channels.js';
import type { GhlStatus, OutboundState } from './tables.js';
import './tables.js';

export const JOB_SEND = 'provider.send';
export const JOB_STATUS = 'provider.status';
export const JOB_POLL = 'provider.poll';

export interface ProviderSettings {
  sendMaxAttempts: number;
  retryBaseMs: number;
  statusRefusalMaxMs: number;
  pollBaseMs: number;
  pollGiveUpMs: number;
}

/** Relay timing events (benchmark, metrics). Times are epoch ms. */
export interface RelayEvents {
  /** The adapter is about to be called for a message GHL delivered at `receivedAt`. */
  send: [{ messageId: string; locationId: string; receivedAt: number; at: number; attempt: number }];
  /** A status is about to be PUT to GHL; `since` = when the channel result/receipt was recorded. */
  status: [{ messageId: string; status: GhlStatus; since: number; at: number }];
  /** GHL accepted the status. */
  reported: [{ messageId: string; status: GhlStatus; at: number }];
}

export interface OutboundRuntime {
  db: Db;
  log: Logger;
  ghl: () => GhlClient;
  channels: ChannelCache;
  settings: ProviderSettings;
  events: EventEmitter<RelayEvents>;
  notify: () => void;
}

const RANK: Record<Exclude<GhlStatus, 'failed'>, number> = { pending: 0, delivered: 1, read: 2 };

/**
 * Forward-only merge of a message's status: pending → delivered → read; failed only from pending (or nothing).
 * Returns the new status, or null when `next` would not move forward (e.g. delivered → pending, failed → anything).
 */
export function mergeStatus(current: GhlStatus | null, next: GhlStatus): GhlStatus | null {
  if (!current) return next;
  if (current === next || current === 'failed') return null;
  if (next === 'failed') return current === 'pending' ? 'failed' : null;
  return RANK[next] > RANK[current] ? next : null;
}

function stateFor(status: GhlStatus): OutboundState {
  return status === 'pending' ? 'status_pending' : status === 'failed' ? 'failed' : 'done';
}

const json = (v: unknown) => sql<string>`${JSON.stringify(v)}::jsonb`;
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 1000);

/** The queue's equal-jitter exponential backoff, capped at 5 minutes. */
const backoff = (baseMs: number, attempt: number) => backoffDelay(attempt, { baseMs, maxMs: 300_000 });

export const orderingKeyOf = (locationId: string, contactId: string) => `loc:${locationId}:contact:${contactId}`;

/**
 * Step 1 (webhook handler, inside the dispatch job): record `received` and enqueue `provider.send` in one transaction.
 * Idempotent on messageId: a redelivered or replayed webhook finds the row and does nothing.
 */
export async function recordOutbound(db: Db, p: ProviderOutboundMessage): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const ins = await trx
      .insertInto('provider_outbound')
      .values({ message_id: p.messageId, location_id: p.locationId, contact_id: p.contactId, channel: p.type, payload: json(p) })
      .onConflict((oc) => oc.column('message_id').doNothing())
      .returning('message_id')
      .executeTakeFirst();
    if (!ins) return false;
    await enqueue(trx, {
      kind: JOB_SEND,
      payload: { messageId: p.messageId },
      orderingKey: orderingKeyOf(p.locationId, p.contactId),
      scope: `loc:${p.locationId}`,
      priority: PRIORITY.live,
      maxAttempts: 50,
    });
    return true;
  });
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

export function toOutboundMessage(p: Record<string, unknown>): OutboundMessage {
  const emailTo = Array.isArray(p.emailTo) ? p.emailTo.filter((x): x is string => typeof x === 'string') : str(p.emailTo) ? [p.emailTo as string] : undefined;
  const att = Array.isArray(p.attachments) ? p.attachments.filter((x): x is string => typeof x === 'string') : [];
  const m: OutboundMessage = {
    messageId: p.messageId as string,
    locationId: p.locationId as string,
    contactId: p.contactId as string,
    channel: p.type === 'Email' ? 'Email' : 'SMS',
    attachments: att,
  };
  const opt = { phone: str(p.phone), message: typeof p.message === 'string' ? p.message : undefined, subject: str(p.subject), html: str(p.html), emailFrom: str(p.emailFrom), replyToAltId: str(p.replyToAltId), userId: str(p.userId) };
  for (const [k, v] of Object.entries(opt)) if (v !== undefined) (m as unknown as Record<string, unknown>)[k] = v;
  if (emailTo?.length) m.emailTo = emailTo;
  return m;
}

async function enqueueStatus(trx: DbOrTrx, messageId: string, locationId: string): Promise<void> {
  // One ordering key per message: its status jobs run one at a time, and a refusal-window retry never holds up
  // other messages of the contact.
  await enqueue(trx, { kind: JOB_STATUS, payload: { messageId }, orderingKey: `status:${messageId}`, scope: `loc:${locationId}`, priority: PRIORITY.live, maxAttempts: 20 });
}

/**
 * Applies a delivery status (send result, channel receipt or poll) forward-only and schedules the GHL status call.
 * Returns false when no outbound message matches.
 */
export async function applyStatus(
  trx: DbOrTrx,
  sel: { locationId: string; ghlMessageId?: string | undefined; channelMessageId?: string | undefined },
  status: GhlStatus,
  error?: ChannelError,
): Promise<boolean> {
  let q = trx.selectFrom('provider_outbound').select(['message_id', 'status_target', 'location_id']).where('location_id', '=', sel.locationId);
  if (sel.ghlMessageId) q = q.where('message_id', '=', sel.ghlMessageId);
  else if (sel.channelMessageId) q = q.where('channel_message_id', '=', sel.channelMessageId);
  else return false;
  const row = await q.forUpdate().executeTakeFirst();
  if (!row) return false;
  const merged = mergeStatus(row.status_target, status);
  if (!merged) return true;
  await trx
    .updateTable('provider_outbound')
    .set({ status_target: merged, target_at: sql`now()`, updated_at: sql`now()`, ...(merged === 'failed' ? { error: json(error ?? { code: 'FAILED', type: 'provider', message: 'the channel reported the message as failed' }) } : {}) })
    .where('message_id', '=', row.message_id)
    .execute();
  await enqueueStatus(trx, row.message_id, row.location_id);
  return true;
}

export function receiptStatus(r: DeliveryReceipt): GhlStatus {
  return r.status;
}

/**
 * Step 2: `provider.send`. Marks `sending` durably BEFORE calling the adapter (with the GHL messageId as idempotency
 * key), then records the outcome and enqueues `provider.status` (and `provider.poll` for unconfirmed sends) in one
 * transaction. A crash between the two re-runs the adapter with the same key (see README: exactly-once).
 */
export function sendHandler(rt: OutboundRuntime) {
  return async (job: Job<{ messageId: string }>, h: HandlerContext): Promise<void> => {
    const { db } = rt;
    const row = await db.selectFrom('provider_outbound').selectAll().where('message_id', '=', job.payload.messageId).executeTakeFirst();
    if (!row || (row.state !== 'received' && row.state !== 'sending')) return;
    const log = h.log.child({ messageId: row.message_id, locationId: row.location_id });

    let ch: Awaited<ReturnType<ChannelCache['get']>>;
    try {
      ch = await rt.channels.get(row.location_id);
    } catch (e) {
      await finishSend(rt, row.message_id, row.location_id, { outcome: 'failed', error: { code: 'CHANNEL_CONFIG_INVALID', type: 'account', message: `the channel configured for this location cannot be used: ${errText(e)}` } }, null);
      return;
    }
    if (!ch || !ch.channel.enabled) {
      await finishSend(rt, row.message_id, row.location_id, {
        outcome: 'failed',
        error: { code: 'CHANNEL_NOT_CONFIGURED', type: 'account', message: ch ? 'the channel of this location is disabled in ghl-bridge' : 'no channel is configured for this location in ghl-bridge' },
      }, null);
      return;
    }
    const attempt = row.attempts + 1;
    await db
      .updateTable('provider_outbound')
      .set({ state: 'sending', attempts: attempt, channel_kind: ch.adapter.kind, send_started_at: sql`coalesce(send_started_at, now())`, updated_at: sql`now()` })
      .where('message_id', '=', row.message_id)
      .where('state', 'in', ['received', 'sending'])
      .execute();
    rt.events.emit('send', { messageId: row.message_id, locationId: row.location_id, receivedAt: row.received_at.getTime(), at: Date.now(), attempt });

    const msg = toOutboundMessage(row.payload);
    let result: SendResult;
    try {
      result = await ch.adapter.send(msg, h.signal);
    } catch (e) {
      if (h.signal.aborted) throw e;
      const retryable = e instanceof ChannelRetryableError;
      const reason = errText(e);
      if (e instanceof ChannelConfigError) {
        result = { outcome: 'failed', error: { code: 'CHANNEL_CONFIG', type: 'account', message: reason } };
      } else if (attempt >= rt.settings.sendMaxAttempts) {
        const code = retryable ? `CHANNEL_${e.reason.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}` : 'CHANNEL_ERROR';
        result = { outcome: 'failed', error: { code, type: 'provider', message: `not delivered after ${attempt} attempts: ${reason}` } };
      } else {
        await db.updateTable('provider_outbound').set({ last_error: reason, updated_at: sql`now()` }).where('message_id', '=', row.message_id).execute();
        const delay = retryable && e.retryAfterMs !== undefined ? Math.max(e.retryAfterMs, 10) : backoff(rt.settings.retryBaseMs, attempt);
        log.warn({ attempt, delayMs: delay, err: reason }, 'channel send failed; retrying');
        throw new RetryLaterError(delay, `channel send attempt ${attempt} failed: ${reason}`);
      }
    }
    if (result.outcome === 'failed') log.warn({ code: result.error.code, type: result.error.type }, 'channel refused the message');
    await finishSend(rt, row.message_id, row.location_id, result, ch.adapter.pollStatus ? ch.adapter.kind : null);
  };
}

async function finishSend(rt: OutboundRuntime, messageId: string, locationId: string, result: SendResult, pollable: string | null): Promise<void> {
  const target: GhlStatus = result.outcome === 'delivered' ? 'delivered' : result.outcome === 'accepted' ? 'pending' : 'failed';
  const channelMessageId = result.outcome === 'failed' ? null : (result.channelMessageId ?? null);
  await rt.db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('provider_outbound').select(['status_target', 'state']).where('message_id', '=', messageId).forUpdate().executeTakeFirst();
    if (!row || (row.state !== 'received' && row.state !== 'sending')) return;
    // A receipt may have arrived before the send answer was recorded: keep whichever is further.
    const merged = mergeStatus(row.status_target, target) ?? row.status_target ?? target;
    await trx
      .updateTable('provider_outbound')
      .set({
        state: 'sent',
        channel_message_id: channelMessageId,
        status_target: merged,
        target_at: sql`now()`,
        sent_at: sql`now()`,
        updated_at: sql`now()`,
        last_error: null,
        ...(result.outcome === 'failed' ? { error: json(result.error) } : {}),
      })
      .where('message_id', '=', messageId)
      .execute();
    await enqueueStatus(trx, messageId, locationId);
    if (merged === 'pending' && pollable && channelMessageId) {
      await enqueue(trx, {
        kind: JOB_POLL,
        payload: { messageId },
        dedupeKey: `${JOB_POLL}:${messageId}`,
        scope: `loc:${locationId}`,
        runAt: new Date(Date.now() + rt.settings.pollBaseMs),
        priority: PRIORITY.normal,
        maxAttempts: 20,
      });
    }
  });
  rt.notify();
}

/**
 * Step 3: `provider.status`. PUTs the row's target status if it is ahead of what GHL last accepted (forward-only),
 * loops while a receipt moved the target meanwhile. GHL's 400 refusal shortly after a message is created →
 * RetryLaterError with a growing delay (not a failure) for PROVIDER_STATUS_REFUSAL_MAX_MS.
 */
export function statusHandler(rt: OutboundRuntime) {
  return async (job: Job<{ messageId: string }>, h: HandlerContext): Promise<void> => {
    const { db } = rt;
    for (let round = 0; round < 5; round++) {
      const row = await db.selectFrom('provider_outbound').selectAll().where('message_id', '=', job.payload.messageId).executeTakeFirst();
      if (!row?.status_target) return;
      const target = row.status_target;
      if (!mergeStatus(row.ghl_status, target)) return;
      const body: { status: GhlStatus; error?: ChannelError } = { status: target };
      if (target === 'failed') body.error = (row.error as ChannelError | null) ?? { code: 'FAILED', type: 'provider', message: 'not delivered' };
      rt.events.emit('status', { messageId: row.message_id, status: target, since: (row.target_at ?? row.updated_at).getTime(), at: Date.now() });
      try {
        await rt.ghl().messages.updateStatus(row.message_id, body as never, { installation: { locationId: row.location_id }, lane: 'live', signal: h.signal });
      } catch (e) {
        if (!(e instanceof GhlApiError) || h.signal.aborted) throw e;
        const reason = errText(e);
        if (e.status === 400 && /cannot update message status/i.test(e.message)) {
          // GHL already holds a status we may not move away from: nothing more to report.
          await db.updateTable('provider_outbound').set({ state: stateFor(target), last_error: reason, updated_at: sql`now()` }).where('message_id', '=', row.message_id).execute();
          h.log.warn({ messageId: row.message_id, status: target, err: reason }, 'GHL refused the status transition; keeping its status');
          return;
        }
        const n = row.status_attempts + 1;
        await db.updateTable('provider_outbound').set({ status_attempts: n, last_error: reason, updated_at: sql`now()` }).where('message_id', '=', row.message_id).execute();
        if (e.status === 400) {
          if (Date.now() - row.received_at.getTime() < rt.settings.statusRefusalMaxMs) {
            throw new RetryLaterError(Math.min(250 * 2 ** Math.min(n, 10), 10_000), `GHL refused the status update (attempt ${n}); retrying: ${reason}`);
          }
          throw new PermanentJobError(`GHL refused the status update for ${Math.round(rt.settings.statusRefusalMaxMs / 1000)} s: ${reason}`);
        }
        if (e.status === 404 || e.status === 403) throw new PermanentJobError(reason);
        throw e;
      }
      await db
        .updateTable('provider_outbound')
        .set({ ghl_status: target, state: stateFor(target), reported_at: sql`now()`, updated_at: sql`now()`, last_error: null })
        .where('message_id', '=', row.message_id)
        .execute();
      rt.events.emit('reported', { messageId: row.message_id, status: target, at: Date.now() });
    }
  };
}

/**
 * `provider.poll`: for channels without push receipts (Cast). Polls with doubling delays (PROVIDER_POLL_BASE_MS, capped
 * at 5 min) until a final status or PROVIDER_POLL_GIVE_UP_MS after the send; then stops and leaves the message
 * `pending` in GHL ("delivery unknown"; a later pushed receipt still applies).
 */
export function pollHandler(rt: OutboundRuntime) {
  return async (job: Job<{ messageId: string }>, h: HandlerContext): Promise<void> => {
    const { db } = rt;
    const row = await db.selectFrom('provider_outbound').selectAll().where('message_id', '=', job.payload.messageId).executeTakeFirst();
    if (!row?.channel_message_id || (row.status_target && row.status_target !== 'pending')) return;
    const giveUp = async (why: string) => {
      await db.updateTable('provider_outbound').set({ last_error: why, updated_at: sql`now()` }).where('message_id', '=', row.message_id).execute();
      h.log.warn({ messageId: row.message_id, why }, 'stopped polling the channel for a delivery status');
    };
    const ch = await rt.channels.get(row.location_id).catch(() => undefined);
    if (!ch?.adapter.pollStatus) return giveUp('channel no longer supports status polling');
    const polls = row.polls + 1;
    await db.updateTable('provider_outbound').set({ polls }).where('message_id', '=', row.message_id).execute();
    const again = () => {
      const sentAt = (row.sent_at ?? row.received_at).getTime();
      if (Date.now() - sentAt >= rt.settings.pollGiveUpMs) return false;
      return backoff(rt.settings.pollBaseMs, polls + 1);
    };
    let receipt: DeliveryReceipt | null;
    try {
      receipt = await ch.adapter.pollStatus(row.channel_message_id, h.signal);
    } catch (e) {
      if (h.signal.aborted) throw e;
      const d = again();
      if (d === false) return giveUp(`delivery unconfirmed: status polling failed until giving up: ${errText(e)}`);
      throw new RetryLaterError(e instanceof ChannelRetryableError && e.retryAfterMs !== undefined ? e.retryAfterMs : d, `status poll failed: ${errText(e)}`);
    }
    if (!receipt) return giveUp('delivery unknown: the channel does not know this message');
    if (receipt.status === 'pending') {
      const d = again();
      if (d === false) return giveUp(`delivery unconfirmed ${Math.round(rt.settings.pollGiveUpMs / 60_000)} min after sending; left pending in GHL`);
      throw new RetryLaterError(d, 'still pending at the channel');
    }
    await db.transaction().execute(async (trx) => {
      await applyStatus(trx, { locationId: row.location_id, ghlMessageId: row.message_id }, receiptStatus(receipt), receipt.error);
    });
    rt.notify();
  };
}
