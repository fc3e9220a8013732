import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { httpError } from '../../infra/http/errors.js';
import { errorResponses, idString, timestamp } from '../../infra/http/schemas.js';
import type { MappingView } from './opportunities.js';
import { mappingView } from './routes.js';
import { TRIGGER_NAME, TriggerConfigError, type TriggerRequestView, type TriggerView } from './triggers.js';

/** The part of the pipelines service these routes use. */
export interface TriggerAdminService {
  setTrigger(locationId: string, name: string, url: string): Promise<TriggerView>;
  listTriggers(locationId?: string): Promise<TriggerView[]>;
  deleteTrigger(locationId: string, name: string): Promise<boolean>;
  /** Recent trigger calls, newest first. */
  triggerRequests(f: {
    locationId?: string | undefined;
    name?: string | undefined;
    state?: 'pending' | 'delivered' | 'dead' | undefined;
    limit?: number;
  }): Promise<TriggerRequestView[]>;
  /** Opportunity map rows, most recently changed first. */
  mappings(f: { locationId?: string | undefined; limit?: number }): Promise<MappingView[]>;
}

const params = z.object({
  locationId: idString.describe('GHL location id'),
  name: z.string().regex(TRIGGER_NAME, 'expected 1–64 of A-Z a-z 0-9 . _ -'),
});
const triggerView = z
  .object({
    locationId: z.string(),
    name: z.string(),
    url: z.string().describe('the inbound-webhook URL with its secret part masked'),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'TriggerConfig' });
const tags = ['admin: triggers'];
const limit = z.coerce.number().int().min(1).max(500).default(100);
const triggerRequestView = z
  .object({
    id: z.number().int(),
    locationId: z.string(),
    name: z.string(),
    idempotencyKey: z.string(),
    state: z.enum(['pending', 'delivered', 'dead']),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    receivedAt: timestamp,
    deliveredAt: timestamp.nullable(),
  })
  .meta({ id: 'TriggerRequestAdmin' });

/** Operator API for workflow triggers: PUT/DELETE /admin/triggers/:locationId/:name, GET /admin/triggers. */
export async function registerTriggerAdminRoutes(app: FastifyInstance, s: TriggerAdminService): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/admin/triggers',
    {
      schema: {
        tags,
        summary: 'Configured workflow triggers (URLs masked)',
        querystring: z.object({ locationId: idString.optional() }),
        response: { 200: z.object({ triggers: z.array(triggerView) }), ...errorResponses(400, 401) },
      },
    },
    async (req) => ({ triggers: await s.listTriggers(req.query.locationId) }),
  );
  r.get(
    '/admin/api/trigger-requests',
    {
      schema: {
        tags,
        summary: 'Recent workflow trigger calls, newest first (state, attempts, last error; no payloads)',
        querystring: z.object({
          locationId: idString.optional(),
          name: z.string().regex(TRIGGER_NAME, 'expected 1–64 of A-Z a-z 0-9 . _ -').optional(),
          state: z.enum(['pending', 'delivered', 'dead']).optional(),
          limit,
        }),
        response: { 200: z.object({ requests: z.array(triggerRequestView) }), ...errorResponses(400, 401) },
      },
    },
    async (req) => ({ requests: await s.triggerRequests(req.query) }),
  );
  r.get(
    '/admin/api/opportunity-map',
    {
      schema: {
        tags: ['admin: pipelines'],
        summary: 'Opportunity map rows (external deal id → GHL opportunity), most recently changed first',
        querystring: z.object({ locationId: idString.optional(), limit }),
        response: { 200: z.object({ mappings: z.array(mappingView) }), ...errorResponses(400, 401) },
      },
    },
    async (req) => ({ mappings: await s.mappings(req.query) }),
  );
  r.put(
    '/admin/triggers/:locationId/:name',
    {
      schema: {
        tags,
        summary: "Set the GHL workflow inbound-webhook URL of a location's trigger (stored encrypted)",
        params,
        body: z.object({ url: z.string().min(1).max(2000) }),
        response: { 200: triggerView, ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      try {
        return await s.setTrigger(req.params.locationId, req.params.name, req.body.url);
      } catch (e) {
        if (e instanceof TriggerConfigError)
          throw httpError(400, e.message, [{ path: `body.${e.field}`, message: e.message }]);
        throw e;
      }
    },
  );
  r.delete(
    '/admin/triggers/:locationId/:name',
    {
      schema: {
        tags,
        summary: 'Remove a trigger (calls already accepted then fail: no URL)',
        params,
        response: { 200: z.object({ ok: z.literal(true) }), ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      if (!(await s.deleteTrigger(req.params.locationId, req.params.name)))
        throw httpError(404, `no trigger ${req.params.name} for location ${req.params.locationId}`);
      return { ok: true as const };
    },
  );
}
