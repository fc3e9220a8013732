import { sql } from 'kysely';
import { z } from 'zod';
import type { Db } from '../../infra/db/index.js';
import type { Logger } from '../../infra/log/logger.js';
import { defineJob, PRIORITY, RetryLaterError, type DbOrTrx, type JobContext } from '../../infra/queue/index.js';
import type { GhlClient } from '../../platform/ghl/client.js';
import { GhlApiError } from '../../platform/ghl/errors.js';
import { locationKey } from '../../platform/keys.js';
import type { WorkflowEndpoints } from './endpoints.js';
import { normaliseDirection, normaliseStatus, parseDuration, parseTime, type MappedCall } from './mapping.js';
import {
  completeCall,
  emitEvent,
  eventPayload,
  json,
  mayHaveRecording,
  type CallRow,
  type CompletedSink,
} from './records.js';
import type { IntegrationType, TranscriptSentence } from './tables.js';

export const JOB_PROCESS = 'calls.process';
export const JOB_ENRICH = 'calls.enrich';

export interface CallsSettings {
  transcriptWaitMs: number;
  transcriptRetryBaseMs: number;
  /** Messages of call type looked at when the payload names no message (nearest in time wins). */
  nearestWindow: number;
  /** CALLS_MATCH_WINDOW_SEC in ms: how far apart (beyond the call's duration) two sources of one call may be. */
  matchWindowMs: number;
  /** CALLS_MESSAGE_GRACE_MS: how long a call without GHL's message id waits for it before it is completed. */
  messageGraceMs: number;
}

export interface CallsRuntime {
  db: Db;
  log: Logger;
  ghl: () => GhlClient;
  endpoints: WorkflowEndpoints;
  settings: CallsSettings;
  notify: () => void;
  /** Counts GHL calls made for calls (metrics). */
  countCall: (op: string) => void;
  /** Publishes call.completed to the event subscriptions (once per call, in the completing transaction). */
  onCompleted: CompletedSink;
}

/** Jobs about one contact's calls run one at a time: merging a workflow payload and an app event never races. */
export const callOrderingKey = (locationId: string, contactId: string) => `calls:${locationId}:${contactId}`;

const isCallType = (t: unknown) => typeof t === 'string' && /CALL|IVR|VOICEMAIL/i.test(t);
export const isCallMessageEvent = (p: Record<string, unknown>) => isCallType(p.messageType);

/** Stores a mapped workflow payload or a call app event and enqueues its processing, in the caller's transaction. */
export async function storeInbox(
  trx: DbOrTrx,
  o: {
    locationId: string;
    source: 'workflow' | 'app';
    payload: Record<string, unknown>;
    mapped?: MappedCall | null;
    state?: 'received' | 'unmappable' | 'forged';
    reason?: string | null;
    dedupeKey?: string | null;
    contactId?: string | null;
  },
): Promise<{ id: number; duplicate: boolean }> {
  const row = await trx
    .insertInto('calls_inbox')
    .values({
      location_id: o.locationId,
      source: o.source,
      payload: json(o.payload),
      mapped: o.mapped ? json(o.mapped) : null,
      state: o.state ?? 'received',
      reason: o.reason ?? null,
      dedupe_key: o.dedupeKey ?? null,
    })
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!row) return { id: 0, duplicate: true };
  const id = Number(row.id);
  if ((o.state ?? 'received') === 'received' && o.contactId)
    await processJob.enqueue(
      trx,
      { inboxId: id },
      { orderingKey: callOrderingKey(o.locationId, o.contactId), scope: locationKey(o.locationId) },
    );
  return { id, duplicate: false };
}

/** What GHL's message (or its app event) says about a call; authoritative for status, duration and direction. */
interface GhlCallFacts {
  messageId: string;
  conversationId: string | null;
  direction: 'inbound' | 'outbound' | null;
  status: string | null;
  durationSec: number | null;
  userId: string | null;
  at: Date | null;
  from: string | null;
  to: string | null;
}

const s = (v: unknown): string | null => (typeof v === 'string' && v ? v : null);

