import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { CastChannelConfig } from './config.js';
import { parseWith } from './inbound-util.js';
import { castToE164, castToLocal, normalizeE164 } from './phone.js';
import { countSmsSegments } from './sms.js';
import { BucketRegistry } from './throttle.js';
import {
  ChannelConfigError,
  ChannelInputError,
  ChannelRetryableError,
  type ChannelAdapter,
  type ChannelError,
  type DeliveryReceipt,
  type InboundMessage,
  type InboundRequest,
  type OutboundMessage,
  type ParsedInbound,
  type SendResult,
  type ValidateResult,
  type VerifyResult,
} from './types.js';
import {
  clip,
  header,
  isRecord,
  networkError,
  parseRetryAfter,
  readText,
  silentLogger,
  tryJson,
  withDeadline,
  type ChannelLogger,
} from './util.js';

/**
 * Cast.ph SMS gateway (CAST.md). Outbound: `POST /api/v1/sms/send` with `X-Idempotency-Key: <GHL messageId>`.
 * Receipts: pull only (`pollStatus`). Inbound: OUR contract for the Cast SIM-gateway POST (CAST_INBOUND_CONTRACT.md),
 * unconfirmed upstream.
 */

/** Cast error codes that need an operator (credentials, credits, account state): GHL error type `account`. */
const ACCOUNT_CODES = new Set([
  'INVALID_API_KEY',
  'INSUFFICIENT_CREDITS',
  'CREDIT_LIMIT_REACHED',
  'API_KEY_REVOKED',
  'API_KEY_EXPIRED',
  'USER_INACTIVE',
  'IP_NOT_WHITELISTED',
  'CHANNEL_NOT_ALLOWED',
]);
const VALIDATION_CODES = new Set(['INVALID_REQUEST', 'VALIDATION_ERROR']);

const sharedThrottles = new BucketRegistry();

export interface CastChannelDeps {
  logger?: ChannelLogger;
  /** Override the process-wide per-account throttle registry (tests). */
  throttles?: BucketRegistry;
}

