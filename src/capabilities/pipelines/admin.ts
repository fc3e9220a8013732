import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { httpError } from '../../infra/http/errors.js';
import { errorResponses, idString, timestamp } from '../../infra/http/schemas.js';
import { TRIGGER_NAME, TriggerConfigError, type TriggerView } from './triggers.js';

/** The part of the pipelines service these routes use. */
export interface TriggerAdminService {
  setTrigger(locationId: string, name: string, url: string): Promise<TriggerView>;
  listTriggers(locationId?: string): Promise<TriggerView[]>;
  deleteTrigger(locationId: string, name: string): Promise<boolean>;
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