function factsOfMessage(m: Record<string, unknown>): GhlCallFacts {
  const meta = (m.meta ?? {}) as Record<string, unknown>;
  const call = (m.call ?? {}) as Record<string, unknown>;
  const st = s(meta.callStatus) ?? s(m.callStatus);
  return {
    messageId: String(m.id ?? m.messageId),
    conversationId: s(m.conversationId),
    direction: s(m.direction) ? normaliseDirection(String(m.direction)) : null,
    status: st ? normaliseStatus(st) : null,
    durationSec: parseDuration(meta.callDuration ?? m.callDuration),
    userId: s(m.userId),
    at: parseTime(m.dateAdded),
    from: s(call.from),
    to: s(call.to),
  };
}

/** One GHL call message, summarised (contact import enrichment, issue 14). */
export interface CallSummary {
  messageId: string;
  at: string | null;
  direction: 'inbound' | 'outbound' | null;
  status: string | null;
  durationSeconds: number | null;
  /**
   * Whether GHL can hold a recording (and so a transcript) of this call: it was answered (or reached voicemail) or
   * lasted longer than 0 s. Fetching the recording itself is the calls API's job (`/v1/…/calls`).
   */
  recordingExpected: boolean;
}

/** A call message as `GET /conversations/{id}/messages?type=TYPE_CALL` returns it → its summary. */
export function summariseCallMessage(m: Record<string, unknown>): CallSummary {
  const f = factsOfMessage(m);
  return {
    messageId: f.messageId,
    at: f.at ? f.at.toISOString() : null,
    direction: f.direction,
    status: f.status,
    durationSeconds: f.durationSec,
    recordingExpected: mayHaveRecording(f.status, f.durationSec),
  };
}

class Forged extends Error {}

/**
 * `calls.process`: turns one inbox entry into (part of) a call record. A workflow payload is confirmed through the
 * API first — its message (`GET /conversations/messages/{id}`: exists, this location, this contact, a call) or,
 * without one, the contact's conversation and its call messages (nearest in time) — since its URL token only proves
 * knowledge of the URL; a payload that fails is kept as `forged` and emits nothing. App events are signed: no check.
 */
export const processJob = defineJob<{ inboxId: number }, CallsRuntime>({
  kind: JOB_PROCESS,
  payload: z.object({ inboxId: z.number().int() }),
  priority: PRIORITY.bulk,
  maxAttempts: 12,
  perform: (p, _job, h) => processInbox(h.deps, p.inboxId, h),
  onFailed: async (p, _job, err, h) => {
    await h.db
      .updateTable('calls_inbox')
      .set({ state: 'failed', reason: String((err as Error)?.message ?? err).slice(0, 1000), updated_at: sql`now()` })
      .where('id', '=', p.inboxId)
      .where('state', '=', 'received')
      .execute();
  },
});

async function processInbox(rt: CallsRuntime, inboxId: number, h: JobContext<CallsRuntime>): Promise<void> {
  const { db } = rt;
  const row = await db.selectFrom('calls_inbox').selectAll().where('id', '=', inboxId).executeTakeFirst();
  if (!row || row.state !== 'received') return;
  const loc = row.location_id;
  const opts = { installation: { locationId: loc }, lane: 'bulk' as const, signal: h.signal, maxWaitMs: 2000 };
  const ghl = rt.ghl();
  let facts: GhlCallFacts | null = null;
  let mapped: MappedCall;
  let contactId: string;
  try {
    if (row.source === 'app') {
      const p = row.payload;
      facts = factsOfMessage(p);
      contactId = String(p.contactId);
      mapped = {
        contactId,
        locationId: loc,
        messageId: facts.messageId,
        direction: facts.direction,
        status: null,
        disposition: null,
        durationSec: null,
        userId: null,
        from: null,
        to: null,
        startedAt: null,
        endedAt: null,
      };
    } else {
      mapped = reviveMapped(row.mapped);
      contactId = mapped.contactId;
      facts = await confirmWorkflow(rt, ghl, loc, mapped, row.received_at, opts);
    }
  } catch (e) {
    if (!(e instanceof Forged)) throw e;
    await db
      .updateTable('calls_inbox')
      .set({ state: 'forged', reason: e.message.slice(0, 1000), updated_at: sql`now()` })
      .where('id', '=', inboxId)
      .execute();
    h.log.warn({ locationId: loc, inboxId, reason: e.message }, 'workflow call not confirmed by GHL; nothing emitted');
    return;
  }
  const integrationType = await rt.endpoints.integrationType(loc);
  await db.transaction().execute(async (trx) => {
    const call = await mergeCall(rt, trx, loc, contactId, integrationType, row.source, mapped, facts, row.received_at);
    await trx
      .updateTable('calls_inbox')
      .set({ state: 'done', call_id: Number(call.row.id), reason: null, updated_at: sql`now()` })
      .where('id', '=', inboxId)
      .execute();
  });
  rt.notify();
}

