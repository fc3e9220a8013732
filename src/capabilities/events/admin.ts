import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { httpError } from '../../infra/http/errors.js';
import { errorResponses, idString, timestamp } from '../../infra/http/schemas.js';
import { BRIDGE_EVENT_SCHEMAS, EVENT_FILTER_PATTERN } from './schemas.js';
import { RETRY_SCHEDULE_MS } from './deliver.js';
import { SubscriptionInputError, type SubscriptionStore } from './service.js';

const tags = ['admin: event subscriptions'];

const subscriptionView = z
  .object({
    id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    eventTypes: z.array(z.string()),
    locationIds: z.array(z.string()).nullable(),
    ordering: z.enum(['none', 'location', 'contact']),
    state: z.enum(['enabled', 'disabled']),
    disabledReason: z.string().nullable(),
    disabledBy: z.string().nullable().describe('operator, or system (410 answer, failing too long)'),
    disabledAt: timestamp.nullable(),
    failingSince: timestamp.nullable(),
    consecutiveFailures: z.number().int(),
    circuitOpenUntil: timestamp.nullable(),
    previousSecretUntil: timestamp.nullable().describe('during a rotation: until when the previous secret also signs'),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'EventSubscription' });

const createBody = z.object({
  url: z.url({ message: 'expected an absolute http(s) URL' }).max(2000),
  eventTypes: z
    .array(
      z.string().regex(EVENT_FILTER_PATTERN, 'expected an event type or a prefix ending in * (Contact*, message.*, *)'),
    )
    .min(1, 'expected at least one event type')
    .max(200),
  locationIds: z.array(idString).max(1000).nullable().optional(),
  ordering: z.enum(['none', 'location', 'contact']).optional(),
  description: z.string().max(500).nullable().optional(),
  secret: z.string().max(200).optional().describe('whsec_… of your own; generated when absent'),
});

