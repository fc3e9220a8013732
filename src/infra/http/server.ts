import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { redactUrl, type Logger } from '../log/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { HttpError, reasonPhrase, type ApiError, type ErrorDetail } from './errors.js';
import { registerOpenApi } from './openapi.js';

export interface ServerOptions {
  log: Logger;
  metrics: Metrics;
  bodyLimit: number;
  /** Slow-client limits (see HTTP_*_TIMEOUT_MS); Fastify and Node leave requests and connections unbounded otherwise. */
  timeouts?: { headersMs: number; requestMs: number; keepAliveMs: number; connectionMs: number };
  /** Readiness checks: each returns null when fine or a short reason. */
  readiness: () => Promise<Record<string, string | null>>;
  /** Extra state shown by /readyz that does not make the replica unready (e.g. the LISTEN connection). */
  readinessDetail?: () => Record<string, unknown>;
  /**
   * Hot paths (GHL webhooks, channel inbound): URL prefixes whose routes log at warn unless they set a level of their
   * own, so a burst does not cost two info lines per request. They are still counted in the request metrics.
   */
  quietRoutePrefixes?: string[];
}

/**
 * The HTTP edge: request ids (honouring X-Request-Id), pino request logs, a body-size limit,
 * Prometheus metrics, and the liveness / readiness probes. Feature routes are added by modules.
 */
export function buildServer(opts: ServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.log as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // GHL does not retry a webhook answered 503 (only 429): a draining bridge answers 429 (below), never 503.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    trustProxy: true,
    ...(opts.timeouts
      ? {
          requestTimeout: opts.timeouts.requestMs,
          keepAliveTimeout: opts.timeouts.keepAliveMs,
          connectionTimeout: opts.timeouts.connectionMs,
          // Node checks the header and request deadlines on an interval (default 30 s): check every second so a slow
          // client is cut close to its deadline.
          http: {
            headersTimeout: opts.timeouts.headersMs,
            requestTimeout: opts.timeouts.requestMs,
            connectionsCheckingInterval: Math.min(1000, opts.timeouts.headersMs),
          },
        }
      : {}),
  });

  // Route schemas are zod (fastify-type-provider-zod): one declaration validates the request, serializes the answer
  // and feeds the OpenAPI document (openapi.ts).
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerOpenApi(app);

  const quiet = opts.quietRoutePrefixes ?? [];
  if (quiet.length) {
    app.addHook('onRoute', (route) => {
      if (!route.logLevel && quiet.some((p) => route.url.startsWith(p))) route.logLevel = 'warn';
    });
  }

  // Draining (close() started, listener still open or a keep-alive connection still busy): 429 + Retry-After, which
  // GHL retries (docs/ghl-behaviour.md#webhook-retries), and the connection is closed after the answer. Probes answer
  // as usual (/readyz is 503 "draining" so a load balancer stops routing here).
  let draining = false;
  app.addHook('preClose', async () => {
    draining = true;
  });
  app.addHook('onRequest', async (req, reply) => {
    if (!draining) return;
    const path = req.url.split('?')[0];
    if (path === '/healthz' || path === '/metrics') return;
    reply.header('connection', 'close');
    if (path === '/readyz')
      return reply.code(503).send({ status: 'unavailable', checks: { draining: 'shutting down' } });
    return reply.code(429).header('retry-after', '5').send({
      statusCode: 429,
      error: 'Too Many Requests',
      message: 'the bridge is restarting; retry shortly',
      requestId: req.id,
    });
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    opts.metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    opts.metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });

  // The one error shape (errors.ts): { statusCode, error, message, requestId, details? }; 5xx never leak internals.
  app.setErrorHandler(
    (
      err: Error & {
        statusCode?: number;
        code?: string;
        validation?: { instancePath?: string; params?: Record<string, unknown>; message?: string }[];
        validationContext?: string;
      },
      req,
      reply,
    ) => {
      const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
      if (status >= 500) req.log.error({ err }, 'request failed');
      // Schema validation (zod issues mapped by the type provider, or Fastify's own): one detail per field, named
      // as `body.config.token`, `query.limit`, `params.id`).
      const where = err.validationContext === 'querystring' ? 'query' : (err.validationContext ?? 'request');
      const details: ErrorDetail[] | undefined =
        err instanceof HttpError
          ? err.details
          : err.validation?.map((v) => {
              const missing = typeof v.params?.missingProperty === 'string' ? `/${v.params.missingProperty}` : '';
              return {
                path: [where, ...`${v.instancePath ?? ''}${missing}`.split('/').filter(Boolean)].join('.'),
                message: v.message ?? 'invalid',
              };
            });
      const body: ApiError = {
        statusCode: status,
        error:
          status >= 500
            ? 'Internal Server Error'
            : err instanceof HttpError
              ? (err.errorCode ?? reasonPhrase(status))
              : err.validation
                ? reasonPhrase(status)
                : (err.code ?? reasonPhrase(status)),
        message:
          status >= 500
            ? 'internal error; see the server log for request ' + req.id
            : details?.length && err.validation
              ? details.map((d) => `${d.path}: ${d.message}`).join('; ')
              : err.message,
        requestId: req.id,
        ...(details?.length && status < 500 ? { details } : {}),
      };
      void reply.status(status).send(body);
    },
  );
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({
      statusCode: 404,
      error: 'Not Found',
      message: `no route for ${req.method} ${redactUrl(req.url.split('?')[0] ?? '')}`,
      requestId: req.id,
    });
  });

  // Probes and metrics: registered after the OpenAPI plugin (a plugin of their own keeps that order) so they are
  // in the document too.
  void app.register(async (probes) => {
    const r = probes.withTypeProvider<ZodTypeProvider>();
    const tags = ['probes'];
    r.get(
      '/healthz',
      {
        logLevel: 'warn',
        schema: {
          tags,
          summary: 'Liveness: the process answers',
          response: { 200: z.object({ status: z.literal('ok') }) },
        },
      },
      async () => ({ status: 'ok' as const }),
    );
    const readyBody = z.object({
      status: z.enum(['ready', 'unavailable']),
      checks: z.record(z.string(), z.string().nullable()).describe('each check: null when fine, else the reason'),
      detail: z.record(z.string(), z.unknown()).optional(),
    });
    r.get(
      '/readyz',
      {
        logLevel: 'warn',
        schema: {
          tags,
          summary: 'Readiness: database reachable, migrations applied, workers running',
          response: { 200: readyBody, 503: readyBody },
        },
      },
      async (_req, reply) => {
        const checks = await opts.readiness();
        const failing = Object.entries(checks).filter(([, v]) => v !== null);
        return reply.status(failing.length ? 503 : 200).send({
          status: failing.length ? 'unavailable' : 'ready',
          checks,
          ...(opts.readinessDetail ? { detail: opts.readinessDetail() } : {}),
        });
      },
    );
    r.get(
      '/metrics',
      {
        logLevel: 'warn',
        schema: {
          tags,
          summary: 'Prometheus metrics (text exposition format)',
          produces: ['text/plain'],
          response: { 200: z.string().describe('Prometheus text exposition format') },
        },
      },
      async (_req, reply) => {
        const body = await opts.metrics.registry.metrics();
        return reply.type(opts.metrics.registry.contentType).send(body);
      },
    );
  });
  return app;
}