function reviveMapped(v: Record<string, unknown> | null): MappedCall {
  const m = (v ?? {}) as unknown as MappedCall & { startedAt: string | null; endedAt: string | null };
  return {
    ...m,
    startedAt: m.startedAt ? new Date(m.startedAt) : null,
    endedAt: m.endedAt ? new Date(m.endedAt) : null,
  };
}

const notFound = (e: unknown) => e instanceof GhlApiError && (e.status === 400 || e.status === 404 || e.status === 422);

async function confirmWorkflow(
  rt: CallsRuntime,
  ghl: GhlClient,
  loc: string,
  m: MappedCall,
  receivedAt: Date,
  opts: Parameters<GhlClient['messages']['get']>[1],
): Promise<GhlCallFacts | null> {
  if (m.messageId) {
    let msg: Record<string, unknown>;
    try {
      rt.countCall('messages.get');
      const r = (await ghl.messages.get(m.messageId, opts)) as unknown as Record<string, unknown>;
      msg = (r.message && typeof r.message === 'object' ? r.message : r) as Record<string, unknown>;
    } catch (e) {
      if (notFound(e)) throw new Forged(`message_not_found: GHL has no message ${m.messageId} in this location`);
      throw e;
    }
    if (msg.locationId !== loc) throw new Forged(`other_location: message ${m.messageId} belongs to another location`);
    if (msg.contactId !== m.contactId)
      throw new Forged(`other_contact: message ${m.messageId} belongs to another contact`);
    if (!isCallType(msg.messageType)) throw new Forged(`not_a_call: message ${m.messageId} is ${msg.messageType}`);
    return factsOfMessage(msg);
  }
  // No message id: the contact's conversation (its existence in this location proves the contact), then its call
  // messages, nearest in time to the call.
  rt.countCall('conversations.search');
  const conv = (await ghl.conversations.search({ locationId: loc, contactId: m.contactId, limit: 1 }, opts))
    .conversations?.[0];
  if (!conv || (conv.contactId && conv.contactId !== m.contactId)) {
    try {
      rt.countCall('contacts.get');
      const c = (await ghl.contacts.get(m.contactId, opts)) as { contact?: { locationId?: string } };
      if (c.contact?.locationId && c.contact.locationId !== loc)
        throw new Forged(`other_location: contact ${m.contactId} belongs to another location`);
    } catch (e) {
      if (notFound(e)) throw new Forged(`contact_not_found: GHL has no contact ${m.contactId} in this location`);
      throw e;
    }
    return null;
  }
  return nearestCallMessage(rt, ghl, conv.id, callTime(m, receivedAt), m, opts);
}

/** When a workflow call happened, as far as its payload says (else when it arrived). */
const callTime = (m: Pick<MappedCall, 'startedAt' | 'endedAt'>, receivedAt: Date) =>
  (m.startedAt ?? m.endedAt ?? receivedAt).getTime();

/**
 * The match rule of a call without a GHL message id: the same contact, a compatible direction (equal, or unknown on
 * either side), and times no further apart than CALLS_MATCH_WINDOW_SEC plus the call's duration (GHL dates a call
 * message at its start; a workflow fires at its end).
 */
