import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Db } from '../../infra/db/index.js';
import { requireAdminKey } from '../../infra/http/admin-auth.js';
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

/**
 * Operator API under /admin/webhooks, `Authorization: Bearer <ADMIN_API_KEY>`. Not registered at
 * all when ADMIN_API_KEY is unset.
 */
export async function registerAdminRoutes(app: FastifyInstance, o: { db: Db; apiKey: string; maxAttempts?: number }): Promise<void> {
  app.addHook('onRequest', requireAdminKey(o.apiKey));

  app.get('/admin/webhooks/events', async (req, reply) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: z.prettifyError(q.error) });
    const rows = await listEvents(o.db, {
      ...(q.data.status ? { status: q.data.status as (typeof WEBHOOK_STATUSES)[number] } : {}),
      ...(q.data.type ? { type: q.data.type } : {}),
      ...(q.data.since ? { since: new Date(q.data.since) } : {}),
      ...(q.data.limit ? { limit: q.data.limit } : {}),
    });
    return { events: rows };
  });

  app.get<{ Params: { id: string } }>('/admin/webhooks/events/:id', async (req, reply) => {
    const id = Number(req.params.id);
    if (!Number.isSafeInteger(id) || id <= 0) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'id must be a positive integer' });
    const row = await getEvent(o.db, id);
    if (!row) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no webhook event ${id}` });
    const { raw, ...rest } = row;
    return { ...rest, raw: raw ? Buffer.from(raw).toString('base64') : null };
  });

  app.post('/admin/webhooks/replay', async (req, reply) => {
    const b = replayBody.safeParse(req.body ?? {});
    if (!b.success) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: z.prettifyError(b.error) });
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
