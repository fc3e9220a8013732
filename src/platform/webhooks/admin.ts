import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../infra/db/index.js';
import { httpError } from '../../infra/http/errors.js';
import { errorResponses, timestamp } from '../../infra/http/schemas.js';
import { getEvent, listEvents, replayEvents } from './replay.js';
import { WEBHOOK_STATUSES, type WebhookStatus } from './tables.js';

const status = z.enum(WEBHOOK_STATUSES as [WebhookStatus, ...WebhookStatus[]]);

const replayBody = z
  .object({
    ids: z.array(z.number().int().positive()).max(10_000).optional(),
    since: z.iso.datetime({ offset: true }).optional(),
    type: z.string().min(1).max(200).optional(),
    dead: z.boolean().optional(),
  })
  .refine((b) => b.ids?.length || b.since || b.type || b.dead, { message: 'select events: ids, since, type or dead' });

const listQuery = z.object({
  status: status.optional(),
  type: z.string().min(1).max(200).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

const idParams = z.object({
  id: z.coerce.number().int('expected a positive integer').positive('expected a positive integer'),
});

const eventSummary = z.object({
  id: z.number().int(),
  source: z.enum(['app', 'provider']),
  type: z.string().nullable(),
  status,
  reason: z.string().nullable(),
  location_id: z.string().nullable(),
  company_id: z.string().nullable(),
  webhook_id: z.string().nullable(),
  signature: z.string(),
  attempts: z.number().int(),
  received_at: timestamp,
  processed_at: timestamp.nullable(),
});

const eventDetail = eventSummary.extend({
  dedupe_key: z.string(),
  ordering_key: z.string().nullable(),
  event_at: timestamp.nullable(),
  updated_at: timestamp,
  payload: z.unknown().describe('the parsed JSON body (null when it did not parse)'),
  raw: z.string().nullable().describe('base64 of the original bytes, kept only when they were not JSON'),
});

const tags = ['admin: webhooks'];

/** Operator API under /admin/webhooks; registered in the kernel's guarded admin scope (app.ts adminRoutes). */
export async function registerAdminRoutes(app: FastifyInstance, o: { db: Db; maxAttempts?: number }): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/admin/webhooks/events',
    {
      schema: {
        tags,
        summary: 'Stored webhook events, newest first',
        querystring: listQuery,
        response: { 200: z.object({ events: z.array(eventSummary) }), ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const q = req.query;
      const rows = await listEvents(o.db, {
        ...(q.status ? { status: q.status } : {}),
        ...(q.type ? { type: q.type } : {}),
        ...(q.since ? { since: new Date(q.since) } : {}),
        ...(q.limit ? { limit: q.limit } : {}),
      });
      return { events: rows };
    },
  );

  r.get(
    '/admin/webhooks/events/:id',
    {
      schema: {
        tags,
        summary: 'One stored webhook event with its payload',
        params: idParams,
        response: { 200: eventDetail, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      const { id } = req.params;
      const row = await getEvent(o.db, id);
      if (!row) throw httpError(404, `no webhook event ${id}`);
      const { raw, ...rest } = row;
      return { ...rest, raw: raw ? Buffer.from(raw).toString('base64') : null };
    },
  );

  r.post(
    '/admin/webhooks/replay',
    {
      schema: {
        tags,
        summary: 'Put stored events back through their handlers',
        body: replayBody,
        response: {
          200: z.object({
            replayed: z.array(z.number().int()),
            notReplayable: z.array(z.object({ id: z.number().int(), reason: z.string() })),
          }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (req) => {
      const b = req.body;
      return replayEvents(
        o.db,
        {
          ...(b.ids ? { ids: b.ids } : {}),
          ...(b.since ? { since: new Date(b.since) } : {}),
          ...(b.type ? { type: b.type } : {}),
          ...(b.dead ? { dead: true } : {}),
        },
        o.maxAttempts ? { maxAttempts: o.maxAttempts } : {},
      );
    },
  );
}