function withinMatch(
  rt: CallsRuntime,
  a: { at: number; direction: string | null; durationSec: number | null },
  b: { at: number; direction: string | null; durationSec: number | null },
): boolean {
  if (a.direction && b.direction && a.direction !== b.direction) return false;
  const slack = rt.settings.matchWindowMs + 1000 * Math.max(a.durationSec ?? 0, b.durationSec ?? 0);
  return Math.abs(a.at - b.at) <= slack;
}

/** The contact's call message nearest in time to `at` that matches (withinMatch), from its conversation. */
async function nearestCallMessage(
  rt: CallsRuntime,
  ghl: GhlClient,
  conversationId: string,
  at: number,
  m: { direction: string | null; durationSec: number | null },
  opts: Parameters<GhlClient['messages']['get']>[1],
): Promise<GhlCallFacts | null> {
  rt.countCall('messages.list');
  const page = await ghl.messages.list(conversationId, { type: 'TYPE_CALL', limit: rt.settings.nearestWindow }, opts);
  let best: GhlCallFacts | null = null;
  let bestGap = Infinity;
  for (const x of (page.messages ?? []) as unknown as Array<Record<string, unknown>>) {
    if (!isCallType(x.messageType)) continue;
    const f = factsOfMessage(x);
    if (!f.at) continue;
    const gap = Math.abs(f.at.getTime() - at);
    if (gap < bestGap && withinMatch(rt, { at, ...m }, { ...f, at: f.at.getTime() })) [best, bestGap] = [f, gap];
  }
  return best ? { ...best, conversationId } : null;
}

/**
 * Merges what one source knows into the call's record (one record per GHL message id). GHL's facts (the message,
 * an app event) win for status, duration and direction; the workflow adds disposition, user and times.
 */