export function createCastChannel(cfg: CastChannelConfig, deps: CastChannelDeps = {}): ChannelAdapter {
  const log = deps.logger ?? silentLogger;
  const base = cfg.baseUrl.replace(/\/+$/, '');
  // Several GHL locations may share one Cast account; Cast limits per account, so the bucket is keyed by it.
  const accountKey = createHash('sha256').update(`${base}\n${cfg.apiKey}`).digest('hex');
  const bucket = (deps.throttles ?? sharedThrottles).get(accountKey, cfg.ratePerSecond);
  const inboundKeyDigest = sha256(cfg.inboundApiKey);

  /** Cast error text could echo a key back; never let one reach GHL or logs. */
  const redact = (s: string): string =>
    s
      .split(cfg.apiKey)
      .join('cast_***')
      .replace(/cast_[A-Za-z0-9_]{8,}/g, 'cast_***');

  function recipient(msg: OutboundMessage): { ok: true; to: string } | { ok: false; error: ChannelError } {
    if (!msg.phone)
      return {
        ok: false,
        error: { code: 'INVALID_PHONE', type: 'validation', message: 'SMS has no recipient phone number' },
      };
    try {
      return { ok: true, to: cfg.numberFormat === 'local' ? castToLocal(msg.phone) : castToE164(msg.phone) };
    } catch {
      return {
        ok: false,
        error: {
          code: 'INVALID_PHONE',
          type: 'validation',
          message: `Cast sends to Philippine mobile numbers only; cannot send to ${msg.phone}`,
        },
      };
    }
  }

  function validateOutbound(msg: OutboundMessage): ValidateResult {
    if (msg.channel !== 'SMS') {
      return {
        ok: false,
        error: { code: 'CHANNEL_UNSUPPORTED', type: 'validation', message: `Cast relays SMS only, not ${msg.channel}` },
      };
    }
    const to = recipient(msg);
    if (!to.ok) return to;
    if (msg.attachments.length > 0 && cfg.attachments === 'fail') {
      return {
        ok: false,
        error: {
          code: 'ATTACHMENTS_UNSUPPORTED',
          type: 'validation',
          message: 'Cast SMS cannot carry attachments (no MMS); remove them and resend',
        },
      };
    }
    const text = msg.message ?? '';
    if (text.trim() === '') {
      const why = msg.attachments.length > 0 ? ' (attachments cannot be sent over Cast SMS)' : '';
      return { ok: false, error: { code: 'EMPTY_MESSAGE', type: 'validation', message: `SMS has no text${why}` } };
    }
    const seg = countSmsSegments(text);
    if (seg.chars > cfg.maxLength) {
      return {
        ok: false,
        error: {
          code: 'MESSAGE_TOO_LONG',
          type: 'validation',
          message: `SMS is ${seg.chars} characters (${seg.parts} parts, ${seg.encoding}); this channel allows at most ${cfg.maxLength} characters`,
        },
      };
    }
    if (cfg.maxParts !== undefined && seg.parts > cfg.maxParts) {
      return {
        ok: false,
        error: {
          code: 'MESSAGE_TOO_LONG',
          type: 'validation',
          message: `SMS needs ${seg.parts} parts (${seg.chars} characters, ${seg.encoding}); this channel allows at most ${cfg.maxParts} parts`,
        },
      };
    }
    return { ok: true };
  }

  async function send(msg: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
    const v = validateOutbound(msg);
    if (!v.ok) return { outcome: 'failed', error: v.error };
    const to = recipient(msg);
    if (!to.ok) return { outcome: 'failed', error: to.error };
    if (msg.attachments.length > 0) {
      log.info(
        { messageId: msg.messageId, dropped: msg.attachments.length },
        'cast: attachments dropped (SMS has no media)',
      );
    }

    await bucket.take(signal);

    const body = JSON.stringify({
      to: to.to,
      message: msg.message,
      ...(cfg.senderId ? { sender_id: cfg.senderId } : {}),
    });
    const what = 'Cast POST /api/v1/sms/send';
    let res: Response;
    let text: string;
    try {
      [res, text] = await withDeadline(cfg.timeoutMs, signal, async (sig) => {
        const r = await fetch(`${base}/api/v1/sms/send`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json',
            'x-api-key': cfg.apiKey,
            'x-idempotency-key': idempotencyKey(msg.messageId),
          },
          body,
          signal: sig,
        });
        return [r, await readText(r)] as const;
      });
    } catch (err) {
      throw networkError(err, what, signal);
    }
    const json = tryJson(text);
    const answer = isRecord(json) ? json : {};
    const status = res.status;
    const replay = res.headers.get('x-idempotent-replay') === 'true';

    if (status >= 200 && status < 300 && answer.success === true) {
      const id = typeof answer.message_id === 'string' && answer.message_id ? answer.message_id : undefined;
      log.info(
        { messageId: msg.messageId, castMessageId: id, parts: answer.parts, replay, sandbox: answer.sandbox === true },
        'cast: accepted',
      );
      // Cast acceptance is not delivery (CAST.md §8): report pending and let pollStatus settle it.
      return { outcome: 'accepted', ...(id ? { channelMessageId: id } : {}) };
    }
    const code = typeof answer.error_code === 'string' && answer.error_code ? answer.error_code : undefined;
    if (status === 429 || status === 408 || status >= 500) {
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      log.warn({ messageId: msg.messageId, status, code, retryAfterMs }, 'cast: transient error');
      throw new ChannelRetryableError(
        status === 429 ? 'rate_limited' : `http_${status}`,
        `${what}: HTTP ${status}${code ? ` ${code}` : ''}`,
        {
          retryAfterMs,
        },
      );
    }
    const error = castError(status, code, answer.error);
    log.warn({ messageId: msg.messageId, status, code: error.code, type: error.type }, 'cast: send rejected');
    return { outcome: 'failed', error };
  }

  function castError(status: number, code: string | undefined, errorText: unknown): ChannelError {
    const c = code ?? `CAST_HTTP_${status}`;
    const type: ChannelError['type'] =
      code && ACCOUNT_CODES.has(code)
        ? 'account'
        : code && VALIDATION_CODES.has(code)
          ? 'validation'
          : status === 401 || status === 402 || status === 403
            ? 'account'
            : 'provider';
    const detail = typeof errorText === 'string' && errorText.trim() ? redact(errorText) : `HTTP ${status}`;
    return { code: c, type, message: clip(`Cast rejected the SMS: ${detail}`) };
  }

  async function pollStatus(channelMessageId: string, signal?: AbortSignal): Promise<DeliveryReceipt | null> {
    const what = 'Cast GET /api/v1/sms/status';
    let res: Response;
    let text: string;
    try {
      [res, text] = await withDeadline(cfg.timeoutMs, signal, async (sig) => {
        const r = await fetch(`${base}/api/v1/sms/status/${encodeURIComponent(channelMessageId)}`, {
          headers: { accept: 'application/json', 'x-api-key': cfg.apiKey },
          signal: sig,
        });
        return [r, await readText(r)] as const;
      });
    } catch (err) {
      throw networkError(err, what, signal);
    }
    const json = tryJson(text);
    const answer = isRecord(json) ? json : {};
    const code = typeof answer.error_code === 'string' ? answer.error_code : undefined;
    if (res.status === 404) return null;
    if (res.status === 401 || res.status === 403) {
      throw new ChannelConfigError(`${what}: Cast rejected the API key (HTTP ${res.status}${code ? ` ${code}` : ''})`);
    }
    if (res.status !== 200 || answer.success !== true) {
      // Status lookups are idempotent reads; any other non-2xx is treated as transient (field experience, CAST.md §8).
      throw new ChannelRetryableError(
        res.status === 429 ? 'rate_limited' : `http_${res.status}`,
        `${what}: HTTP ${res.status}`,
        {
          retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
        },
      );
    }
    return mapCastStatus(channelMessageId, answer, log, redact);
  }

  function verifyInbound(req: InboundRequest): VerifyResult {
    const auth = header(req.headers, 'authorization');
    const bearer = auth?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
    const presented = bearer ?? header(req.headers, 'x-api-key')?.trim();
    if (!presented)
      return { ok: false, reason: 'missing credentials: send "Authorization: Bearer <key>" or "X-API-Key: <key>"' };
    // Compare fixed-length digests so neither content nor length leaks through timing.
    if (!timingSafeEqual(sha256(presented), inboundKeyDigest)) return { ok: false, reason: 'invalid inbound API key' };
    return { ok: true };
  }

  function parseInbound(req: InboundRequest): ParsedInbound {
    const raw = parseCastInboundBody(req);
    const what = 'Cast inbound';
    const items =
      isRecord(raw) && 'messages' in raw
        ? parseWith(castBatchSchema, raw, what).messages
        : [parseWith(castItemSchema, raw, what)];
    const messages: InboundMessage[] = items.map((item, i) => {
      const from = senderE164(item.from);
      if (!from) {
        const at = items.length > 1 || (isRecord(raw) && 'messages' in raw) ? `messages[${i}].from` : 'from';
        throw new ChannelInputError(`${what}: ${at}: not a phone number: ${JSON.stringify(item.from)}`);
      }
      return {
        channelMessageId: item.id ?? derivedId(item),
        from,
        to: item.to,
        text: item.text,
        attachments: [],
        channel: 'SMS',
        receivedAt: item.receivedAt,
      };
    });
    return { messages, receipts: [] };
  }

  return { kind: 'cast', send, validateOutbound, pollStatus, verifyInbound, parseInbound };
}

