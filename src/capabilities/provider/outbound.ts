import type { EventEmitter } from 'node:events';
import { sql, type InsertObject, type Selectable } from 'kysely';
import {
  ChannelConfigError,
  ChannelRetryableError,
  type ChannelAdapter,
  type ChannelError,
  type DeliveryReceipt,
  type OutboundMessage,
  type SendResult,
} from '../channels/index.js';
import type { Db } from '../../infra/db/index.js';
import type { Database } from '../../infra/db/schema.js';
import { Batcher } from '../../infra/db/batches.js';
import { GhlApiError } from '../../platform/ghl/errors.js';
import type { GhlClient } from '../../platform/ghl/client.js';
import type { Logger } from '../../infra/log/logger.js';
import { prepared } from '../../infra/db/prepared.js';
import { z } from 'zod';
import {
  backoffDelay,
  defineJob,
  jobsNotifySql,
  PermanentJobError,
  PRIORITY,
  RetryLaterError,
  type DbOrTrx,
  type JobContext,
} from '../../infra/queue/index.js';
import type { ProviderOutboundMessage } from '../../platform/webhooks/index.js';
import type { ChannelCache } from './channels.js';
import type { EventsService } from '../events/service.js';
import type { GhlStatus, OutboundState, ProviderOutboundTable, SendLogEntry } from './tables.js';
import './tables.js';
import { locationKey, orderingKeys } from '../../platform/keys.js';

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
  /** The outcome of one channel send attempt (`code`: the channel's reason, e.g. http_503, or its error code). */
  attempt: [
    {
      messageId: string;
      attempt: number;
      at: number;
      outcome: 'delivered' | 'accepted' | 'failed' | 'retry';
      code: string | null;
      error: string | null;
    },
  ];
}