async function mergeCall(
  rt: CallsRuntime,
  trx: DbOrTrx,
  loc: string,
  contactId: string,
  integrationType: IntegrationType,
  source: 'workflow' | 'app',
  m: MappedCall,
  f: GhlCallFacts | null,
  receivedAt: Date,
): Promise<{ row: CallRow }> {
  const messageId = f?.messageId ?? m.messageId ?? null;
  const at = source === 'app' ? (f?.at ?? receivedAt) : (m.startedAt ?? m.endedAt ?? f?.at ?? receivedAt);
  const e = await findCall(rt, trx, loc, contactId, messageId, {
    at: at.getTime(),
    direction: f?.direction ?? m.direction,
    durationSec: f?.durationSec ?? m.durationSec,
  });
  const pick = <T>(...v: Array<T | null | undefined>): T | null => v.find((x) => x !== null && x !== undefined) ?? null;
  const durationSec = pick(f?.durationSec, m.durationSec, e?.duration_sec);
  const startedAt = pick(m.startedAt, e?.started_at, f?.at);
  const endedAt = pick(
    m.endedAt,
    e?.ended_at,
    startedAt && durationSec !== null ? new Date(startedAt.getTime() + durationSec * 1000) : null,
  );
  const values = {
    conversation_id: pick(f?.conversationId, e?.conversation_id),
    direction: pick(f?.direction, m.direction, e?.direction),
    from_number: pick(m.from, f?.from, e?.from_number),
    to_number: pick(m.to, f?.to, e?.to_number),
    status: pick(f?.status, m.status, e?.status),
    disposition: pick(m.disposition, e?.disposition),
    duration_sec: durationSec,
    user_id: pick(m.userId, f?.userId, e?.user_id),
    started_at: startedAt,
    ended_at: endedAt,
  };
  const sources = [...new Set([...(e?.sources ?? []), source])];
  let row: CallRow;
  if (e) {
    // A record without GHL's message id that this source names the message of: the same call, now identified.
    const adopt = !e.message_id && !!messageId;
    const expect = adopt && mayHaveRecording(values.status, values.duration_sec);
    row = (await trx
      .updateTable('calls')
      .set({
        ...values,
        sources: json(sources),
        updated_at: sql`now()`,
        ...(adopt ? { message_id: messageId } : {}),
        ...(expect ? { transcript_state: 'pending' as const, transcript_reason: null } : {}),
        ...(adopt && !expect && e.transcript_state === 'pending'
          ? {
              transcript_state: 'not_expected' as const,
              transcript_reason: `no recording for a ${values.status ?? 'zero-length'} call`,
            }
          : {}),
      })
      .where('id', '=', e.id)
      .returningAll()
      .executeTakeFirst())!;
    const id = Number(row.id);
    if (expect)
      await enrichJob.enqueue(
        trx,
        { callId: id },
        { scope: locationKey(loc), dedupeKey: `${JOB_ENRICH}:${id}:${messageId}`, runAt: new Date() },
      );
    else if (adopt && !row.completed_at) await completeCall(trx, id, rt.onCompleted);
  } else {
    // Without GHL's message id the call waits (CALLS_MESSAGE_GRACE_MS) for its app event or a second look-up.
    const expect = !messageId || mayHaveRecording(values.status, values.duration_sec);
    row = (await trx
      .insertInto('calls')
      .values({
        location_id: loc,
        contact_id: contactId,
        message_id: messageId,
        integration_type: integrationType,
        ...values,
        sources: json(sources),
        transcript_state: expect ? 'pending' : 'not_expected',
        transcript_reason: !messageId
          ? `waiting up to ${Math.round(rt.settings.messageGraceMs / 1000)} s for GHL's call message`
          : expect
            ? null
            : `no recording for a ${values.status ?? 'zero-length'} call`,
      })
      .returningAll()
      .executeTakeFirst())!;
    const id = Number(row.id);
    if (expect)
      await enrichJob.enqueue(
        trx,
        { callId: id },
        {
          scope: locationKey(loc),
          dedupeKey: `${JOB_ENRICH}:${id}`,
          runAt: new Date(Date.now() + (messageId ? 0 : rt.settings.messageGraceMs)),
        },
      );
    else await completeCall(trx, id, rt.onCompleted);
  }
  if (row.disposition && row.disposition !== e?.disposition)
    await emitEvent(
      trx,
      row,
      'call.disposition',
      `${Number(row.id)}:disposition:${row.disposition}`,
      eventPayload(row),
    );
  return { row };
}

/**
 * The record this call is, in one locked statement: the record under its GHL message id; else, with a message id, a
 * record of the contact still without one, or, without, any record of the contact — nearest in time among those
 * within the match rule (withinMatch). Jobs of one contact run one at a time (callOrderingKey); the row lock covers
 * the enrich job.
 */
async function findCall(
  rt: CallsRuntime,
  trx: DbOrTrx,
  loc: string,
  contactId: string,
  messageId: string | null,
  c: { at: number; direction: string | null; durationSec: number | null },
): Promise<CallRow | undefined> {
  const rows = await trx
    .selectFrom('calls')
    .selectAll()
    .where('location_id', '=', loc)
    .where((eb) =>
      messageId
        ? eb.or([
            eb('message_id', '=', messageId),
            eb.and([eb('contact_id', '=', contactId), eb('message_id', 'is', null)]),
          ])
        : eb('contact_id', '=', contactId),
    )
    .orderBy('id', 'desc')
    .limit(20)
    .forUpdate()
    .execute();
  const exact = messageId ? rows.find((r) => r.message_id === messageId) : undefined;
  if (exact) return exact;
  let best: CallRow | undefined;
  let bestGap = Infinity;
  for (const r of rows) {
    if (r.contact_id !== contactId) continue;
    const at = (r.started_at ?? r.ended_at ?? r.created_at).getTime();
    const gap = Math.abs(at - c.at);
    if (gap < bestGap && withinMatch(rt, c, { at, direction: r.direction, durationSec: r.duration_sec }))
      [best, bestGap] = [r, gap];
  }
  return best;
}

