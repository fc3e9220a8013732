import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../infra/log/logger.js';
import type { WebhookMetrics } from './metrics.js';
import { eventScope, type HandlerRegistry } from './registry.js';
import { KNOWN_EVENT_TYPES, PROVIDER_OUTBOUND } from './schemas.js';
import { ThrottledError, type EventRecord, type GroupCommitter, type PersistOutcome } from './store.js';
import type { WebhookSource, WebhookStatus } from './tables.js';
import { parseWebhookJson, type WebhookVerifier } from './verify.js';

export const APP_WEBHOOK_PATH = '/webhooks/ghl';
export const PROVIDER_WEBHOOK_PATH = '/webhooks/ghl/provider';
/** The Delivery URL with its secret token (GHL does not sign Delivery-URL calls: docs/ghl-behaviour.md#unsigned-provider-deliveries, #224). */
export const PROVIDER_TOKEN_WEBHOOK_PATH = '/webhooks/ghl/provider/:token';
/** `signature` of a provider delivery authenticated only by the URL token: stored, acted on once confirmed. */
export const URL_TOKEN_SIGNATURE = 'url_token';

/** Checks a Delivery-URL token (published by the provider module). */
export interface DeliveryTokenCheck {
  check(token: string): Promise<boolean>;
}

export interface IntakeOptions {
  verifier: WebhookVerifier;
  committer: GroupCommitter;
  registry: HandlerRegistry;
  metrics: WebhookMetrics;
  log: Logger;
  toleranceSec: number;
  insecureSkipVerify: boolean;
  maxBodyBytes: number;
  persistTimeoutMs: number;
  /** Looked up per request (the provider module publishes it); without it every URL token is refused. */
  deliveryTokens?: () => DeliveryTokenCheck | undefined;
  /** True while the dispatch backlog is above the high-water mark. */
  overBacklog: () => boolean;
  now?: () => number;
}

const known = new Set(KNOWN_EVENT_TYPES);
const OK = '{"ok":true}';
const DUPLICATE = '{"ok":true,"duplicate":true}';

