import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { rateHeadersOf } from './auth.js';
import { Clock } from './clock.js';
import type { Ctx } from './context.js';
import { EmulatorControl } from './control.js';
import { GhlError } from './errors.js';
import { Faults } from './faults.js';
import { IdGen } from './ids.js';
import { registerInstallPage } from './install-page.js';
import { loadOrGenerateKeys, type KeyMaterial } from './keys.js';
import { OAuthError } from './oauth-service.js';
import { resolveOptions, type EmulatorOptions as BaseOptions } from './options.js';
import { RateLimiter } from './ratelimit.js';
import { registerChatControlRoutes, registerChatRoutes } from './routes/chat.js';
import { registerCallRoutes } from './routes/calls.js';
import { registerContactRoutes } from './routes/contacts.js';
import { registerControlRoutes } from './routes/control.js';
import { registerConversationRoutes } from './routes/conversations.js';
import { registerLocationRoutes } from './routes/locations.js';
import { registerOAuthRoutes } from './routes/oauth.js';
import { opportunityControl, registerOpportunityRoutes, type OpportunityControl } from './routes/opportunities.js';
import { State } from './state.js';
import { WebhookDispatcher } from './webhooks.js';

export interface EmulatorOptions extends BaseOptions {
  /** Reuse signing keys across runs (PKCS#8 PEMs); generated when absent. */
  keys?: KeyMaterial;
  /** RSA modulus for generated keys, default 2048 (GHL uses 4096). */
  rsaModulusLength?: number;
}

export interface Emulator {
  app: FastifyInstance;
  listen(opts?: { port?: number; host?: string }): Promise<string>;
  baseUrl: string;
  close(): Promise<void>;
  keys: { ed25519PublicKeyPem: string; rsaPublicKeyPem: string };
  clock: { now(): number; advance(ms: number): void };
  control: EmulatorControl;
  /** Pipelines, opportunities and workflow trigger hooks (routes/opportunities.ts). */
  opportunities: OpportunityControl;
  idle(): Promise<void>;
}

export { EmulatorControl } from './control.js';
export type { CreateAppInput, CreatedApp, DeliveryFilter } from './control.js';
export type { FaultSpec, FaultKind } from './faults.js';
export type { OpportunityControl } from './routes/opportunities.js';
export type { AuthorizeInput, AuthorizeResult } from './oauth-service.js';
export type * from './state.js';

/** Paths that belong to the emulator itself, not the GHL surface (no rate-limit headers, no faults). */
const isControlPath = (url: string) => url.startsWith('/_emulator');

export async function createEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const opts = resolveOptions(options);
  const keys = await loadOrGenerateKeys(options.keys, options.rsaModulusLength);
  const clock = new Clock();
  const ids = new IdGen(opts.seed);
  const limiter = new RateLimiter(clock, opts.rateLimit);
  const faults = new Faults();
  const ctx: Ctx = {
    state: new State(),
    clock,
    ids,
    opts,
    limiter,
    faults,
    webhooks: undefined as unknown as WebhookDispatcher,
  };
  ctx.webhooks = new WebhookDispatcher(ctx.state, clock, ids, keys, opts);
  const resetAll = () => {
    ctx.state = new State();
    // The dispatcher keeps a State reference for the delivery log; rebuild it against the fresh state.
    ctx.webhooks.close();
    ctx.webhooks = new WebhookDispatcher(ctx.state, clock, ids, keys, opts);
    limiter.reset();
    faults.reset();
  };
  const control = new EmulatorControl(() => ctx, resetAll);

  const app = Fastify({ logger: opts.logger, forceCloseConnections: true });
  await app.register(formbody);

  const hung = new Set<{ timer: NodeJS.Timeout; req: FastifyRequest }>();
  app.addHook('onRequest', async (req, reply) => {
    if (isControlPath(req.url)) return;
    const kind = faults.take(req.method, req.url.split('?')[0] ?? req.url);
    if (!kind) return;
    if (kind === '429') {
      return reply
        .code(429)
        .header('retry-after', '10')
        .header('x-ratelimit-remaining', '0')
        .send({ statusCode: 429, message: 'Too Many Requests' });
    }
    if (kind === '500') return reply.code(500).send({ statusCode: 500, message: 'Internal server error' });
    // 'timeout': never answer; drop the socket after faultTimeoutMs (or on close).
    reply.hijack();
    const entry = {
      req,
      timer: setTimeout(() => {
        hung.delete(entry);
        req.raw.socket?.destroy();
      }, opts.faultTimeoutMs),
    };
    hung.add(entry);
    return new Promise<void>(() => undefined);
  });

  app.addHook('onSend', async (req, reply, payload) => {
    if (isControlPath(req.url)) return payload;
    const calls = ctx.state.apiCalls;
    if (calls.length >= 100_000) calls.splice(0, 10_000);
    calls.push({
      method: req.method,
      path: req.url.split('?')[0] ?? req.url,
      status: reply.statusCode,
      at: clock.now(),
    });
    const h = rateHeadersOf(req) ?? limiter.take(undefined).headers;
    for (const [k, v] of Object.entries(h)) if (!reply.hasHeader(k)) reply.header(k, v);
    return payload;
  });

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof GhlError) return reply.code(err.statusCode).headers(err.headers).send(err.body);
    if (err instanceof OAuthError) return reply.code(err.status).send(err.body);
    const e = err as { statusCode?: number; message?: string };
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    if (status === 500) app.log.error(err);
    return reply
      .code(status)
      .send({ statusCode: status, message: status === 500 ? 'Internal server error' : (e.message ?? 'Bad Request') });
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send({ statusCode: 404, message: `Cannot ${req.method} ${req.url.split('?')[0]}`, error: 'Not Found' }),
  );

  registerOAuthRoutes(app, ctx);
  registerInstallPage(app, ctx);
  registerContactRoutes(app, ctx);
  registerConversationRoutes(app, ctx);
  registerCallRoutes(app, ctx);
  registerLocationRoutes(app, ctx);
  registerChatRoutes(app, ctx);
  registerOpportunityRoutes(app, ctx);
  const pub = { ed25519PublicKeyPem: keys.ed25519PublicKeyPem, rsaPublicKeyPem: keys.rsaPublicKeyPem };
  const idle = () => ctx.webhooks.idle();
  registerControlRoutes(app, control, { clock, keys: pub, idle });
  registerChatControlRoutes(app, () => ctx);

  const emu: Emulator = {
    app,
    baseUrl: '',
    keys: pub,
    clock: { now: () => clock.now(), advance: (ms) => clock.advance(ms) },
    control,
    opportunities: opportunityControl(ctx),
    idle,
    async listen(o = {}) {
      const host = o.host ?? '127.0.0.1';
      await app.listen({ port: o.port ?? 0, host });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : (o.port ?? 0);
      const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
      emu.baseUrl = `http://${h}:${port}`;
      return emu.baseUrl;
    },
    async close() {
      ctx.webhooks.close();
      for (const h of hung) {
        clearTimeout(h.timer);
        h.req.raw.socket?.destroy();
      }
      hung.clear();
      await app.close();
    },
  };
  return emu;
}

export { seedDemo, DEMO_SCOPES, type DemoSeed } from './demo.js';
