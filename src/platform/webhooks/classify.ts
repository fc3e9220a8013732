import { createHash } from 'node:crypto';
import { eventScope, type IncomingEvent } from './registry.js';
import { KNOWN_EVENT_TYPES, PROVIDER_OUTBOUND } from './schemas.js';
import type { EventRecord } from './store.js';
import type { WebhookSource, WebhookStatus } from './tables.js';
import { parseWebhookJson, type RejectReason, type VerifyResult } from './verify.js';

/** `signature` of a provider delivery authenticated only by the URL token: stored, acted on once confirmed. */
export const URL_TOKEN_SIGNATURE = 'url_token';

/**
 * What intake knows about one delivery before deciding: the raw bytes, the signature check, the Delivery-URL token
 * check (provider route only), and the settings and handler table that shape the stored record.
 */
export interface DeliveryInput {
  source: WebhookSource;
  raw: Buffer;
  /** The verifier's result over the raw bytes (it may carry the parsed body, or why it did not parse). */
  verification: VerifyResult;
  /**
   * The Delivery-URL token check: undefined when the request came without a URL token (or when it was not needed:
   * the signature decided alone); otherwise whether the token is valid.
   */
  urlToken?: { valid: boolean };
  insecureSkipVerify: boolean;
  toleranceSec: number;
  nowMs: number;
  /** Whether a handler is registered for the type, and the ordering key it chooses. */
  hasHandler: (type: string | null) => boolean;
  orderingKey: (evt: IncomingEvent) => string | null;
}

/**
 * The decision: `reject` (answer the status; nothing stored), `accept` (authenticated by signature, or unverified in
 * insecure mode: store and act on it), `confirm` (authenticated by the URL token only: store, act once confirmed).
 * Stored records may still be dead / skipped / unknown_type (their `status`).
 */
export type DeliveryDecision =
  | {
      action: 'reject';
      status: 400 | 401;
      reason: RejectReason | 'invalid_token' | 'bad_timestamp' | 'stale';
      message: string;
    }
  | {
      action: 'accept' | 'confirm';
      record: EventRecord;
      /** Set in insecure mode when the signature did not verify (why), for the warning in the log. */
      unverified?: RejectReason;
    };

const known = new Set<string>(KNOWN_EVENT_TYPES);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/** Which authentication admits the delivery: the signature label to store, or the rejection. */
export function authenticate(
  i: Pick<DeliveryInput, 'verification' | 'urlToken' | 'insecureSkipVerify'>,
): { signature: string; unverified?: RejectReason } | Extract<DeliveryDecision, { action: 'reject' }> {
  const v = i.verification;
  // A valid signature decides alone; otherwise (provider route) a valid URL token admits it as unconfirmed.
  if (v.ok) return { signature: v.bytes === 'raw' ? v.scheme : `${v.scheme}+reserialized` };
  if (i.urlToken?.valid) return { signature: URL_TOKEN_SIGNATURE };
  if (i.insecureSkipVerify) return { signature: 'none', unverified: v.reason };
  if (i.urlToken)
    return {
      action: 'reject',
      status: 401,
      reason: v.reason === 'missing_signature' ? 'invalid_token' : v.reason,
      message: 'signature or delivery token missing or invalid',
    };
  return {
    action: 'reject',
    status: 401,
    reason: v.reason,
    message:
      v.reason === 'legacy_disabled'
        ? 'X-WH-Signature is no longer accepted; sign with X-GHL-Signature'
        : 'signature missing or invalid',
  };
}

/**
 * Classifies one webhook delivery: authenticate, parse, check the replay window, and build the record to store
 * (dedupe key, type, scope, ordering key, status). Pure: no I/O, the clock and handler table are inputs.
 */
export function classifyDelivery(i: DeliveryInput): DeliveryDecision {
  const auth = authenticate(i);
  if ('action' in auth) return auth;
  const { signature } = auth;
  const action = signature === URL_TOKEN_SIGNATURE ? 'confirm' : 'accept';
  const extra = auth.unverified ? { unverified: auth.unverified } : {};
  const v = i.verification;
  const { source, raw } = i;

  let parsed = v.parsed;
  let parseError = v.parseError;
  if (parsed === undefined && parseError === undefined) {
    try {
      parsed = parseWebhookJson(raw);
    } catch (e) {
      parseError = (e as Error).message;
    }
  }

  if (parseError !== undefined || parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    // Authenticated but unusable: keep the bytes and the reason; dropping it would lose it for good.
    return {
      action,
      ...extra,
      record: {
        source,
        dedupeKey: `sha256:${sha256(raw)}`,
        type: null,
        locationId: null,
        companyId: null,
        webhookId: null,
        orderingKey: null,
        eventAt: null,
        payloadJson: null,
        raw,
        signature,
        status: 'dead',
        reason:
          parseError !== undefined ? `malformed JSON: ${parseError}`.slice(0, 2000) : 'body is JSON but not an object',
      },
    };
  }

  const p = parsed as Record<string, unknown>;
  const ts = p.timestamp;
  let eventAt: Date | null = null;
  if (ts !== undefined && ts !== null) {
    const ms = typeof ts === 'string' || typeof ts === 'number' ? new Date(ts).getTime() : NaN;
    if (!Number.isFinite(ms))
      return { action: 'reject', status: 400, reason: 'bad_timestamp', message: 'timestamp is not a date' };
    if (Math.abs(i.nowMs - ms) > i.toleranceSec * 1000)
      return {
        action: 'reject',
        status: 401,
        reason: 'stale',
        message: `timestamp is outside the ${i.toleranceSec} s window`,
      };
    eventAt = new Date(ms);
  }
  const type = source === 'provider' ? PROVIDER_OUTBOUND : str(p.type);
  const webhookId = str(p.webhookId);
  // Provider deliveries are deduplicated by messageId (one outbound message = one send).
  const dedupeKey =
    (source === 'provider' ? str(p.messageId) : null) ??
    webhookId ??
    `sha256:${sha256(v.ok && v.bytes === 'reserialized' ? Buffer.from(JSON.stringify(p)) : raw)}`;
  const { locationId, companyId } = eventScope(type ?? '', p);
  const handled = i.hasHandler(type);
  let status: WebhookStatus;
  let reason: string | null = null;
  if (handled) status = 'received';
  else if (type && known.has(type)) {
    status = 'skipped';
    reason = 'no handler registered';
  } else {
    status = 'unknown_type';
    reason = type ? null : 'payload has no type';
  }
  return {
    action,
    ...extra,
    record: {
      source,
      dedupeKey,
      type,
      locationId,
      companyId,
      webhookId,
      orderingKey: handled && type ? i.orderingKey({ source, type, locationId, companyId, payload: p }) : null,
      eventAt,
      payloadJson: raw.toString('utf8'),
      raw: null,
      signature,
      status,
      reason,
    },
  };
}
