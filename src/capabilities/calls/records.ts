import { createHmac, timingSafeEqual } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import type { DbOrTrx } from '../../infra/queue/index.js';
import type { CallsTable, IntegrationType, TranscriptSentence, TranscriptState } from './tables.js';
import './tables.js';

export const json = (v: unknown) => sql<string>`${JSON.stringify(v)}::jsonb`;
export type CallRow = Selectable<CallsTable>;

/** Signs recording links (HMAC-SHA256 over location, call and expiry) with a key derived from the key ring. */
export class LinkSigner {
  constructor(
    private readonly key: Buffer,
    readonly ttlSec: number,
  ) {}

  sign(locationId: string, callId: number, expiresAt: number): string {
    return createHmac('sha256', this.key).update(`${locationId}\n${callId}\n${expiresAt}`).digest('base64url');
  }

  link(base: string, locationId: string, callId: number, now = Date.now()): { url: string; expiresAt: Date } {
    const exp = Math.floor(now / 1000) + this.ttlSec;
    return { url: `${base}?expires=${exp}&sig=${this.sign(locationId, callId, exp)}`, expiresAt: new Date(exp * 1000) };
  }

  verify(locationId: string, callId: number, expires: string | undefined, sig: string | undefined): boolean {
    if (!expires || !sig || !/^\d{1,12}$/.test(expires) || sig.length > 100) return false;
    const exp = Number(expires);
    if (exp * 1000 < Date.now()) return false;
    const want = Buffer.from(this.sign(locationId, callId, exp));
    const got = Buffer.from(sig);
    return want.length === got.length && timingSafeEqual(want, got);
  }
}

export interface CallView {
  id: number;
  locationId: string;
  contactId: string;
  messageId: string | null;
  conversationId: string | null;
  integrationType: IntegrationType;
  direction: string | null;
  from: string | null;
  to: string | null;
  status: string | null;
  disposition: string | null;
  durationSec: number | null;
  userId: string | null;
  startedAt: Date | null;
  endedAt: Date | null;
  recording: { url: string; signedUrl: string; signedUrlExpiresAt: Date } | null;
  transcript: {
    state: TranscriptState;
    reason: string | null;
    sentences: TranscriptSentence[];
    text: string | null;
  };
  sources: string[];
  completedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

const TALKED = new Set(['completed', 'answered', 'voicemail']);
/** Whether GHL can have a recording (and so a transcript) of a call in this state. */
export const mayHaveRecording = (status: string | null, durationSec: number | null) =>
  status ? TALKED.has(status) : (durationSec ?? 0) > 0;

export function callView(r: CallRow, publicUrl: string, signer: LinkSigner): CallView {
  const id = Number(r.id);
  const base = recordingUrl(publicUrl, r);
  const rec = base ? signer.link(base, r.location_id, id) : null;
  return {
    id,
    locationId: r.location_id,
    contactId: r.contact_id,
    messageId: r.message_id,
    conversationId: r.conversation_id,
    integrationType: r.integration_type,
    direction: r.direction,
    from: r.from_number,
    to: r.to_number,
    status: r.status,
    disposition: r.disposition,
    durationSec: r.duration_sec,
    userId: r.user_id,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    recording: rec && base ? { url: base, signedUrl: rec.url, signedUrlExpiresAt: rec.expiresAt } : null,
    transcript: {
      state: r.transcript_state,
      reason: r.transcript_reason,
      sentences: r.transcript ?? [],
      text: r.transcript_text,
    },
    sources: r.sources,
    completedAt: r.completed_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Stores an event once (its dedupe key), for the API (and the event subscriptions module when it lands). */
export async function emitEvent(
  trx: DbOrTrx,
  row: CallRow,
  type: 'call.completed' | 'call.disposition',
  dedupeKey: string,
  payload: Record<string, unknown>,
): Promise<boolean> {
  const r = await trx
    .insertInto('calls_events')
    .values({
      location_id: row.location_id,
      call_id: Number(row.id),
      type,
      integration_type: row.integration_type,
      payload: json(payload),
      dedupe_key: dedupeKey,
    })
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  return !!r;
}

/** Event payload: the call's fields a consumer routes on (no links: those expire). */
export function eventPayload(r: CallRow): Record<string, unknown> {
  return {
    callId: Number(r.id),
    locationId: r.location_id,
    integrationType: r.integration_type,
    contactId: r.contact_id,
    messageId: r.message_id,
    direction: r.direction,
    from: r.from_number,
    to: r.to_number,
    status: r.status,
    disposition: r.disposition,
    durationSec: r.duration_sec,
    userId: r.user_id,
    startedAt: r.started_at?.toISOString() ?? null,
    endedAt: r.ended_at?.toISOString() ?? null,
    transcript: { state: r.transcript_state, reason: r.transcript_reason, text: r.transcript_text },
  };
}

/**
 * Told once per call, in the transaction that stored call.completed (the event subscriptions' outbox publish). The
 * once comes from calls_events' unique dedupe key: a retried or concurrent completion inserts nothing and is not told.
 */
export type CompletedSink = (trx: DbOrTrx, row: CallRow) => Promise<void>;

/** Marks the call complete (transcript settled) and emits call.completed once. */
export async function completeCall(trx: DbOrTrx, id: number, onCompleted?: CompletedSink): Promise<void> {
  const row = await trx
    .updateTable('calls')
    .set({ completed_at: sql`coalesce(completed_at, now())`, updated_at: sql`now()` })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  if (row && (await emitEvent(trx, row, 'call.completed', `${id}:completed`, eventPayload(row))) && onCompleted)
    await onCompleted(trx, row);
}

/** The bridge's (unsigned) recording URL of a call that may have one, else null. */
export function recordingUrl(publicUrl: string, r: CallRow): string | null {
  if (!r.message_id || !mayHaveRecording(r.status, r.duration_sec)) return null;
  return `${publicUrl}/v1/locations/${encodeURIComponent(r.location_id)}/calls/${Number(r.id)}/recording`;
}

export async function getCall(db: Db, locationId: string, id: number): Promise<CallRow | undefined> {
  return db
    .selectFrom('calls')
    .selectAll()
    .where('location_id', '=', locationId)
    .where('id', '=', id)
    .executeTakeFirst();
}

export async function listCalls(
  db: Db,
  q: { locationId: string; contactId?: string | undefined; before?: number | undefined; limit: number },
): Promise<CallRow[]> {
  let s = db.selectFrom('calls').selectAll().where('location_id', '=', q.locationId);
  if (q.contactId) s = s.where('contact_id', '=', q.contactId);
  if (q.before) s = s.where('id', '<', q.before);
  return s.orderBy('id', 'desc').limit(q.limit).execute();
}
