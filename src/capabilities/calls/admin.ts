import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../infra/db/index.js';
import { errorResponses, idString, timestamp } from '../../infra/http/schemas.js';
import type { WorkflowEndpoints } from './endpoints.js';
import { DEFAULT_MAPPING, fieldMappingSchema } from './mapping.js';

const tags = ['admin: calls'];
const endpointView = z.object({
  locationId: z.string(),
  integrationType: z.enum(['internal', 'client']),
  mapping: z.record(z.string(), z.array(z.string())).nullable().describe('null: the default mapping'),
  maskedUrl: z
    .string()
    .describe('the workflow webhook URL with its token masked (`ghl-bridge calls workflow-url` prints it)'),
  previousValidUntil: timestamp.nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
});

/** Operator API of calls: endpoints (integration type, mapping) and the inbox (unmappable and forged payloads). */
export async function registerCallsAdminRoutes(app: FastifyInstance, rt: { db: Db; endpoints: WorkflowEndpoints }) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/admin/calls/endpoints',
    {
      schema: {
        tags,
        summary: 'Workflow webhook endpoints per location, and the default mapping',
        response: {
          200: z.object({
            endpoints: z.array(endpointView),
            defaultMapping: z.record(z.string(), z.array(z.string())),
          }),
          ...errorResponses(401),
        },
      },
    },
    async () => ({ endpoints: await rt.endpoints.list(), defaultMapping: DEFAULT_MAPPING }),
  );
  r.put(
    '/admin/calls/endpoints/:locationId',
    {
      schema: {
        tags,
        summary: "Create or configure a location's workflow webhook endpoint (integration type, field mapping)",
        params: z.object({ locationId: idString }),
        body: z.strictObject({
          integrationType: z.enum(['internal', 'client']).optional(),
          mapping: fieldMappingSchema.nullable().optional().describe('null: back to the default mapping'),
        }),
        response: { 200: endpointView, ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const { locationId } = req.params;
      await rt.endpoints.url(locationId);
      await rt.endpoints.configure(locationId, {
        ...(req.body.integrationType ? { integrationType: req.body.integrationType } : {}),
        ...(req.body.mapping !== undefined ? { mapping: req.body.mapping } : {}),
      });
      return (await rt.endpoints.list()).find((e) => e.locationId === locationId)!;
    },
  );
  r.get(
    '/admin/calls/inbox',
    {
      schema: {
        tags,
        summary: 'Workflow payloads and call events as received; unmappable and forged ones with the reason',
        querystring: z.object({
          state: z.enum(['received', 'done', 'unmappable', 'forged', 'failed']).optional(),
          locationId: idString.optional(),
          limit: z.coerce.number().int().min(1).max(500).default(100),
        }),
        response: {
          200: z.object({
            entries: z.array(
              z.object({
                id: z.number().int(),
                locationId: z.string(),
                source: z.string(),
                state: z.string(),
                reason: z.string().nullable(),
                callId: z.number().int().nullable(),
                payload: z.unknown(),
                receivedAt: timestamp,
              }),
            ),
          }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (req) => {
      let q = rt.db.selectFrom('calls_inbox').selectAll();
      if (req.query.state) q = q.where('state', '=', req.query.state);
      if (req.query.locationId) q = q.where('location_id', '=', req.query.locationId);
      const rows = await q.orderBy('id', 'desc').limit(req.query.limit).execute();
      return {
        entries: rows.map((x) => ({
          id: Number(x.id),
          locationId: x.location_id,
          source: x.source,
          state: x.state,
          reason: x.reason,
          callId: x.call_id === null ? null : Number(x.call_id),
          payload: x.payload,
          receivedAt: x.received_at,
        })),
      };
    },
  );
}

export type RejectedState = 'unmappable' | 'forged' | 'failed';

export interface RejectedEntry {
  id: number;
  receivedAt: Date;
  locationId: string;
  source: 'workflow' | 'app';
  state: RejectedState;
  reason: string | null;
  /** As received: unmasked. Whoever shows it masks it (the console: src/console/calls.ts). */
  payload: Record<string, unknown>;
}

/** Workflow payloads and call events kept without making a call, newest first (the console's screen). */
export async function listRejected(
  db: Db,
  q: { state?: RejectedState | undefined; locationId?: string | undefined; before?: number | undefined; limit: number },
): Promise<{ entries: RejectedEntry[]; nextBefore: number | null }> {
  let s = db
    .selectFrom('calls_inbox')
    .selectAll()
    .where('state', 'in', q.state ? [q.state] : ['unmappable', 'forged', 'failed']);
  if (q.locationId) s = s.where('location_id', '=', q.locationId);
  if (q.before) s = s.where('id', '<', q.before);
  const rows = await s.orderBy('id', 'desc').limit(q.limit).execute();
  return {
    entries: rows.map((x) => ({
      id: Number(x.id),
      receivedAt: x.received_at,
      locationId: x.location_id,
      source: x.source,
      state: x.state as RejectedState,
      reason: x.reason,
      payload: x.payload,
    })),
    nextBefore: rows.length === q.limit ? Number(rows.at(-1)!.id) : null,
  };
}