const idParams = z.object({ id: idString });
const attemptView = z.object({
  attempt: z.number().int(),
  at: timestamp,
  statusCode: z.number().int().nullable(),
  latencyMs: z.number().int(),
  responseHead: z.string().nullable().describe('first 512 bytes of the answer'),
  error: z.string().nullable(),
});
const deliveryView = z.object({
  id: z.number().int(),
  eventId: z.string(),
  eventType: z.string(),
  subscriptionId: z.string(),
  status: z.enum(['pending', 'delivered', 'dead']),
  attempts: z.number().int(),
  nextAt: timestamp.nullable(),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable(),
  deadReason: z.string().nullable(),
  replays: z.number().int(),
  createdAt: timestamp,
  finishedAt: timestamp.nullable(),
  attemptLog: z.array(attemptView).optional(),
});
const deliveriesQuery = z.object({
  subscriptionId: idString.optional(),
  eventId: idString.optional(),
  status: z.enum(['pending', 'delivered', 'dead']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  attempts: z.enum(['true', 'false']).optional().describe('include each delivery’s attempt log'),
});
const replayBody = z.object({
  eventId: idString.optional(),
  subscriptionId: idString.optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  only: z.enum(['dead', 'all']).optional(),
});

/** Admin API of event subscriptions (the console and `ghl-bridge subscriptions` use the same operations). */
export async function registerEventAdminRoutes(
  app: FastifyInstance,
  o: { store: SubscriptionStore; wake: () => void },
): Promise<void> {
  const s = o.store;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const missing = (id: string) => httpError(404, `no subscription ${id}`);
  const badInput = (e: unknown): never => {
    if (e instanceof SubscriptionInputError)
      throw httpError(400, `body.${e.field}: ${e.message}`, [{ path: `body.${e.field}`, message: e.message }]);
    throw e;
  };

  r.post(
    '/admin/api/subscriptions',
    {
      schema: {
        tags,
        summary: 'Create a subscription; the signing secret is in this answer only',
        body: createBody,
        response: {
          201: z.object({ subscription: subscriptionView, secret: z.string().describe('whsec_…, shown once') }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (req, reply) => {
      const created = await s.create(req.body).catch(badInput);
      o.wake();
      return reply.code(201).send(created);
    },
  );
  r.get(
    '/admin/api/subscriptions',
    {
      schema: {
        tags,
        summary: 'Every subscription (no secrets)',
        response: { 200: z.object({ subscriptions: z.array(subscriptionView) }), ...errorResponses(401) },
      },
    },
    async () => ({ subscriptions: await s.list() }),
  );
  r.get(
    '/admin/api/subscriptions/:id',
    {
      schema: {
        tags,
        summary: 'One subscription',
        params: idParams,
        response: { 200: subscriptionView, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => (await s.get(req.params.id)) ?? Promise.reject(missing(req.params.id)),
  );
  r.post(
    '/admin/api/subscriptions/:id/rotate-secret',
    {
      schema: {
        tags,
        summary: 'New signing secret; the previous one also signs during the overlap',
        params: idParams,
        body: z
          .object({
            overlapHours: z.number().min(0).max(720).optional(),
            secret: z.string().max(200).optional(),
          })
          .optional(),
        response: {
          200: z.object({ secret: z.string(), previousSecretUntil: timestamp.nullable() }),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (req) => {
      const b = req.body ?? {};
      const res = await s
        .rotateSecret(req.params.id, {
          ...(b.overlapHours !== undefined ? { overlapMs: b.overlapHours * 3600_000 } : {}),
          ...(b.secret !== undefined ? { secret: b.secret } : {}),
        })
        .catch(badInput);
      if (!res) throw missing(req.params.id);
      return res;
    },
  );
  for (const action of ['enable', 'disable'] as const)
    r.post(
      `/admin/api/subscriptions/:id/${action}`,
      {
        schema: {
          tags,
          summary: action === 'enable' ? 'Enable (resets the failure count and circuit)' : 'Disable',
          params: idParams,
          response: { 200: subscriptionView, ...errorResponses(400, 401, 404) },
        },
      },
      async (req) => {
        const v = await s.setEnabled(req.params.id, action === 'enable');
        if (!v) throw missing(req.params.id);
        o.wake();
        return v;
      },
    );
  r.delete(
    '/admin/api/subscriptions/:id',
    {
      schema: {
        tags,
        summary: 'Delete a subscription and its delivery log',
        params: idParams,
        response: { 200: z.object({ ok: z.literal(true) }), ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      if (!(await s.delete(req.params.id))) throw missing(req.params.id);
      return { ok: true as const };
    },
  );
  r.get(
    '/admin/api/deliveries',
    {
      schema: {
        tags,
        summary: 'Deliveries, newest first, optionally with each attempt (time, status, latency, first bytes)',
        querystring: deliveriesQuery,
        response: { 200: z.object({ deliveries: z.array(deliveryView) }), ...errorResponses(400, 401) },
      },
    },
    async (req) => ({
      deliveries: await s.deliveries({ ...req.query, withAttempts: req.query.attempts === 'true' }),
    }),
  );
  r.post(
    '/admin/api/events/replay',
    {
      schema: {
        tags,
        summary: 'Deliver events again: by event id, time range, or subscription (its dead deliveries by default)',
        body: replayBody,
        response: { 200: z.object({ deliveries: z.number().int() }), ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const b = req.body;
      const n = await s
        .replay({
          eventId: b.eventId,
          subscriptionId: b.subscriptionId,
          since: b.since ? new Date(b.since) : undefined,
          until: b.until ? new Date(b.until) : undefined,
          only: b.only,
        })
        .catch(badInput);
      o.wake();
      return { deliveries: n };
    },
  );
  r.get(
    '/admin/api/event-alerts',
    {
      schema: {
        tags,
        summary: 'Subscriptions the bridge disabled itself (410 answer, failing for EVENTS_DISABLE_AFTER_DAYS)',
        response: { 200: z.object({ alerts: z.array(subscriptionView) }), ...errorResponses(401) },
      },
    },
    async () => ({ alerts: await s.alerts() }),
  );
  r.get(
    '/admin/api/event-types',
    {
      schema: {
        tags,
        summary: 'Bridge event types with their schema versions, and the retry schedule',
        response: {
          200: z.object({
            bridgeEvents: z.array(z.object({ type: z.string(), version: z.number().int(), schema: z.string() })),
            retryScheduleMs: z.array(z.number()),
          }),
          ...errorResponses(401),
        },
      },
    },
    async () => ({
      bridgeEvents: Object.entries(BRIDGE_EVENT_SCHEMAS).map(([type, d]) => ({
        type,
        version: d.version,
        schema: `#/components/schemas/BridgeEvent_${type}_v${d.version}`,
      })),
      retryScheduleMs: [...RETRY_SCHEDULE_MS],
    }),
  );
}