function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * The two GHL-facing routes. Order of work per delivery: raw bytes → signature → parse →
 * replay window → backlog check → durable write (group commit) → 200. Anything that prevents
 * the write answers 429, the only status GHL retries (docs/ghl-behaviour.md#webhook-retries).
 */
export async function registerIntakeRoutes(app: FastifyInstance, o: IntakeOptions): Promise<void> {
  const now = o.now ?? Date.now;
  // Raw bytes for every content type on these routes: the signature covers them, not a parse.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: o.maxBodyBytes }, (_req, body, done) =>
    done(null, body),
  );

  const checkToken = async (t: string): Promise<boolean> => {
    const c = o.deliveryTokens?.();
    return c ? c.check(t) : false;
  };

  const handle = async (source: WebhookSource, req: FastifyRequest, reply: FastifyReply, urlToken?: string) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const reject = (status: number, reason: string, message: string) => {
      o.metrics.rejected.inc({ source, reason });
      o.metrics.intake.inc({ source, outcome: 'rejected' });
      req.log.warn({ reason, source }, 'webhook rejected');
      return reply
        .code(status)
        .type('application/json')
        .send(JSON.stringify({ ok: false, error: reason, message }));
    };
    const throttle = (reason: string, message: string) => {
      o.metrics.throttled.inc({ source, reason });
      o.metrics.intake.inc({ source, outcome: 'throttled' });
      req.log.warn({ reason, source, err: message }, 'webhook not stored; answered 429 so GHL retries');
      return reply
        .code(429)
        .header('retry-after', '60')
        .type('application/json')
        .send(JSON.stringify({ ok: false, error: 'try_again_later', message: reason }));
    };

    const v = o.verifier.verify(raw, req.headers);
    let signature: string;
    // Provider route: a valid signature decides alone; otherwise a valid URL token admits the delivery as unconfirmed.
    if (v.ok) signature = v.bytes === 'raw' ? v.scheme : `${v.scheme}+reserialized`;
    else if (urlToken !== undefined && (await checkToken(urlToken))) signature = URL_TOKEN_SIGNATURE;
    else if (urlToken !== undefined && !o.insecureSkipVerify) {
      return reject(
        401,
        v.reason === 'missing_signature' ? 'invalid_token' : v.reason,
        'signature or delivery token missing or invalid',
      );
    } else if (o.insecureSkipVerify) {
      signature = 'none';
      req.log.warn(
        { source, verification: v.reason },
        'WEBHOOK_INSECURE_SKIP_VERIFY is on: accepting a webhook without a valid signature',
      );
    } else {
      return reject(
        401,
        v.reason,
        v.reason === 'legacy_disabled'
          ? 'X-WH-Signature is no longer accepted; sign with X-GHL-Signature'
          : 'signature missing or invalid',
      );
    }

    let parsed = v.parsed;
    let parseError = v.parseError;
    if (parsed === undefined && parseError === undefined) {
      try {
        parsed = parseWebhookJson(raw);
      } catch (e) {
        parseError = (e as Error).message;
      }
    }

    let rec: EventRecord;
    if (parseError !== undefined || parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      // Signed by GHL but unusable: keep the bytes and the reason; dropping it would lose it for good.
      rec = {
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
      };
    } else {
      const p = parsed as Record<string, unknown>;
      const ts = p.timestamp;
      let eventAt: Date | null = null;
      if (ts !== undefined && ts !== null) {
        const ms = typeof ts === 'string' || typeof ts === 'number' ? new Date(ts).getTime() : NaN;
        if (!Number.isFinite(ms)) return reject(400, 'bad_timestamp', 'timestamp is not a date');
        if (Math.abs(now() - ms) > o.toleranceSec * 1000)
          return reject(401, 'stale', `timestamp is outside the ${o.toleranceSec} s window`);
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
      const handled = o.registry.get(type).length > 0;
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
      rec = {
        source,
        dedupeKey,
        type,
        locationId,
        companyId,
        webhookId,
        orderingKey:
          handled && type ? o.registry.orderingKey({ source, type, locationId, companyId, payload: p }) : null,
        eventAt,
        payloadJson: raw.toString('utf8'),
        raw: null,
        signature,
        status,
        reason,
      };
    }

    if (o.overBacklog()) return throttle('backlog', 'dispatch backlog above WEBHOOK_MAX_BACKLOG');
    let outcome: PersistOutcome;
    let timer: NodeJS.Timeout | undefined;
    try {
      outcome = await Promise.race([
        o.committer.submit(rec),
        new Promise<never>((_, rej) => {
          timer = setTimeout(
            () => rej(new ThrottledError('timeout', `not stored within ${o.persistTimeoutMs} ms`)),
            o.persistTimeoutMs,
          );
        }),
      ]);
    } catch (e) {
      return throttle(e instanceof ThrottledError ? e.reason : 'store_error', (e as Error).message);
    } finally {
      clearTimeout(timer);
    }
    if (outcome.result === 'duplicate') {
      o.metrics.intake.inc({ source, outcome: 'duplicate' });
      return reply.code(200).type('application/json').send(DUPLICATE);
    }
    o.metrics.intake.inc({ source, outcome: 'accepted' });
    if (rec.status !== 'received') o.metrics.stored.inc({ source, status: rec.status });
    if (rec.status === 'unknown_type') o.metrics.unknownTypes.inc({ type: (rec.type ?? '(none)').slice(0, 64) });
    if (rec.status === 'dead')
      req.log.warn({ eventId: outcome.id, reason: rec.reason }, 'signed webhook stored as dead');
    return reply.code(200).type('application/json').send(OK);
  };

  app.post(APP_WEBHOOK_PATH, (req, reply) => handle('app', req, reply));
  app.post(PROVIDER_WEBHOOK_PATH, (req, reply) => handle('provider', req, reply));
  app.post<{ Params: { token: string } }>(PROVIDER_TOKEN_WEBHOOK_PATH, (req, reply) =>
    handle('provider', req, reply, req.params.token),
  );
}