/**
 * A call without GHL's message id whose grace (CALLS_MESSAGE_GRACE_MS) is over and that no app event identified: one
 * more look at the contact's call messages (GHL may list it by now); found and free, the call is identified and
 * enriched as usual; else it is completed without a message, with the reason.
 */
async function settleWithoutMessage(
  rt: CallsRuntime,
  row: CallRow,
  opts: Parameters<GhlClient['messages']['get']>[1],
): Promise<void> {
  const ghl = rt.ghl();
  const loc = row.location_id;
  let convId = row.conversation_id;
  if (!convId) {
    rt.countCall('conversations.search');
    convId =
      (await ghl.conversations.search({ locationId: loc, contactId: row.contact_id, limit: 1 }, opts))
        .conversations?.[0]?.id ?? null;
  }
  const at = (row.started_at ?? row.ended_at ?? row.created_at).getTime();
  const f = convId
    ? await nearestCallMessage(rt, ghl, convId, at, { direction: row.direction, durationSec: row.duration_sec }, opts)
    : null;
  const id = Number(row.id);
  await rt.db.transaction().execute(async (trx) => {
    const cur = await trx.selectFrom('calls').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    // Identified meanwhile (an app event): its own enrich job carries on.
    if (!cur || cur.message_id || cur.transcript_state !== 'pending') return;
    const taken =
      f &&
      (await trx
        .selectFrom('calls')
        .select('id')
        .where('location_id', '=', loc)
        .where('message_id', '=', f.messageId)
        .executeTakeFirst());
    if (f && !taken) {
      const status = f.status ?? cur.status;
      const durationSec = f.durationSec ?? cur.duration_sec;
      const expect = mayHaveRecording(status, durationSec);
      await trx
        .updateTable('calls')
        .set({
          message_id: f.messageId,
          conversation_id: f.conversationId ?? cur.conversation_id,
          direction: f.direction ?? cur.direction,
          status,
          duration_sec: durationSec,
          transcript_state: expect ? 'pending' : 'not_expected',
          transcript_reason: expect ? null : `no recording for a ${status ?? 'zero-length'} call`,
          updated_at: sql`now()`,
        })
        .where('id', '=', id)
        .execute();
      if (expect)
        await enrichJob.enqueue(
          trx,
          { callId: id },
          { scope: locationKey(loc), dedupeKey: `${JOB_ENRICH}:${id}:${f.messageId}`, runAt: new Date() },
        );
      else await completeCall(trx, id, rt.onCompleted);
      return;
    }
    await trx
      .updateTable('calls')
      .set({
        transcript_state: 'not_expected',
        transcript_reason: `no call message found in GHL for this contact within ${Math.round(rt.settings.matchWindowMs / 1000)} s of the call`,
        updated_at: sql`now()`,
      })
      .where('id', '=', id)
      .execute();
    await completeCall(trx, id, rt.onCompleted);
  });
  rt.notify();
}

/** GHL's transcript answer → sentences: a list of sentence objects (or one, as the spec describes it). */
export function parseTranscript(body: unknown): TranscriptSentence[] {
  const list: unknown[] = Array.isArray(body)
    ? body
    : body && typeof body === 'object'
      ? Array.isArray((body as { transcription?: unknown }).transcription)
        ? ((body as { transcription: unknown[] }).transcription ?? [])
        : 'transcript' in body
          ? [body]
          : []
      : [];
  const num = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : null);
  return list
    .filter(
      (x): x is Record<string, unknown> =>
        !!x && typeof x === 'object' && typeof (x as { transcript?: unknown }).transcript === 'string',
    )
    .map((x, i) => ({
      index: num(x.sentenceIndex) ?? i + 1,
      speaker: num(x.mediaChannel),
      startMs: num(x.startTime),
      endMs: num(x.endTime),
      text: String(x.transcript),
      confidence: num(x.confidence),
    }))
    .sort((a, b) => a.index - b.index);
}

