import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyCookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext, BridgeModule } from '../app.js';
import type { InstallationsService } from '../platform/installations/index.js';
import type { ProviderService } from '../capabilities/provider/index.js';
import type { ContactsService } from '../capabilities/contacts/index.js';
import { countByState, listJobs } from '../infra/queue/index.js';
import { bearerMatches, CSRF_HEADER, SESSION_COOKIE, sessionsFor } from '../infra/http/admin-auth.js';
import { errorResponses } from '../infra/http/schemas.js';
import { listEvents } from '../platform/webhooks/index.js';
import { rateBudgets } from '../platform/ghl/budget.js';
import { registerConsoleApi } from './api.js';
import { registerCallPayloadsApi } from './calls.js';
import { History } from './history.js';
import { consoleMigration, StoredRevocations } from './sessions-store.js';

export { maskSecrets } from './mask.js';
export { History, type Sample } from './history.js';

/** The built front-end (src/console/web → dist/web by `npm run build`): beside dist/console, or from src in dev/tests. */
function webDir(): string | undefined {
  for (const rel of ['../web/', '../../dist/web/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir + 'index.html')) return dir;
  }
  return undefined;
}

/** No inline script or style, nothing from another origin; EventSource and fetch only to the bridge itself. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ghl-bridge console</title></head>
<body><h1>ghl-bridge console</h1><p>The console is not built. Run <code>npm run build</code> (npm start does it).</p></body></html>`;

export interface DashboardOptions {
  /** Time-series sample interval (default 10 s). */
  sampleMs?: number;
  /** Log-in attempts per client address per minute (default 10). */
  loginPerMinute?: number;
}

/**
 * The operator console (issue 17): a Vite + React single-page app served under /admin (index.html and hashed
 * assets, with a strict CSP), a log-in that turns the admin key into a signed session cookie (CSRF token for every
 * mutation, rate-limited attempts, log-out), and the read API the screens use (api.ts), in the guarded admin scope.
 * Disabled when ADMIN_API_KEY is unset.
 */
export function dashboardModule(opts: DashboardOptions = {}): BridgeModule {
  let history: History | undefined;
  return {
    name: 'dashboard',
    migrations: { '0040_console': consoleMigration },
    init(ctx) {
      if (!ctx.config.ADMIN_API_KEY) return;
      // Log-outs are kept in the store, so another replica (or this one after a restart) refuses the cookie too.
      const revocations = new StoredRevocations(ctx.db);
      ctx.adminSessions?.useRevocations(revocations);
      ctx.maintain('prune console log-outs', 3600_000, () => revocations.prune());
      const h = (history = new History(ctx, opts.sampleMs ?? 10_000));
      const provider = ctx.services.find('provider');
      provider?.events.on('send', (e) => h.onSend(e));
      provider?.events.on('reported', (e) => h.onReported(e));
    },
    async start() {
      await history?.start();
    },
    async stop() {
      history?.stop();
    },
    async routes(app, ctx) {
      const key = ctx.config.ADMIN_API_KEY;
      if (!key) return;
      await registerPages(app, ctx, key, opts);
    },
    adminRoutes(app, ctx) {
      const r = app.withTypeProvider<ZodTypeProvider>();
      if (history) registerConsoleApi(app, ctx, history);
      registerCallPayloadsApi(app, ctx);
      r.get(
        '/admin/api/overview',
        {
          schema: {
            tags: ['admin: console'],
            summary: 'What the console shows: jobs, installations, webhooks, channels, provider',
            response: {
              200: z
                .record(z.string(), z.unknown())
                .describe(
                  'generatedAt, contactSync, mode, store, jobs, installations, webhooks, channels, provider, rateBudgets',
                ),
              ...errorResponses(401),
            },
          },
        },
        async () => overview(ctx),
      );
    },
  };
}