export interface OutboundRuntime {
  db: Db;
  log: Logger;
  ghl: () => GhlClient;
  channels: ChannelCache;
  settings: ProviderSettings;
  events: EventEmitter<RelayEvents>;
  notify: () => void;
  /** The `events` service while it has subscribers (bridge events are published in the state change's transaction). */
  bus?: () => EventsService | undefined;
  /**
   * Set by another module (the chat module) through `provider.setOutboundDecorator`: adds its ids to a message just
   * before the channel is called, or returns null when the message must not be sent at all (one the bridge itself
   * posted into GHL: an echo). Must be fast and idempotent (it runs again on every retry).
   */
  decorate?: ((msg: OutboundMessage) => Promise<OutboundMessage | null>) | undefined;
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

/**
 * The handlers read only `messageId`; the other ids feed the keys at enqueue time. Jobs queued before the payloads
 * carried them hold `{ messageId }` alone: the defaults let those still run after an upgrade.
 */
export const keyId = z.string().default('');
const ids = { messageId: z.string().min(1), locationId: keyId };
const sendPayload = z.object({ ...ids, contactId: keyId });
const messagePayload = z.object(ids);
type MessageRef = z.infer<typeof messagePayload>;

/**
 * Step 2: `provider.send` (retries and crash recovery). Marks `sending` durably BEFORE calling the adapter (with the
 * GHL messageId as idempotency key), then records the outcome and enqueues `provider.status` (and `provider.poll` for
 * unconfirmed sends) in one statement. A crash between the two re-runs the adapter with the same key (see README:
 * exactly-once). Enqueue it with `enqueueSend`, which applies PROVIDER_SEND_MAX_ATTEMPTS.
 */
export const sendJob = defineJob<z.infer<typeof sendPayload>, OutboundRuntime>({
  kind: JOB_SEND,
  payload: sendPayload,
  orderingKey: (p) => orderingKeys.contact(p.locationId, p.contactId),
  scope: (p) => locationKey(p.locationId),
  // One send job per message at a time: a redelivered webhook or a re-run dispatch cannot queue a second one.
  dedupeKey: (p) => `${JOB_SEND}:${p.messageId}`,
  priority: PRIORITY.live,
  perform: async (p, _job, h) => {
    const retry = await sendOnce(h.deps, p.messageId, h.signal, h.log);
    if (retry) throw new RetryLaterError(retry.delayMs, retry.reason);
  },
});

/** Queues the send (retry) job of a message with the configured attempts (PROVIDER_SEND_MAX_ATTEMPTS). */
export function enqueueSend(
  rt: Pick<OutboundRuntime, 'settings'>,
  db: DbOrTrx,
  p: z.infer<typeof sendPayload>,
  runAt?: Date,
): Promise<number[]> {
  return sendJob.enqueue(db, p, { maxAttempts: rt.settings.sendMaxAttempts, ...(runAt ? { runAt } : {}) });
}

/**
 * Step 1 (webhook handler, inside the dispatch job, which holds the contact's ordering key: every earlier job of the
 * contact has finished). Inserts the row already marked `sending` (committed before the adapter is called), then sends
 * at once in this job instead of queueing a second one; the `provider.send` job only carries retries. Idempotent on messageId: a redelivered or replayed webhook, or this job
 * re-run after a crash, finds the row; if it is still unsent and no send job holds it, one is queued, so the adapter
 * is called again with the same idempotency key, exactly as after a crash inside `provider.send`.
 */
export async function relayOutbound(
  rt: OutboundRuntime,
  p: ProviderOutboundMessage,
  h: { signal: AbortSignal; log: Logger },
  confirmedBy: 'signature' | 'unconfirmed' = 'signature',
): Promise<void> {
  const { db } = rt;
  // The channel first, so the row is inserted already marked `sending` (one statement instead of three).
  const ch = await usableChannel(rt, p.locationId);
  const row = await outboundInserter(db).submit({
    message_id: p.messageId,
    location_id: p.locationId,
    contact_id: p.contactId,
    channel: p.type,
    payload: json(p),
    confirmed_by: confirmedBy,
    state: ch.ok ? 'sending' : 'received',
    attempts: ch.ok ? 1 : 0,
    channel_kind: ch.ok ? ch.adapter.kind : null,
    send_started_at: ch.ok ? sql<Date>`now()` : null,
  });
  if (!row) {
    const old = await db
      .selectFrom('provider_outbound')
      .select(['state', 'location_id', 'contact_id'])
      .where('message_id', '=', p.messageId)
      .executeTakeFirst();
    if (old && (old.state === 'received' || old.state === 'sending')) {
      const p2 = { messageId: p.messageId, locationId: old.location_id, contactId: old.contact_id };
      if ((await enqueueSend(rt, db, p2)).length) rt.notify();
    }
    return;
  }
  if (!ch.ok) return finishSend(rt, row.message_id, row.location_id, ch.failure, false);
  const retry = await sendRow(rt, { ...row, payload: p }, ch, h.signal, h.log);
  if (retry) {
    await enqueueSend(rt, db, p, new Date(Date.now() + retry.delayMs));
    rt.notify();
  }
}

type NewOutbound = InsertObject<Database, 'provider_outbound'> & { message_id: string };
type Inserted = Pick<Selectable<ProviderOutboundTable>, 'message_id' | 'location_id' | 'received_at' | 'attempts'>;
const outboundInserters = new WeakMap<Db, Batcher<NewOutbound, Inserted | undefined>>();

/**
 * Inserts new outbound rows, one statement for the dispatch jobs relaying together; each caller learns whether its
 * row is new (undefined: the message was already stored). A message twice in one batch is new only for the first.
 */
function outboundInserter(db: Db): Batcher<NewOutbound, Inserted | undefined> {
  let w = outboundInserters.get(db);
  if (!w) {
    w = new Batcher<NewOutbound, Inserted | undefined>(async (items) => {
      const rows = await db
        .insertInto('provider_outbound')
        .values(items)
        .onConflict((oc) => oc.column('message_id').doNothing())
        .returning(['message_id', 'location_id', 'received_at', 'attempts'])
        .execute();
      const by = new Map(rows.map((r) => [r.message_id, r]));
      return items.map((i) => {
        const r = by.get(i.message_id);
        by.delete(i.message_id);
        return r;
      });
    });
    outboundInserters.set(db, w);
  }
  return w;
}

type Usable = { ok: true; adapter: ChannelAdapter } | { ok: false; failure: SendResult & { outcome: 'failed' } };

/** The location's channel adapter, or the failed status to report when there is none to use. */
async function usableChannel(rt: OutboundRuntime, locationId: string): Promise<Usable> {
  let ch: Awaited<ReturnType<ChannelCache['get']>>;
  try {
    ch = await rt.channels.get(locationId);
  } catch (e) {
    return {
      ok: false,
      failure: {
        outcome: 'failed',
        error: {
          code: 'CHANNEL_CONFIG_INVALID',
          type: 'account',
          message: `the channel configured for this location cannot be used: ${errText(e)}`,
        },
      },
    };
  }
  if (ch?.channel.enabled) return { ok: true, adapter: ch.adapter };
  return {
    ok: false,
    failure: {
      outcome: 'failed',
      error: {
        code: 'CHANNEL_NOT_CONFIGURED',
        type: 'account',
        message: ch
          ? 'the channel of this location is disabled in ghl-bridge'
          : 'no channel is configured for this location in ghl-bridge',
      },
    },
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

export function toOutboundMessage(p: Record<string, unknown>): OutboundMessage {
  const emailTo = Array.isArray(p.emailTo)
    ? p.emailTo.filter((x): x is string => typeof x === 'string')
    : str(p.emailTo)
      ? [p.emailTo as string]
      : undefined;
  const att = Array.isArray(p.attachments) ? p.attachments.filter((x): x is string => typeof x === 'string') : [];
  const m: OutboundMessage = {
    messageId: p.messageId as string,
    locationId: p.locationId as string,
    contactId: p.contactId as string,
    channel: p.type === 'Email' ? 'Email' : 'SMS',
    attachments: att,
  };
  const opt = {
    phone: str(p.phone),
    message: typeof p.message === 'string' ? p.message : undefined,
    subject: str(p.subject),
    html: str(p.html),
    emailFrom: str(p.emailFrom),
    replyToAltId: str(p.replyToAltId),
    userId: str(p.userId),
  };
  for (const k of Object.keys(opt) as Array<keyof typeof opt>) {
    const v = opt[k];
    if (v !== undefined) m[k] = v;
  }
  if (emailTo?.length) m.emailTo = emailTo;
  return m;
}

/**
 * A status or confirmation job that gets no GHL rate-limit slot within this time gives its worker slot back and runs
 * again later without using up an attempt (the location's budget is spent or GHL answered 429): waiting happens in
 * the queue, not in a worker slot.
 */
export const RATE_WAIT_YIELD_MS = 2_000;

/**
 * Step 3: `provider.status`. PUTs the row's target status if it is ahead of what GHL last accepted (forward-only),
 * loops while a receipt moved the target meanwhile. GHL's 400 refusal shortly after a message is created →
 * RetryLaterError with a growing delay (not a failure) for PROVIDER_STATUS_REFUSAL_MAX_MS (docs/ghl-behaviour.md#message-status).
 */
export const statusJob = defineJob<MessageRef, OutboundRuntime>({
  kind: JOB_STATUS,
  payload: messagePayload,
  // One ordering key per message: its status jobs run one at a time, and a refusal-window retry never holds up
  // other messages of the contact.
  orderingKey: (p) => orderingKeys.messageStatus(p.messageId),
  scope: (p) => locationKey(p.locationId),
  priority: PRIORITY.live,
  maxAttempts: 20,
  perform: (p, _job, h) => reportStatus(h.deps, p.messageId, h),
});

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
  let q = trx
    .selectFrom('provider_outbound')
    .select(['message_id', 'status_target', 'location_id'])
    .where('location_id', '=', sel.locationId);
  if (sel.ghlMessageId) q = q.where('message_id', '=', sel.ghlMessageId);
  else if (sel.channelMessageId) q = q.where('channel_message_id', '=', sel.channelMessageId);
  else return false;
  const row = await q.forUpdate().executeTakeFirst();
  if (!row) return false;
  const merged = mergeStatus(row.status_target, status);
  if (!merged) return true;
  await trx
    .updateTable('provider_outbound')
    .set({
      status_target: merged,
      target_at: sql`now()`,
      updated_at: sql`now()`,
      ...(merged === 'failed'
        ? {
            error: json(
              error ?? { code: 'FAILED', type: 'provider', message: 'the channel reported the message as failed' },
            ),
          }
        : {}),
    })
    .where('message_id', '=', row.message_id)
    .execute();
  await statusJob.enqueue(trx, { messageId: row.message_id, locationId: row.location_id });
  return true;
}

export function receiptStatus(r: DeliveryReceipt): GhlStatus {
  return r.status;
}

type SendRow = Pick<
  Selectable<ProviderOutboundTable>,
  'message_id' | 'location_id' | 'received_at' | 'attempts' | 'payload'
>;

/** One send attempt of an unsent message. Returns when to try again, or null when the outcome is recorded. */
export async function sendOnce(
  rt: OutboundRuntime,
  messageId: string,
  signal: AbortSignal,
  log: Logger,
): Promise<{ delayMs: number; reason: string } | null> {
  const { db } = rt;
  const row = await db
    .selectFrom('provider_outbound')
    .selectAll()
    .where('message_id', '=', messageId)
    .executeTakeFirst();
  if (!row || (row.state !== 'received' && row.state !== 'sending')) return null;
  const ch = await usableChannel(rt, row.location_id);
  if (!ch.ok) {
    await finishSend(rt, row.message_id, row.location_id, ch.failure, false);
    return null;
  }
  const marked = await db
    .updateTable('provider_outbound')
    .set({
      state: 'sending',
      attempts: sql`attempts + 1`,
      channel_kind: ch.adapter.kind,
      send_started_at: sql`coalesce(send_started_at, now())`,
      updated_at: sql`now()`,
    })
    .where('message_id', '=', row.message_id)
    .where('state', 'in', ['received', 'sending'])
    .returningAll()
    .executeTakeFirst();
  if (!marked) return null;
  return sendRow(rt, marked, ch, signal, log);
}

/**
 * Calls the adapter for a row already marked `sending` (durably, before this call; `attempts` counts this attempt)
 * and records the outcome. Returns when to try again, or null when the outcome is recorded.
 */
async function sendRow(
  rt: OutboundRuntime,
  row: SendRow,
  ch: { adapter: ChannelAdapter },
  signal: AbortSignal,
  baseLog: Logger,
): Promise<{ delayMs: number; reason: string } | null> {
  const attempt = row.attempts;
  const log = baseLog.child({ messageId: row.message_id, locationId: row.location_id });
  rt.events.emit('send', {
    messageId: row.message_id,
    locationId: row.location_id,
    receivedAt: row.received_at.getTime(),
    at: Date.now(),
    attempt,
  });
  let msg: OutboundMessage | null = toOutboundMessage(row.payload);
  if (rt.decorate) {
    msg = await rt.decorate(msg);
    if (!msg) {
      // Created by the bridge itself (an echo): never sent back; GHL already shows its status.
      await rt.db
        .updateTable('provider_outbound')
        .set({ state: 'done', last_error: 'not sent: the bridge created this message (echo)', updated_at: sql`now()` })
        .where('message_id', '=', row.message_id)
        .execute();
      log.info('echo of a message the bridge created; not sent');
      return null;
    }
  }
  let result: SendResult;
  try {
    result = await ch.adapter.send(msg, signal);
  } catch (e) {
    if (signal.aborted) throw e;
    const retryable = e instanceof ChannelRetryableError;
    const reason = errText(e);
    if (e instanceof ChannelConfigError) {
      result = { outcome: 'failed', error: { code: 'CHANNEL_CONFIG', type: 'account', message: reason } };
    } else if (attempt >= rt.settings.sendMaxAttempts) {
      const code = retryable ? `CHANNEL_${e.reason.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}` : 'CHANNEL_ERROR';
      result = {
        outcome: 'failed',
        error: { code, type: 'provider', message: `not delivered after ${attempt} attempts: ${reason}` },
      };
    } else {
      const entry: SendLogEntry = {
        attempt,
        at: Date.now(),
        outcome: 'retry',
        code: retryable ? e.reason : 'error',
        error: reason.slice(0, 300),
      };
      await rt.db
        .updateTable('provider_outbound')
        .set({
          last_error: reason,
          updated_at: sql`now()`,
          send_log: sql`send_log || ${JSON.stringify([entry])}::jsonb`,
        })
        .where('message_id', '=', row.message_id)
        .execute();
      const delay =
        retryable && e.retryAfterMs !== undefined
          ? Math.max(e.retryAfterMs, 10)
          : backoff(rt.settings.retryBaseMs, attempt);
      log.warn({ attempt, delayMs: delay, err: reason }, 'channel send failed; retrying');
      rt.events.emit('attempt', {
        messageId: row.message_id,
        attempt,
        at: Date.now(),
        outcome: 'retry',
        code: retryable ? e.reason : 'error',
        error: reason,
      });
      return { delayMs: delay, reason: `channel send attempt ${attempt} failed: ${reason}` };
    }
  }
  if (result.outcome === 'failed')
    log.warn({ code: result.error.code, type: result.error.type }, 'channel refused the message');
  rt.events.emit('attempt', {
    messageId: row.message_id,
    attempt,
    at: Date.now(),
    outcome: result.outcome,
    code: result.outcome === 'failed' ? result.error.code : null,
    error: result.outcome === 'failed' ? result.error.message : null,
  });
  await finishSend(rt, row.message_id, row.location_id, result, ch.adapter.pollStatus !== undefined, {
    attempt,
    at: Date.now(),
    outcome: result.outcome,
    code: result.outcome === 'failed' ? result.error.code : null,
    error: result.outcome === 'failed' ? result.error.message.slice(0, 300) : null,
  });
  return null;
}

async function finishSend(
  rt: OutboundRuntime,
  messageId: string,
  locationId: string,
  result: SendResult,
  pollable: boolean,
  /** The channel attempt that produced `result` (none when no channel was called: missing config, etc.). */
  attempt?: SendLogEntry,
): Promise<void> {
  const logEntry = attempt ? JSON.stringify([attempt]) : null;
  const target: GhlStatus =
    result.outcome === 'delivered' ? 'delivered' : result.outcome === 'accepted' ? 'pending' : 'failed';
  const channelMessageId = result.outcome === 'failed' ? null : (result.channelMessageId ?? null);
  const error = result.outcome === 'failed' ? JSON.stringify(result.error) : null;
  const ref = { messageId, locationId };
  // One statement (atomic, one round trip): record the outcome, queue the status report and, for an unconfirmed send
  // on a channel that can be polled, the first poll. A receipt may have arrived before the send answer was recorded:
  // keep whichever is further. For the statuses a send can yield (pending, delivered, failed) mergeStatus reduces to
  // "replace nothing or pending".
  const statement = prepared<{ contact_id: string | null }>(sql`
    with u as (
      update provider_outbound set
        state = 'sent', channel_message_id = ${channelMessageId}::text,
        status_target = case when status_target is null or status_target = 'pending' then ${target}::text else status_target end,
        target_at = now(), sent_at = now(), updated_at = now(), last_error = null, error = coalesce(${error}::jsonb, error),
        send_log = send_log || coalesce(${logEntry}::jsonb, '[]'::jsonb)
      where message_id = ${messageId} and state in ('received', 'sending')
      returning status_target, contact_id
    ),
    s as (${statusJob.fromSql('u', ref)}),
    p as (${pollJob.fromSql('u', ref, { runAt: new Date(Date.now() + rt.settings.pollBaseMs) }, sql`u.status_target = 'pending' and ${pollable && channelMessageId !== null}::boolean`)}),
    n as (${jobsNotifySql(['s', 'p'])})
    select (select count(*) from n) as woke, (select contact_id from u limit 1) as contact_id`);
  const bus = rt.bus?.();
  if (!bus) await statement.execute(rt.db);
  else
    await rt.db.transaction().execute(async (trx) => {
      const r = await statement.execute(trx);
      const row = r.rows[0];
      if (!row || row.contact_id === null) return; // settled by an earlier run: its event exists
      const contactId = row.contact_id;
      if (result.outcome === 'failed')
        await bus.publish(trx, {
          type: 'message.failed',
          locationId,
          contactId,
          data: { messageId, locationId, contactId, code: result.error.code, message: result.error.message },
        });
      else
        await bus.publish(trx, {
          type: 'message.sent',
          locationId,
          contactId,
          data: {
            messageId,
            locationId,
            contactId,
            channelMessageId,
            status: target === 'delivered' ? 'delivered' : 'pending',
          },
        });
    });
  rt.notify();
}

const STATUS_COLUMNS = [
  'message_id',
  'location_id',
  'status_target',
  'ghl_status',
  'error',
  'target_at',
  'updated_at',
  'received_at',
  'status_attempts',
] as const;
type StatusRow = Pick<Selectable<ProviderOutboundTable>, (typeof STATUS_COLUMNS)[number]>;
const statusReaders = new WeakMap<Db, Batcher<string, StatusRow | undefined>>();

/** What a status job reads before calling GHL: one statement for the status jobs starting together. */
function statusReader(db: Db): Batcher<string, StatusRow | undefined> {
  let r = statusReaders.get(db);
  if (!r) {
    r = new Batcher<string, StatusRow | undefined>(async (ids) => {
      const rows = await db
        .selectFrom('provider_outbound')
        .select(STATUS_COLUMNS)
        .where('message_id', '=', sql<string>`any(${ids}::text[])`)
        .execute();
      const by = new Map(rows.map((x) => [x.message_id, x]));
      return ids.map((id) => by.get(id));
    });
    statusReaders.set(db, r);
  }
  return r;
}

const reportWriters = new WeakMap<
  Db,
  Batcher<{ messageId: string; status: GhlStatus }, GhlStatus | null | undefined>
>();

/**
 * Records what GHL accepted, group-committed across the status jobs finishing together: one statement per batch.
 * Resolves with each message's target status as it stands now (undefined: the row is gone).
 */
function reportWriter(db: Db): Batcher<{ messageId: string; status: GhlStatus }, GhlStatus | null | undefined> {
  let w = reportWriters.get(db);
  if (!w) {
    w = new Batcher(async (items) => {
      const r = await sql<{ message_id: string; status_target: GhlStatus | null }>`
        update provider_outbound p set ghl_status = u.status, state = u.state, reported_at = now(), updated_at = now(),
          last_error = null
        from unnest(${items.map((i) => i.messageId)}::text[], ${items.map((i) => i.status)}::text[],
          ${items.map((i) => stateFor(i.status))}::text[]) as u(message_id, status, state)
        where p.message_id = u.message_id
        returning p.message_id, p.status_target`.execute(db);
      const now = new Map(r.rows.map((x) => [x.message_id, x.status_target]));
      return items.map((i) => now.get(i.messageId));
    });
    reportWriters.set(db, w);
  }
  return w;
}

async function reportStatus(
  rt: OutboundRuntime,
  messageId: string,
  h: { signal: AbortSignal; log: Logger },
): Promise<void> {
  const { db } = rt;
  for (let round = 0; round < 5; round++) {
    const row = await statusReader(db).submit(messageId);
    if (!row?.status_target) return;
    const target = row.status_target;
    if (!mergeStatus(row.ghl_status, target)) return;
    const body: { status: GhlStatus; error?: ChannelError } = { status: target };
    if (target === 'failed')
      body.error = (row.error as ChannelError | null) ?? {
        code: 'FAILED',
        type: 'provider',
        message: 'not delivered',
      };
    rt.events.emit('status', {
      messageId: row.message_id,
      status: target,
      since: (row.target_at ?? row.updated_at).getTime(),
      at: Date.now(),
    });
    try {
      await rt.ghl().messages.updateStatus(row.message_id, body, {
        installation: { locationId: row.location_id },
        lane: 'live',
        signal: h.signal,
        maxWaitMs: RATE_WAIT_YIELD_MS,
      });
    } catch (e) {
      if (!(e instanceof GhlApiError) || h.signal.aborted) throw e;
      const reason = errText(e);
      if (e.status === 400 && /cannot update message status/i.test(e.message)) {
        // GHL already holds a status we may not move away from: nothing more to report.
        await db
          .updateTable('provider_outbound')
          .set({ state: stateFor(target), last_error: reason, updated_at: sql`now()` })
          .where('message_id', '=', row.message_id)
          .execute();
        h.log.warn(
          { messageId: row.message_id, status: target, err: reason },
          'GHL refused the status transition; keeping its status',
        );
        return;
      }
      const n = row.status_attempts + 1;
      await db
        .updateTable('provider_outbound')
        .set({ status_attempts: n, last_error: reason, updated_at: sql`now()` })
        .where('message_id', '=', row.message_id)
        .execute();
      if (e.status === 400) {
        if (Date.now() - row.received_at.getTime() < rt.settings.statusRefusalMaxMs) {
          throw new RetryLaterError(
            Math.min(250 * 2 ** Math.min(n, 10), 10_000),
            `GHL refused the status update (attempt ${n}); retrying: ${reason}`,
          );
        }
        throw new PermanentJobError(
          `GHL refused the status update for ${Math.round(rt.settings.statusRefusalMaxMs / 1000)} s: ${reason}`,
        );
      }
      if (e.status === 404 || e.status === 403) throw new PermanentJobError(reason);
      throw e;
    }
    const after = await reportWriter(db).submit({ messageId: row.message_id, status: target });
    rt.events.emit('reported', { messageId: row.message_id, status: target, at: Date.now() });
    // Another round only when a receipt moved the target while GHL was being called.
    if (after === undefined || after === target) return;
  }
}

/**
 * `provider.poll`: for channels without push receipts (Cast). Polls with doubling delays (PROVIDER_POLL_BASE_MS, capped
 * at 5 min) until a final status or PROVIDER_POLL_GIVE_UP_MS after the send; then stops and leaves the message
 * `pending` in GHL ("delivery unknown"; a later pushed receipt still applies).
 */
export const pollJob = defineJob<MessageRef, OutboundRuntime>({
  kind: JOB_POLL,
  payload: messagePayload,
  dedupeKey: (p) => `${JOB_POLL}:${p.messageId}`,
  scope: (p) => locationKey(p.locationId),
  priority: PRIORITY.normal,
  maxAttempts: 20,
  perform: (p, _job, h) => poll(h.deps, p.messageId, h),
});

async function poll(rt: OutboundRuntime, messageId: string, h: JobContext<OutboundRuntime>): Promise<void> {
  const { db } = rt;
  const row = await db
    .selectFrom('provider_outbound')
    .selectAll()
    .where('message_id', '=', messageId)
    .executeTakeFirst();
  if (!row?.channel_message_id || (row.status_target && row.status_target !== 'pending')) return;
  const giveUp = async (why: string) => {
    await db
      .updateTable('provider_outbound')
      .set({ last_error: why, updated_at: sql`now()` })
      .where('message_id', '=', row.message_id)
      .execute();
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
    throw new RetryLaterError(
      e instanceof ChannelRetryableError && e.retryAfterMs !== undefined ? e.retryAfterMs : d,
      `status poll failed: ${errText(e)}`,
    );
  }
  if (!receipt) return giveUp('delivery unknown: the channel does not know this message');
  if (receipt.status === 'pending') {
    const d = again();
    if (d === false)
      return giveUp(
        `delivery unconfirmed ${Math.round(rt.settings.pollGiveUpMs / 60_000)} min after sending; left pending in GHL`,
      );
    throw new RetryLaterError(d, 'still pending at the channel');
  }
  await db.transaction().execute(async (trx) => {
    await applyStatus(
      trx,
      { locationId: row.location_id, ghlMessageId: row.message_id },
      receiptStatus(receipt),
      receipt.error,
    );
  });
  rt.notify();
}
