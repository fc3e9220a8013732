/**
 * Calls in the emulator (issue 15): call messages GHL's own phone system makes (with meta.callDuration and
 * meta.callStatus), their recordings (binary audio) and transcripts (ready after a configurable delay), and the
 * workflow webhook action (POSTs the JSON a GHL user composed to a URL). Kept beside the shared state, keyed by it,
 * so a reset drops it too.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Ctx } from './context.js';
import { badRequest } from './errors.js';
import { emitLocationEvent } from './events.js';
import { ensureConversation, messageEvent, touchConversation } from './messaging.js';
import type { Message, State } from './state.js';

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

/** One sentence of a transcript (GetMessageTranscriptionResponseDto). */
export interface TranscriptSentence {
  mediaChannel: number;
  sentenceIndex: number;
  startTime: number;
  endTime: number;
  transcript: string;
  confidence: number;
}

/**
 * A large recording served as a stream, generated chunk by chunk (never held whole): a WAV header and `bytes` of
 * PCM. It can hold after `holdAfterBytes` until released, and reports its progress, so a test can see that a
 * receiver forwards bytes before the emulator has finished sending, and that it stops pulling when its own
 * receiver stops reading (backpressure: `needDrain`).
 */
export interface LargeRecording {
  bytes: number;
  holdAfterBytes: number | null;
  progress: { sentBytes: number; held: boolean; finished: boolean; sha256: string | null };
  /** Whether the response's socket is full (its receiver stopped reading): write() answered false, no drain yet. */
  needDrain(): boolean;
  release(): void;
  /** Called by the route with the response's writable, so needDrain reports the socket's state. */
  stream(sink: { writableNeedDrain: boolean }): Readable;
}

const CHUNK = 64 * 1024;
const PATTERN = Buffer.from(Array.from({ length: CHUNK }, (_, i) => (i * 7) % 251));

export function largeRecording(bytes: number, holdAfterBytes: number | null): LargeRecording {
  let released: () => void = () => {};
  const gate = new Promise<void>((r) => (released = r));
  const progress: LargeRecording['progress'] = {
    sentBytes: 0,
    held: false,
    finished: false,
    sha256: null,
  };
  let sinkRef: { writableNeedDrain: boolean } | null = null;
  const rec: LargeRecording = {
    bytes,
    needDrain: () => sinkRef?.writableNeedDrain ?? false,
    holdAfterBytes,
    progress,
    release: () => released(),
    stream(sink) {
      const hdr = sampleWav('large', 0);
      hdr.writeUInt32LE(36 + bytes - 44, 4);
      hdr.writeUInt32LE(bytes - 44, 40);
      const hash = createHash('sha256');
      let pos = 0;
      sinkRef = sink;
      const produce = (r: Readable) => {
        if (holdAfterBytes !== null && pos >= holdAfterBytes) {
          holdAfterBytes = null;
          progress.held = true;
          void gate.then(() => {
            progress.held = false;
            produce(r);
          });
          return;
        }
        if (pos >= bytes) {
          progress.finished = true;
          progress.sha256 = hash.digest('hex');
          r.push(null);
          return;
        }
        const n = Math.min(CHUNK, bytes - pos);
        const chunk = Buffer.from(PATTERN.subarray(0, n));
        if (pos === 0) hdr.copy(chunk, 0, 0, Math.min(44, n));
        pos += n;
        progress.sentBytes = pos;
        hash.update(chunk);
        r.push(chunk);
      };
      return new Readable({
        highWaterMark: CHUNK,
        read() {
          produce(this);
        },
      });
    },
  };
  return rec;
}

export interface CallExtras {
  recording?: Buffer;
  /** Instead of `recording`: a large streamed one (CreateCallInput.recordingBytes). */
  largeRecording?: LargeRecording;
  transcript?: TranscriptSentence[];
  /** Emulator-clock time from which the transcript is served; null = never. */
  transcriptReadyAt: number | null;
}

const extrasByState = new WeakMap<State, Map<string, CallExtras>>();

export function callExtras(state: State): Map<string, CallExtras> {
  let m = extrasByState.get(state);
  if (!m) extrasByState.set(state, (m = new Map()));
  return m;
}

/** A short valid WAV file (8 kHz mono 16-bit PCM, a quiet tone), distinct per seed. */
export function sampleWav(seed: string, ms = 250): Buffer {
  const rate = 8000;
  const n = Math.floor((rate * ms) / 1000);
  const data = Buffer.alloc(n * 2);
  let h = 0;
  for (const ch of seed) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  const freq = 300 + (h % 500);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(3000 * Math.sin((2 * Math.PI * freq * i) / rate)), i * 2);
  const hdr = Buffer.alloc(44);
  hdr.write('RIFF', 0);
  hdr.writeUInt32LE(36 + data.length, 4);
  hdr.write('WAVE', 8);
  hdr.write('fmt ', 12);
  hdr.writeUInt32LE(16, 16);
  hdr.writeUInt16LE(1, 20);
  hdr.writeUInt16LE(1, 22);
  hdr.writeUInt32LE(rate, 24);
  hdr.writeUInt32LE(rate * 2, 28);
  hdr.writeUInt16LE(2, 32);
  hdr.writeUInt16LE(16, 34);
  hdr.write('data', 36);
  hdr.writeUInt32LE(data.length, 40);
  return Buffer.concat([hdr, data]);
}

