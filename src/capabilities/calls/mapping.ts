import { z } from 'zod';

/**
 * Where a workflow payload keeps each call field: JSON pointers (RFC 6901), tried in order; the first that names a
 * non-empty value wins. A GHL user composes the workflow webhook's JSON, so each endpoint may carry its own mapping.
 */
export const MAPPED_FIELDS = [
  'contactId',
  'locationId',
  'messageId',
  'direction',
  'status',
  'disposition',
  'duration',
  'userId',
  'from',
  'to',
  'startedAt',
  'endedAt',
] as const;
export type MappedField = (typeof MAPPED_FIELDS)[number];
export type FieldMapping = Partial<Record<MappedField, string[]>>;

export const CALL_STATUSES = [
  'pending',
  'completed',
  'answered',
  'busy',
  'no-answer',
  'failed',
  'canceled',
  'voicemail',
] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];

const pointer = z
  .string()
  .max(200)
  .regex(/^(\/[^/]*)*$/, 'expected a JSON pointer such as /customData/callStatus');
export const fieldMappingSchema = z
  .strictObject(
    Object.fromEntries(MAPPED_FIELDS.map((f) => [f, z.array(pointer).min(1).max(5).optional()])) as Record<
      MappedField,
      z.ZodOptional<z.ZodArray<typeof pointer>>
    >,
  )
  .describe('per field, JSON pointers into the workflow payload, tried in order');

/**
 * GHL's standard workflow webhook payload: the contact's fields at the top level in snake_case (`contact_id`,
 * `full_name`, `phone`, …), `location` {id, name, …}, `user` when the workflow has one, `workflow` {id, name}, and
 * `customData` — the key/value pairs the user adds in the action (that is where call details go: GHL's call
 * triggers expose them as custom values the user maps, e.g. `callStatus: {{call.status}}`). Flat camelCase keys are
 * accepted too.
 */
export const DEFAULT_MAPPING: Required<FieldMapping> = {
  contactId: ['/contact_id', '/contactId', '/contact/id', '/customData/contactId'],
  locationId: ['/location/id', '/locationId', '/location_id'],
  messageId: ['/customData/messageId', '/customData/message_id', '/customData/callId', '/message/id', '/messageId'],
  direction: ['/customData/direction', '/customData/callDirection', '/call/direction', '/direction'],
  status: ['/customData/callStatus', '/customData/status', '/call/status', '/callStatus'],
  disposition: ['/customData/disposition', '/customData/callDisposition', '/call/disposition', '/disposition'],
  duration: ['/customData/callDuration', '/customData/duration', '/call/duration', '/callDuration'],
  userId: ['/user/id', '/customData/userId', '/userId', '/user_id'],
  from: ['/customData/from', '/call/from', '/from'],
  to: ['/customData/to', '/call/to', '/to'],
  startedAt: ['/customData/startedAt', '/customData/callStartedAt', '/call/startedAt', '/startedAt'],
  endedAt: ['/customData/endedAt', '/customData/callEndedAt', '/call/endedAt', '/endedAt'],
};

export function resolvePointer(doc: unknown, ptr: string): unknown {
  if (ptr === '') return doc;
  let cur: unknown = doc;
  for (const raw of ptr.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(key)) return undefined;
      cur = cur[Number(key)];
    } else cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

export interface MappedCall {
  contactId: string;
  locationId: string | null;
  messageId: string | null;
  direction: 'inbound' | 'outbound' | null;
  status: CallStatus | null;
  disposition: string | null;
  durationSec: number | null;
  userId: string | null;
  from: string | null;
  to: string | null;
  startedAt: Date | null;
  endedAt: Date | null;
}

export type MapResult = { ok: true; call: MappedCall } | { ok: false; reason: string };

const present = (v: unknown) => v !== undefined && v !== null && !(typeof v === 'string' && v.trim() === '');

/** Normalises a call status as GHL and telephony systems spell it (No Answer, no_answer, cancelled …). */
export function normaliseStatus(v: string): CallStatus | null {
  const s = v
    .trim()
    .toLowerCase()
    .replace(/[\s_]+/g, '-');
  const alias: Record<string, CallStatus> = {
    noanswer: 'no-answer',
    'no-answered': 'no-answer',
    missed: 'no-answer',
    cancelled: 'canceled',
    'voice-mail': 'voicemail',
    complete: 'completed',
  };
  const x = alias[s] ?? s;
  return (CALL_STATUSES as readonly string[]).includes(x) ? (x as CallStatus) : null;
}

export function normaliseDirection(v: string): 'inbound' | 'outbound' | null {
  const s = v.trim().toLowerCase();
  if (s === 'inbound' || s === 'incoming' || s === 'in') return 'inbound';
  if (s === 'outbound' || s === 'outgoing' || s === 'out') return 'outbound';
  return null;
}