/**
 * `calls.enrich`: the transcript (`GET …/transcription`). GHL produces it after the call: a 404 or an empty answer
 * is asked again with backoff (CALLS_TRANSCRIPT_RETRY_BASE_MS doubling, at most 10 min) until
 * CALLS_TRANSCRIPT_WAIT_MS after the call, then the call is kept without it, with the reason. The text is the
 * sentences joined (the `/download` variant would cost a call more for the same words). The recording is not copied:
 * the record keeps its reference and the API streams it on demand.
 */
export const enrichJob = defineJob<{ callId: number }, CallsRuntime>({
  kind: JOB_ENRICH,
  payload: z.object({ callId: z.number().int() }),
  priority: PRIORITY.bulk,
  maxAttempts: 15,
  perform: (p, _job, h) => enrich(h.deps, p.callId, h),
  onFailed: async (p, _job, err, h) => {
    await h.db
      .updateTable('calls')
      .set({
        transcript_state: 'unavailable',
        transcript_reason: `transcript fetch failed: ${String((err as Error)?.message ?? err)}`.slice(0, 1000),
        updated_at: sql`now()`,
      })
      .where('id', '=', p.callId)
      .where('transcript_state', '=', 'pending')
      .execute();
    await completeCall(h.db, p.callId, h.deps.onCompleted);
  },
});

async function enrich(rt: CallsRuntime, callId: number, h: JobContext<CallsRuntime>): Promise<void> {
  const { db } = rt;
  const row = await db.selectFrom('calls').selectAll().where('id', '=', callId).executeTakeFirst();
  if (!row) return;
  if (row.transcript_state !== 'pending') {
    if (!row.completed_at) await db.transaction().execute((trx) => completeCall(trx, callId, rt.onCompleted));
    return;
  }
  const opts = {
    installation: { locationId: row.location_id },
    lane: 'bulk' as const,
    signal: h.signal,
    maxWaitMs: 2000,
  };
  if (!row.message_id) return settleWithoutMessage(rt, row, opts);
  let sentences: TranscriptSentence[] = [];
  let notReady = '';
  try {
    rt.countCall('messages.transcription');
    sentences = parseTranscript(await rt.ghl().messages.transcription(row.location_id, row.message_id!, opts));
    if (!sentences.length) notReady = 'GHL answered an empty transcript';
  } catch (e) {
    if (!notFound(e)) throw e;
    notReady = `GHL answered ${(e as GhlApiError).status}: ${(e as GhlApiError).message}`;
  }
  if (!notReady) {
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('calls')
        .set({
          transcript_state: 'ready',
          transcript: json(sentences),
          transcript_text: sentences.map((x) => x.text).join('\n'),
          transcript_reason: null,
          transcript_attempts: sql`transcript_attempts + 1`,
          updated_at: sql`now()`,
        })
        .where('id', '=', callId)
        .execute();
      await completeCall(trx, callId, rt.onCompleted);
    });
    return;
  }
  const tries = row.transcript_attempts + 1;
  // Counted from when the bridge learned of the call (its own clock; GHL's times may be skewed).
  const since = row.created_at.getTime();
  const delay = Math.min(600_000, rt.settings.transcriptRetryBaseMs * 2 ** (tries - 1));
  if (Date.now() + delay - since > rt.settings.transcriptWaitMs) {
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('calls')
        .set({
          transcript_state: 'unavailable',
          transcript_attempts: tries,
          transcript_reason:
            `no transcript within ${Math.round(rt.settings.transcriptWaitMs / 1000)} s of the call (${tries} tries; last: ${notReady})`.slice(
              0,
              1000,
            ),
          updated_at: sql`now()`,
        })
        .where('id', '=', callId)
        .execute();
      await completeCall(trx, callId, rt.onCompleted);
    });
    return;
  }
  await db
    .updateTable('calls')
    .set({ transcript_attempts: tries, transcript_reason: `waiting for GHL: ${notReady}`.slice(0, 1000) })
    .where('id', '=', callId)
    .execute();
  throw new RetryLaterError(delay, `transcript not ready (${notReady}); asking again in ${delay} ms`);
}
