/**
 * Local fake of the Cast.ph SMS API (CAST.md, edition N), for adapter tests. Plain Fastify on 127.0.0.1:0.
 *
 * Behaviour:
 * - `X-API-Key` auth (default: any `cast_` + 64 hex or `cast_test_…` key; or an explicit list) → 401 INVALID_API_KEY.
 * - POST /api/v1/sms/send (and legacy /api/sms/send): JSON validation → 400 INVALID_REQUEST / VALIDATION_ERROR.
 * - `X-Idempotency-Key` (≤255 chars, scoped per API key): the first *processed* response is cached and replayed with
 *   `X-Idempotent-Replay: true`. 5xx/429 are not cached (a retry with the same key must be able to succeed).
 * - Per-key rate limit (default 10 sends/s, sliding 1 s window) → 429 RATE_LIMIT_EXCEEDED + `Retry-After`.
 * - Fault injection for the next N sends: 500/502/503/429, or `timeout` (hang; optionally after processing, i.e. the
 *   SMS was sent but the response is lost).
 * - GET /api/v1/sms/status/:id (status settable via `setStatus`), 404 NOT_FOUND for unknown/foreign ids.
 * - Sandbox keys (`cast_test_…`): ids `SANDBOX_…`, body adds `sandbox: true`.
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { AddressInfo } from 'node:net';
import { countSmsSegments } from '../../src/capabilities/channels/sms.js';

export type FakeCastFault = 500 | 502 | 503 | 429 | 'timeout';

export interface FakeCastOptions {
  /** Accepted keys; default: any well-formed key. */
  apiKeys?: string[];
  /** Keys that are known but refused, e.g. `{ key: { status: 402, code: 'INSUFFICIENT_CREDITS' } }`. */
  keyErrors?: Record<string, { status: number; code: string; error?: string }>;
  /** Per-key sends per second before 429 (default 10). */
  ratePerSecond?: number;
  /** `Retry-After` seconds on 429 (default 1). */
  retryAfterSeconds?: number;
  /** `any` (doc N: 7–20 of digits and `+()-`) or `local` (doc A: `09` + 9 digits only). Default `any`. */
  toFormat?: 'any' | 'local';
  /** Default 10,000 (doc N). */
  maxMessageLength?: number;
  /** Approved sender IDs; undefined → any ≤20 chars. */
  senderIds?: string[];
  /** Prepaid parts; undefined → unlimited. */
  credits?: number;
}

export interface FakeCastSend {
  to: string;
  message: string;
  senderId?: string;
  idempotencyKey?: string;
  messageId: string;
  parts: number;
  sandbox: boolean;
  path: string;
  at: number;
}

export interface FakeCastRequest {
  method: string;
  path: string;
  idempotencyKey?: string;
  status: number;
  replay: boolean;
  at: number;
}

type CastStatus = 'sent' | 'pending' | 'delivered' | 'undelivered' | 'failed';

export interface FakeCast {
  url: string;
  /** Every SMS actually processed (replays and faults are not sends). */
  sends: FakeCastSend[];
  /** Every request, with its answer status. */
  requests: FakeCastRequest[];
  injectFault(fault: FakeCastFault, count?: number, opts?: { afterProcessing?: boolean }): void;
  setStatus(messageId: string, status: CastStatus, extra?: { dlr_status?: string; error_message?: string }): void;
  close(): Promise<void>;
}

interface CachedResponse {
  status: number;
  body: unknown;
}

interface StatusEntry {
  apiKey: string;
  status: CastStatus;
  sent_at: string;
  dlr_status?: string;
  delivered_at?: string;
  error_message?: string;
}

const WELL_FORMED_KEY = /^cast_([0-9a-f]{64}|test_[A-Za-z0-9_]+)$/;

