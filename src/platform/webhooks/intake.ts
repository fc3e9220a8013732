import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBody } from '../../infra/http/errors.js';
import { apiErrorSchema } from '../../infra/http/schemas.js';
import type { Logger } from '../../infra/log/logger.js';
import { classifyDelivery } from './classify.js';
import type { WebhookMetrics } from './metrics.js';
import type { HandlerRegistry } from './registry.js';
import { ThrottledError, type GroupCommitter, type PersistOutcome } from './store.js';
import type { WebhookSource } from './tables.js';
import type { WebhookVerifier } from './verify.js';

export { URL_TOKEN_SIGNATURE } from './classify.js';

export const APP_WEBHOOK_PATH = '/webhooks/ghl';
export const PROVIDER_WEBHOOK_PATH = '/webhooks/ghl/provider';
/** The Delivery URL with its secret token (GHL does not sign Delivery-URL calls: docs/ghl-behaviour.md#unsigned-provider-deliveries, #224). */
export const PROVIDER_TOKEN_WEBHOOK_PATH = '/webhooks/ghl/provider/:token';

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

const OK = '{"ok":true}';
const DUPLICATE = '{"ok":true,"duplicate":true}';

/** Route schemas: the body is described only (the signature covers the raw bytes; it is parsed after verifying). */
const stored = z.object({ ok: z.literal(true), duplicate: z.literal(true).optional() });
const intakeSchema = (summary: string) => ({
  tags: ['webhooks'],
  summary,
  description:
    'Signed by GHL (X-GHL-Signature Ed25519 over the raw body). 200 once stored durably (duplicates included); ' +
    '429 with Retry-After when it could not be stored (GHL retries only 429); 400/401 are not retried.',
  body: z.unknown().describe('the GHL webhook JSON, verified over the raw bytes'),
  response: { 200: stored, 400: apiErrorSchema, 401: apiErrorSchema, 429: apiErrorSchema },
});

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
    const reject = (status: 400 | 401, reason: string, message: string) => {
      o.metrics.rejected.inc({ source, reason });
      o.metrics.intake.inc({ source, outcome: 'rejected' });
      req.log.warn({ reason, source }, 'webhook rejected');
      return reply.code(status).send(errorBody(req.id, status, message, { errorCode: reason }));
    };
    const throttle = (reason: string, message: string) => {
      o.metrics.throttled.inc({ source, reason });
      o.metrics.intake.inc({ source, outcome: 'throttled' });
      req.log.warn({ reason, source, err: message }, 'webhook not stored; answered 429 so GHL retries');
      return reply
        .code(429)
        .header('retry-after', '60')
        .send(errorBody(req.id, 429, `not stored (${reason}); retry later`, { errorCode: 'try_again_later' }));
    };

    const v = o.verifier.verify(raw, req.headers);
    // The token is looked up only when the signature does not decide alone.
    const token = urlToken !== undefined && !v.ok ? { valid: await checkToken(urlToken) } : undefined;
    const decision = classifyDelivery({
      source,
      raw,
      verification: v,
      ...(token ? { urlToken: token } : {}),
      insecureSkipVerify: o.insecureSkipVerify,
      toleranceSec: o.toleranceSec,
      nowMs: now(),
      hasHandler: (type) => o.registry.get(type).length > 0,
      orderingKey: (evt) => o.registry.orderingKey(evt),
    });
    if (decision.action === 'reject') return reject(decision.status, decision.reason, decision.message);
    if (decision.unverified)
      req.log.warn(
        { source, verification: decision.unverified },
        'WEBHOOK_INSECURE_SKIP_VERIFY is on: accepting a webhook without a valid signature',
      );
    const rec = decision.record;

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

  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post(APP_WEBHOOK_PATH, { schema: intakeSchema('GHL app webhooks (Marketplace app events)') }, (req, reply) =>
    handle('app', req, reply),
  );
  r.post(
    PROVIDER_WEBHOOK_PATH,
    { schema: intakeSchema('GHL conversation-provider deliveries (outbound messages), signed') },
    (req, reply) => handle('provider', req, reply),
  );
  r.post(
    PROVIDER_TOKEN_WEBHOOK_PATH,
    {
      schema: {
        ...intakeSchema('GHL conversation-provider deliveries to the Delivery URL (token in the path)'),
        params: z.object({ token: z.string().min(1).max(512).describe('the Delivery-URL token') }),
      },
    },
    (req, reply) => handle('provider', req, reply, req.params.token),
  );
}