async function registerPages(app: FastifyInstance, ctx: AppContext, key: string, opts: DashboardOptions) {
  const sessions = ctx.adminSessions ?? sessionsFor(key);
  const secure = ctx.config.publicUrl.startsWith('https:');
  await app.register(fastifyCookie);
  await app.register(rateLimit, {
    global: false,
    // The connection's own address, not X-Forwarded-For (the server trusts proxies, and a client could send any
    // address there to escape the limit): behind a proxy every operator shares one budget, which log-in can afford.
    keyGenerator: (req) => req.socket.remoteAddress ?? 'unknown',
    errorResponseBuilder: (req, c) => ({
      statusCode: 429,
      error: 'Too Many Requests',
      message: `too many log-in attempts; retry in ${Math.ceil(c.ttl / 1000)} s`,
      requestId: req.id,
    }),
  });
  const dir = webDir();
  const index = dir ? readFileSync(dir + 'index.html', 'utf8') : NOT_BUILT;
  const html = { 'text/html': { schema: z.string() } };
  const page = {
    200: { description: 'HTML page', content: html },
    503: { description: 'console not built', content: html },
  };
  app.get(
    '/admin',
    {
      schema: {
        tags: ['console'],
        summary: 'The operator console (HTML shell; holds no data, log in with the admin key)',
        response: page,
      },
    },
    async (_req, reply) =>
      reply
        .headers(securityHeaders)
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .code(dir ? 200 : 503)
        .send(index),
  );
  if (dir) {
    await app.register(fastifyStatic, {
      root: dir + 'assets',
      prefix: '/admin/assets/',
      index: false,
      wildcard: true,
      setHeaders: (res) => {
        for (const [k, v] of Object.entries(securityHeaders)) res.setHeader(k, v);
        res.setHeader('cache-control', 'public, max-age=31536000, immutable');
      },
    });
  }

  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post(
    '/admin/login',
    {
      config: { rateLimit: { max: opts.loginPerMinute ?? 10, timeWindow: 60_000 } },
      schema: {
        tags: ['console'],
        summary: 'Log in to the console with the admin key: sets the session cookie, answers the CSRF token',
        body: z.object({ key: z.string().min(1, 'expected the admin key').max(1000) }),
        response: {
          200: z.object({ csrfToken: z.string(), expiresAt: z.number() }),
          ...errorResponses(400, 401, 429),
        },
      },
    },
    async (req, reply) => {
      if (!bearerMatches(`Bearer ${req.body.key}`, key)) {
        req.log.warn('console: log-in refused (wrong admin key)');
        return reply.code(401).send({
          statusCode: 401,
          error: 'Unauthorized',
          message: 'wrong admin key',
          requestId: req.id,
        });
      }
      const { session, cookie } = sessions.issue();
      reply.setCookie(SESSION_COOKIE, cookie, {
        path: '/admin',
        httpOnly: true,
        secure,
        sameSite: 'strict',
        expires: new Date(session.expiresAt),
      });
      return { csrfToken: session.csrf, expiresAt: session.expiresAt };
    },
  );
  r.post(
    '/admin/logout',
    {
      schema: {
        tags: ['console'],
        summary: `Log out: ends the session (send its CSRF token in ${CSRF_HEADER}) and clears the cookie`,
        response: { 200: z.object({ ok: z.literal(true) }), ...errorResponses(403) },
      },
    },
    async (req, reply) => {
      const s = sessions.verify(req.cookies[SESSION_COOKIE]);
      if (s) {
        if (!sessions.csrfMatches(s, req.headers[CSRF_HEADER]))
          return reply.code(403).send({
            statusCode: 403,
            error: 'Forbidden',
            message: `log-out needs the session's CSRF token in ${CSRF_HEADER}`,
            requestId: req.id,
          });
        await sessions.revoke(s);
      }
      reply.clearCookie(SESSION_COOKIE, { path: '/admin', httpOnly: true, secure, sameSite: 'strict' });
      return { ok: true as const };
    },
  );
}

export async function overview(ctx: AppContext) {
  // Both optional: the console shows what the loaded modules provide.
  const installations: InstallationsService | undefined = ctx.services.find('installations');
  const provider: ProviderService | undefined = ctx.services.find('provider');
  const contacts: ContactsService | undefined = ctx.services.find('contacts');
  const inst = installations ? await installations.list() : [];
  const byStatus: Record<string, number> = {};
  for (const i of inst) byStatus[i.status] = (byStatus[i.status] ?? 0) + 1;
  const channels = provider ? await provider.listChannels() : [];
  // Last catch-up per location (both streams: the older run and checkpoint, the sums of the last runs).
  const catchup = new Map<
    string,
    { lastRunAt: Date | null; checkpointAt: Date; caughtUp: number; expired: number; error: string | null }
  >();
  for (const r of provider ? await provider.catchupOverview() : []) {
    const c = catchup.get(r.locationId);
    if (!c)
      catchup.set(r.locationId, {
        lastRunAt: r.lastRunAt,
        checkpointAt: r.checkpointAt,
        caughtUp: r.lastCaughtUp,
        expired: r.lastExpired,
        error: r.lastError,
      });
    else {
      if (r.lastRunAt && (!c.lastRunAt || r.lastRunAt < c.lastRunAt)) c.lastRunAt = r.lastRunAt;
      if (r.checkpointAt < c.checkpointAt) c.checkpointAt = r.checkpointAt;
      c.caughtUp += r.lastCaughtUp;
      c.expired += r.lastExpired;
      c.error ??= r.lastError;
    }
  }
  return {
    generatedAt: new Date().toISOString(),
    // Contact push per location (issue 14): last sync, status, error, counts.
    contactSync: contacts ? await contacts.syncStatus() : [],
    mode: ctx.config.sandbox ? 'sandbox' : 'live',
    store: ctx.store.kind,
    jobs: {
      byState: await countByState(ctx.db),
      dead: (await listJobs(ctx.db, { state: 'dead', limit: 25 })).map(jobView),
    },
    installations: {
      byStatus,
      // Only what an operator needs; tokens never leave the vault.
      needingAttention: inst
        .filter((i) => i.status !== 'active')
        .slice(0, 50)
        .map((i) => ({
          id: i.id,
          companyId: i.companyId,
          locationId: i.locationId,
          status: i.status,
          reason: i.statusReason,
        })),
      total: inst.length,
    },
    webhooks: { recent: await listEvents(ctx.db, { limit: 25 }) },
    channels: channels.map((c) => ({
      locationId: c.locationId,
      kind: c.kind,
      enabled: c.enabled,
      config: c.config,
      catchup: catchup.get(c.locationId) ?? null,
    })),
    // The Delivery URL only masked: its token is a secret.
    provider: provider
      ? { deliveryUrl: await provider.maskedDeliveryUrl(), ...(await provider.confirmationOverview()) }
      : null,
    rateBudgets: await rateBudgets(ctx.db),
  };
}

function jobView(j: Awaited<ReturnType<typeof listJobs>>[number]) {
  return {
    id: j.id,
    kind: j.kind,
    attempts: j.attempts,
    maxAttempts: j.max_attempts,
    lastError: j.last_error,
    scope: j.scope,
    updatedAt: j.updated_at,
  };
}