/** Seconds from a number, a numeric string, or "h:mm:ss" / "mm:ss". */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.round(v);
  if (typeof v !== 'string') return null;
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s));
  if (/^\d+(:\d{1,2}){1,2}$/.test(s)) return s.split(':').reduce((acc, p) => acc * 60 + Number(p), 0);
  return null;
}

/** A time from ISO 8601 or epoch (seconds or milliseconds). */
export function parseTime(v: unknown): Date | null {
  if (typeof v === 'number' && Number.isFinite(v)) return new Date(v < 1e12 ? v * 1000 : v);
  if (typeof v !== 'string') return null;
  if (/^\d+$/.test(v.trim())) return parseTime(Number(v.trim()));
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : new Date(t);
}

/**
 * Maps a payload with `mapping` (fields it does not name use the default). Never throws: a payload that cannot be
 * mapped yields the reason, naming the field and where it was looked for.
 */
export function mapPayload(payload: unknown, mapping: FieldMapping | null): MapResult {
  const m = { ...DEFAULT_MAPPING, ...(mapping ?? {}) };
  const find = (f: MappedField): { value: unknown; at: string } | undefined => {
    for (const p of m[f]) {
      const v = resolvePointer(payload, p);
      if (present(v)) return { value: v, at: p };
    }
    return undefined;
  };
  const str = (f: MappedField): string | null | { error: string } => {
    const x = find(f);
    if (!x) return null;
    if (typeof x.value === 'string') return x.value.trim();
    if (typeof x.value === 'number') return String(x.value);
    return { error: `${f}: expected a string at ${x.at}, got ${Array.isArray(x.value) ? 'array' : typeof x.value}` };
  };
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload))
    return { ok: false, reason: 'payload: expected a JSON object' };
  const fields: Record<string, string | null> = {};
  for (const f of ['contactId', 'locationId', 'messageId', 'disposition', 'userId', 'from', 'to'] as const) {
    const v = str(f);
    if (v !== null && typeof v === 'object') return { ok: false, reason: v.error };
    fields[f] = v;
  }
  if (!fields.contactId)
    return { ok: false, reason: `contactId: no value at ${m.contactId.join(', ')} (a call needs its contact)` };
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(fields.contactId))
    return { ok: false, reason: `contactId: "${fields.contactId.slice(0, 80)}" is not a GHL id` };
  if (fields.messageId && !/^[A-Za-z0-9_-]{1,64}$/.test(fields.messageId))
    return { ok: false, reason: `messageId: "${fields.messageId.slice(0, 80)}" is not a GHL id` };

  let direction: MappedCall['direction'] = null;
  const d = find('direction');
  if (d) {
    direction = typeof d.value === 'string' ? normaliseDirection(d.value) : null;
    if (!direction)
      return {
        ok: false,
        reason: `direction: expected inbound or outbound at ${d.at}, got ${JSON.stringify(d.value)}`,
      };
  }
  let status: CallStatus | null = null;
  const s = find('status');
  if (s) {
    status = typeof s.value === 'string' ? normaliseStatus(s.value) : null;
    if (!status)
      return {
        ok: false,
        reason: `status: expected one of ${CALL_STATUSES.join(', ')} at ${s.at}, got ${JSON.stringify(s.value)}`,
      };
  }
  let durationSec: number | null = null;
  const du = find('duration');
  if (du) {
    durationSec = parseDuration(du.value);
    if (durationSec === null)
      return {
        ok: false,
        reason: `duration: expected seconds (or mm:ss) at ${du.at}, got ${JSON.stringify(du.value)}`,
      };
  }
  const time = (f: 'startedAt' | 'endedAt'): Date | null | { error: string } => {
    const x = find(f);
    if (!x) return null;
    return parseTime(x.value) ?? { error: `${f}: expected a time at ${x.at}, got ${JSON.stringify(x.value)}` };
  };
  const startedAt = time('startedAt');
  if (startedAt && !(startedAt instanceof Date)) return { ok: false, reason: startedAt.error };
  const endedAt = time('endedAt');
  if (endedAt && !(endedAt instanceof Date)) return { ok: false, reason: endedAt.error };
  if (!status && !fields.disposition && durationSec === null)
    return {
      ok: false,
      reason: `no call details: none of status (${m.status.join(', ')}), disposition or duration has a value`,
    };
  return {
    ok: true,
    call: {
      contactId: fields.contactId,
      locationId: fields.locationId ?? null,
      messageId: fields.messageId ?? null,
      direction,
      status,
      disposition: fields.disposition ?? null,
      durationSec,
      userId: fields.userId ?? null,
      from: fields.from ?? null,
      to: fields.to ?? null,
      startedAt: startedAt,
      endedAt: endedAt,
    },
  };
}