export interface CreateCallInput {
  locationId: string;
  contactId: string;
  direction?: 'inbound' | 'outbound';
  status?: CallStatus;
  /** Seconds. */
  duration?: number;
  userId?: string;
  /** Attach a recording (default true for answered/completed/voicemail calls). */
  recording?: boolean;
  /** A large recording of this many bytes, streamed (generated as it is sent) instead of the short sample. */
  recordingBytes?: number;
  /** With recordingBytes: stop after this many bytes until released (POST /_emulator/calls/:id/recording-release). */
  recordingHoldAfterBytes?: number;
  /** Sentences (text or full objects); default: two sentences when there is a recording. [] = no transcript. */
  transcript?: Array<string | TranscriptSentence>;
  /** Emulator-clock ms after the call before the transcript is served (default 0); null = never. */
  transcriptDelayMs?: number | null;
  /** The call's time (ISO); default now. */
  date?: string;
}

/** A call made in GHL (LC Phone, a user dialling): a TYPE_CALL message with meta, its recording and transcript. */
export function createCall(ctx: Ctx, input: CreateCallInput): { message: Message; extras: CallExtras } {
  const loc = ctx.state.locations.get(input.locationId);
  if (!loc) throw badRequest('Location not found');
  const contact = ctx.state.contacts.get(input.contactId);
  if (!contact || contact.locationId !== loc.id) throw badRequest('Contact not found');
  const status = input.status ?? 'completed';
  if (!CALL_STATUSES.includes(status)) throw badRequest(`status must be one of ${CALL_STATUSES.join(', ')}`);
  const direction = input.direction ?? 'outbound';
  const conv = ensureConversation(ctx, loc, contact);
  const now = ctx.clock.now();
  const at = input.date ? Date.parse(input.date) : now;
  const locPhone = loc.phone ?? '+15550000000';
  const m: Message = {
    id: ctx.ids.id(),
    locationId: loc.id,
    contactId: contact.id,
    conversationId: conv.id,
    type: 1,
    messageType: 'TYPE_CALL',
    channel: 'Call',
    direction,
    status: 'delivered',
    contentType: 'text/plain',
    attachments: [],
    source: 'app',
    dateAdded: Number.isNaN(at) ? now : at,
    createdAtMs: now,
    statusHistory: [{ status: 'delivered', at: now, by: 'ghl' }],
    call: {
      status,
      from: direction === 'inbound' ? (contact.phone ?? '') : locPhone,
      to: direction === 'inbound' ? locPhone : (contact.phone ?? ''),
    },
    callDuration: Math.max(0, Math.round(input.duration ?? (status === 'completed' ? 60 : 0))),
    ...(input.userId ? { userId: input.userId } : {}),
  };
  const talked = status === 'completed' || status === 'answered' || status === 'voicemail';
  const hasRecording = input.recording ?? talked;
  const sentences = (input.transcript ?? (hasRecording ? ['Hello, this is a test call.', 'Thanks, goodbye.'] : [])).map(
    (s, i): TranscriptSentence =>
      typeof s === 'string'
        ? {
            mediaChannel: (i % 2) + 1,
            sentenceIndex: i + 1,
            startTime: i * 2000,
            endTime: i * 2000 + 1800,
            transcript: s,
            confidence: 0.9,
          }
        : s,
  );
  const delay = input.transcriptDelayMs === undefined ? 0 : input.transcriptDelayMs;
  const extras: CallExtras = {
    ...(hasRecording && input.recordingBytes
      ? { largeRecording: largeRecording(Math.max(44, input.recordingBytes), input.recordingHoldAfterBytes ?? null) }
      : hasRecording
        ? { recording: sampleWav(m.id) }
        : {}),
    ...(sentences.length ? { transcript: sentences } : {}),
    transcriptReadyAt: sentences.length && delay !== null ? now + Math.max(0, delay) : null,
  };
  ctx.state.messages.set(m.id, m);
  callExtras(ctx.state).set(m.id, extras);
  touchConversation(ctx, conv, m);
  emitLocationEvent(ctx, loc.id, messageEvent(direction === 'inbound' ? 'InboundMessage' : 'OutboundMessage', m));
  return { message: m, extras };
}

/**
 * The JSON GHL's workflow "Webhook" action sends by default for a contact: the contact's standard fields at the top
 * level (snake_case), `location`, `user`, `workflow`, and `customData` (the key/values the user added). The bridge's
 * default mapping reads this shape (src/capabilities/calls/mapping.ts).
 */
export function standardWorkflowPayload(
  ctx: Ctx,
  input: { locationId: string; contactId: string; customData?: Record<string, unknown>; workflowName?: string },
): Record<string, unknown> {
  const loc = ctx.state.locations.get(input.locationId);
  if (!loc) throw badRequest('Location not found');
  const c = ctx.state.contacts.get(input.contactId);
  return {
    contact_id: input.contactId,
    first_name: c?.firstName ?? '',
    last_name: c?.lastName ?? '',
    full_name: [c?.firstName, c?.lastName].filter(Boolean).join(' '),
    email: c?.email ?? '',
    phone: c?.phone ?? '',
    tags: (c?.tags ?? []).join(','),
    country: c?.country ?? '',
    date_created: c ? new Date(c.dateAdded).toISOString() : '',
    contact_source: c?.source ?? '',
    contact_type: c?.type ?? 'lead',
    location: { id: loc.id, name: loc.name, address: loc.address },
    workflow: { id: ctx.ids.id(), name: input.workflowName ?? 'Call completed' },
    triggerData: {},
    customData: input.customData ?? {},
  };
}

/** Fires a workflow webhook action: POSTs the payload as JSON (no signature, like GHL). */
export async function fireWorkflowWebhook(
  url: string,
  payload: unknown,
): Promise<{ status: number; body: string; durationMs: number }> {
  const t0 = performance.now();
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'GHL-Workflow-Webhook (ghl-bridge emulator)' },
    body: JSON.stringify(payload),
  });
  const body = await r.text();
  return { status: r.status, body, durationMs: performance.now() - t0 };
}