function mapCastStatus(
  id: string,
  answer: Record<string, unknown>,
  log: ChannelLogger,
  redact: (s: string) => string,
): DeliveryReceipt {
  const status = answer.status;
  const dlr = typeof answer.dlr_status === 'string' && answer.dlr_status ? answer.dlr_status : undefined;
  switch (status) {
    case 'sent':
    case 'pending':
      return { channelMessageId: id, status: 'pending' };
    case 'delivered':
      return { channelMessageId: id, status: 'delivered' };
    case 'undelivered':
    case 'failed': {
      const why =
        typeof answer.error_message === 'string' && answer.error_message ? redact(answer.error_message) : undefined;
      const message =
        status === 'failed'
          ? `Cast could not submit the SMS to the carrier${why ? `: ${why}` : ''}`
          : `carrier could not deliver the SMS${dlr ? ` (${dlr})` : ''}${why ? `: ${why}` : ''}`;
      return {
        channelMessageId: id,
        status: 'failed',
        error: {
          code: dlr ?? (status === 'failed' ? 'FAILED' : 'UNDELIVERED'),
          type: 'provider',
          message: clip(message),
        },
      };
    }
    default:
      log.warn({ castMessageId: id, status }, 'cast: unknown delivery status; treating as pending');
      return { channelMessageId: id, status: 'pending' };
  }
}

