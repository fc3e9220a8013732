import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Db } from '../../infra/db/index.js';
import { httpError, parseOr400 } from '../../infra/http/errors.js';
import { getEvent, listEvents, replayEvents } from './replay.js';
import { WEBHOOK_STATUSES } from './tables.js';

const replayBody = z
  .object({
    ids: z.array(z.number().int().positive()).max(10_000).optional(),
    since: z.iso.datetime({ offset: true }).optional(),
    type: z.string().min(1).max(200).optional(),
    dead: z.boolean().optional(),
  })
  .refine((b) => b.ids?.length || b.since || b.type || b.dead, { message: 'select events: ids, since, type or dead' });

const listQuery = z.object({
  status: z.enum(WEBHOOK_STATUSES as [string, ...string[]]).optional(),
  type: z.string().min(1).max(200).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

const idParams = z.object({
  id: z.coerce.number().int('expected a positive integer').positive('expected a positive integer'),
});

/** Operator API under /admin/webhooks; registered in the kernel's guarded admin scope (app.ts adminRoutes). */
export async function registerAdminRoutes(app: FastifyInstance, o: { db: Db; maxAttempts?: number }): Promise<void> {
  app.get('/admin/webhooks/events', async (req) => {
    const q = { data: parseOr400(listQuery, req.query, 'query') };
    const rows = await listEvents(o.db, {
      ...(q.data.status ? { status: q.data.status as (typeof WEBHOOK_STATUSES)[number] } : {}),
      ...(q.data.type ? { type: q.data.type } : {}),
      ...(q.data.since ? { since: new Date(q.data.since) } : {}),
      ...(q.data.limit ? { limit: q.data.limit } : {}),
    });
    return { events: rows };
  });

  app.get('/admin/webhooks/events/:id', async (req) => {
    const { id } = parseOr400(idParams, req.params, 'params');
    const row = await getEvent(o.db, id);
    if (!row) throw httpError(404, `no webhook event ${id}`);
    const { raw, ...rest } = row;
    return { ...rest, raw: raw ? Buffer.from(raw).toString('base64') : null };
  });

  app.post('/admin/webhooks/replay', async (req) => {
    const b = { data: parseOr400(replayBody, req.body ?? {}, 'body') };
    const r = await replayEvents(
      o.db,
      {
        ...(b.data.ids ? { ids: b.data.ids } : {}),
        ...(b.data.since ? { since: new Date(b.data.since) } : {}),
        ...(b.data.type ? { type: b.data.type } : {}),
        ...(b.data.dead ? { dead: true } : {}),
      },
      o.maxAttempts ? { maxAttempts: o.maxAttempts } : {},
    );
    return r;
  });
}