export async function startFakeCast(opts: FakeCastOptions = {}): Promise<FakeCast> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const sends: FakeCastSend[] = [];
  const requests: FakeCastRequest[] = [];
  const faults: { fault: FakeCastFault; afterProcessing: boolean }[] = [];
  const idem = new Map<string, CachedResponse>();
  const statuses = new Map<string, StatusEntry>();
  const windowByKey = new Map<string, number[]>();
  const hangers = new Set<() => void>();
  let credits = opts.credits ?? Number.POSITIVE_INFINITY;
  let seq = 0;
  const rate = opts.ratePerSecond ?? 10;

  // Take bodies raw so we can answer malformed JSON / wrong content type the way Cast does (400 INVALID_REQUEST).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  const err = (reply: FastifyReply, status: number, code: string, error: string): FastifyReply =>
    reply.code(status).send({ success: false, error, error_code: code });

  function authenticate(req: FastifyRequest, reply: FastifyReply): string | undefined {
    const key = req.headers['x-api-key'];
    if (typeof key !== 'string' || !key) {
      err(reply, 401, 'INVALID_API_KEY', 'API key is required');
      return undefined;
    }
    const known = opts.apiKeys
      ? opts.apiKeys.includes(key) || key in (opts.keyErrors ?? {})
      : WELL_FORMED_KEY.test(key) || key in (opts.keyErrors ?? {});
    if (!known) {
      err(reply, 401, 'INVALID_API_KEY', 'Invalid API key');
      return undefined;
    }
    const refused = opts.keyErrors?.[key];
    if (refused) {
      err(reply, refused.status, refused.code, refused.error ?? refused.code.toLowerCase().replace(/_/g, ' '));
      return undefined;
    }
    return key;
  }

  function rateLimited(key: string, now: number): boolean {
    const win = (windowByKey.get(key) ?? []).filter((t) => now - t < 1000);
    if (win.length >= rate) {
      windowByKey.set(key, win);
      return true;
    }
    win.push(now);
    windowByKey.set(key, win);
    return false;
  }

  function hang(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        hangers.delete(done);
        resolve();
      };
      const t = setTimeout(done, 120_000);
      hangers.add(done);
    });
  }

  /** Validate and "send"; returns the response to give (and to cache). */
  function processSend(
    key: string,
    rawBody: unknown,
    contentType: string | undefined,
    idemKey: string | undefined,
    path: string,
  ): CachedResponse {
    const bad = (code: string, error: string, status = 400): CachedResponse => ({
      status,
      body: { success: false, error, error_code: code },
    });
    if (!contentType?.toLowerCase().startsWith('application/json'))
      return bad('INVALID_REQUEST', 'Content-Type must be application/json');
    let body: unknown;
    try {
      body = JSON.parse(typeof rawBody === 'string' ? rawBody : '');
    } catch {
      return bad('INVALID_REQUEST', 'Invalid JSON body');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return bad('INVALID_REQUEST', 'Invalid JSON body');
    const b = body as Record<string, unknown>;
    if (typeof b.to !== 'string' || b.to === '') return bad('VALIDATION_ERROR', 'to is required');
    const toOk = opts.toFormat === 'local' ? /^09\d{9}$/.test(b.to) : /^[0-9+()-]{7,20}$/.test(b.to);
    if (!toOk) return bad('VALIDATION_ERROR', 'Invalid phone number format');
    if (typeof b.message !== 'string' || b.message === '') return bad('VALIDATION_ERROR', 'message is required');
    if (b.message.length > (opts.maxMessageLength ?? 10_000)) return bad('VALIDATION_ERROR', 'message is too long');
    if (b.sender_id !== undefined) {
      if (typeof b.sender_id !== 'string' || b.sender_id.length > 20)
        return bad('VALIDATION_ERROR', 'sender_id must be at most 20 characters');
      if (opts.senderIds && !opts.senderIds.includes(b.sender_id))
        return bad('VALIDATION_ERROR', 'sender_id is not approved for this account');
    }
    const parts = countSmsSegments(b.message).parts;
    if (parts > credits) return bad('INSUFFICIENT_CREDITS', 'Insufficient credits', 402);
    credits -= parts;
    const sandbox = key.startsWith('cast_test_');
    seq += 1;
    const messageId = `${sandbox ? 'SANDBOX_' : 'CAST'}${seq.toString(16).padStart(12, '0').toUpperCase()}`;
    sends.push({
      to: b.to,
      message: b.message,
      ...(typeof b.sender_id === 'string' ? { senderId: b.sender_id } : {}),
      ...(idemKey ? { idempotencyKey: idemKey } : {}),
      messageId,
      parts,
      sandbox,
      path,
      at: Date.now(),
    });
    statuses.set(messageId, { apiKey: key, status: 'sent', sent_at: new Date().toISOString() });
    return {
      status: 200,
      body: { success: true, message_id: messageId, parts, ...(sandbox ? { sandbox: true } : {}) },
    };
  }

  const sendHandler = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const path = req.url.split('?')[0] ?? req.url;
    const now = Date.now();
    const idemHeader = req.headers['x-idempotency-key'];
    const idemKey = typeof idemHeader === 'string' && idemHeader !== '' ? idemHeader : undefined;
    const log = (status: number, replay = false): void => {
      requests.push({
        method: req.method,
        path,
        ...(idemKey ? { idempotencyKey: idemKey } : {}),
        status,
        replay,
        at: now,
      });
    };
    const key = authenticate(req, reply);
    if (!key) {
      log(reply.statusCode);
      return reply;
    }
    if (idemKey && idemKey.length > 255) {
      log(400);
      return err(reply, 400, 'VALIDATION_ERROR', 'X-Idempotency-Key must be at most 255 characters');
    }
    const fault = faults.shift();
    if (fault && fault.fault !== 'timeout') {
      log(fault.fault);
      if (fault.fault === 429) {
        return err(
          reply.header('retry-after', String(opts.retryAfterSeconds ?? 1)),
          429,
          'RATE_LIMIT_EXCEEDED',
          'Rate limit exceeded',
        );
      }
      const code =
        fault.fault === 500 ? 'INTERNAL_ERROR' : fault.fault === 502 ? 'PROVIDER_ERROR' : 'SERVICE_UNAVAILABLE';
      return err(reply, fault.fault, code, 'Injected fault');
    }
    if (rateLimited(key, now)) {
      log(429);
      return err(
        reply.header('retry-after', String(opts.retryAfterSeconds ?? 1)),
        429,
        'RATE_LIMIT_EXCEEDED',
        'Rate limit exceeded',
      );
    }
    const cacheKey = idemKey ? `${key}\n${idemKey}` : undefined;
    const cached = cacheKey ? idem.get(cacheKey) : undefined;
    if (cached && !(fault?.fault === 'timeout')) {
      log(cached.status, true);
      return reply.code(cached.status).header('x-idempotent-replay', 'true').send(cached.body);
    }
    if (fault?.fault === 'timeout') {
      if (fault.afterProcessing && !cached) {
        const res = processSend(key, req.body, req.headers['content-type'], idemKey, path);
        if (cacheKey && res.status < 500 && res.status !== 429) idem.set(cacheKey, res);
      }
      log(0);
      await hang();
      return reply.code(504).send({ success: false, error: 'fake timeout', error_code: 'INTERNAL_ERROR' });
    }
    const res = processSend(key, req.body, req.headers['content-type'], idemKey, path);
    if (cacheKey && res.status < 500 && res.status !== 429) idem.set(cacheKey, res);
    log(res.status);
    return reply.code(res.status).send(res.body);
  };

  app.post('/api/v1/sms/send', sendHandler);
  app.post('/api/sms/send', sendHandler);

  const statusHandler = async (
    req: FastifyRequest<{ Params: { id: string } }>,
    reply: FastifyReply,
  ): Promise<FastifyReply> => {
    const key = authenticate(req, reply);
    if (!key) return reply;
    const entry = statuses.get(req.params.id);
    if (!entry || entry.apiKey !== key) return err(reply, 404, 'NOT_FOUND', 'Message not found');
    const { apiKey: _k, ...rest } = entry;
    return reply.send({ success: true, message_id: req.params.id, ...rest });
  };
  app.get('/api/v1/sms/status/:id', statusHandler);
  app.get('/api/sms/status/:id', statusHandler);

  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    sends,
    requests,
    injectFault(fault, count = 1, o = {}) {
      for (let i = 0; i < count; i++) faults.push({ fault, afterProcessing: o.afterProcessing ?? false });
    },
    setStatus(messageId, status, extra = {}) {
      const entry = statuses.get(messageId);
      if (!entry) throw new Error(`fake cast: unknown message ${messageId}`);
      entry.status = status;
      if (extra.dlr_status !== undefined) entry.dlr_status = extra.dlr_status;
      if (extra.error_message !== undefined) entry.error_message = extra.error_message;
      if (status === 'delivered') {
        entry.dlr_status ??= 'DELIVRD';
        entry.delivered_at = new Date().toISOString();
      }
    },
    async close() {
      for (const h of [...hangers]) h();
      await app.close();
    },
  };
}