/** Cast caps idempotency keys at 255 chars; GHL ids are ~20, but stay safe with a stable hash for anything longer. */
function idempotencyKey(messageId: string): string {
  return messageId.length <= 255 ? messageId : `sha256-${createHash('sha256').update(messageId).digest('hex')}`;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

// ---- inbound contract (ours; see CAST_INBOUND_CONTRACT.md) ----

const str = (max: number) => z.string().trim().min(1).max(max);

/** One inbound SMS. Aliases are accepted because the real gateway payload is unknown; canonical names first. */
const castItemSchema = z
  .object({
    from: str(40).optional(),
    sender: str(40).optional(),
    msisdn: str(40).optional(),
    to: str(40).optional(),
    message: z.string().max(10_000).optional(),
    text: z.string().max(10_000).optional(),
    message_id: str(256).optional(),
    id: str(256).optional(),
    received_at: z.union([z.iso.datetime({ offset: true }), z.number().int().positive()]).optional(),
  })
  .transform((r, ctx) => {
    const from = r.from ?? r.sender ?? r.msisdn;
    const text = r.message ?? r.text;
    if (!from) ctx.addIssue({ code: 'custom', path: ['from'], message: 'required (sender phone number)' });
    if (text === undefined || text === '')
      ctx.addIssue({ code: 'custom', path: ['message'], message: 'required (non-empty SMS text)' });
    const receivedAt = typeof r.received_at === 'number' ? new Date(r.received_at * 1000).toISOString() : r.received_at;
    return { from: from ?? '', to: r.to, text: text ?? '', id: r.message_id ?? r.id, receivedAt };
  });
const castBatchSchema = z.object({ messages: z.array(castItemSchema).min(1).max(100) });

type CastItem = z.output<typeof castItemSchema>;

function parseCastInboundBody(req: InboundRequest): unknown {
  if (req.rawBody.length === 0) throw new ChannelInputError('Cast inbound: empty body');
  const ct = (header(req.headers, 'content-type') ?? '').toLowerCase();
  const text = req.rawBody.toString('utf8');
  if (ct.startsWith('application/x-www-form-urlencoded')) {
    const form = Object.fromEntries(new URLSearchParams(text));
    // Form values are strings; the epoch form of received_at is numeric.
    if (form.received_at && /^\d+$/.test(form.received_at)) return { ...form, received_at: Number(form.received_at) };
    return form;
  }
  if (ct && !ct.startsWith('application/json')) {
    throw new ChannelInputError(
      `Cast inbound: unsupported content-type ${JSON.stringify(ct)} (use application/json or application/x-www-form-urlencoded)`,
    );
  }
  const parsed = tryJson(text);
  if (parsed === undefined) throw new ChannelInputError('Cast inbound: body is not valid JSON');
  return parsed;
}

/** PH numbers via Cast's ToE164 first (the documented rule); anything else via libphonenumber with PH as home region. */
function senderE164(from: string): string | undefined {
  try {
    return castToE164(from);
  } catch {
    const r = normalizeE164(from, 'PH');
    return r.ok ? r.e164 : undefined;
  }
}

/**
 * Without a gateway id we can still dedupe gateway retries if it sends a timestamp. Without either, a random id
 * (no dedupe): a hash of sender+text alone would swallow a customer's genuine repeated "yes".
 */
function derivedId(item: CastItem): string {
  if (!item.receivedAt) return `cast-in-${randomUUID()}`;
  const h = createHash('sha256')
    .update([item.from, item.to ?? '', item.text, item.receivedAt].join('\n'))
    .digest('hex');
  return `cast-in-${h.slice(0, 32)}`;
}
