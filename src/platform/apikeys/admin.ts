import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { httpError } from '../../infra/http/errors.js';
import { errorResponses, idString, timestamp } from '../../infra/http/schemas.js';
import { ApiKeyInputError, type ApiKeyService } from './service.js';

const tags = ['admin: API keys'];

const keyView = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string().describe('the first characters of the key, to recognise it'),
  locationIds: z.array(z.string()),
  createdAt: timestamp,
  lastUsedAt: timestamp.nullable().describe('updated at most once a minute'),
  revokedAt: timestamp.nullable(),
});

const createBody = z.object({
  name: z.string().min(1).max(200).describe('what the key is for, e.g. the system that holds it'),
  locationIds: z.array(idString).min(1).max(1000).describe('the GHL locations the key may act for'),
});

/** Operator API for the keys of the public /v1 API (inside the guarded admin scope). */
export async function registerApiKeyAdminRoutes(app: FastifyInstance, keys: ApiKeyService): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/admin/api-keys',
    {
      schema: {
        tags,
        summary: 'Every API key (never the key itself)',
        response: { 200: z.object({ keys: z.array(keyView) }), ...errorResponses(401) },
      },
    },
    async () => ({ keys: await keys.list() }),
  );
  r.post(
    '/admin/api-keys',
    {
      schema: {
        tags,
        summary: 'Create an API key scoped to locations; the key is in this answer only',
        body: createBody,
        response: {
          201: z.object({ id: z.string(), key: z.string().describe('shown once; only its hash is stored') }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (req, reply) => {
      try {
        const created = await keys.create(req.body);
        return await reply.code(201).send(created);
      } catch (e) {
        if (e instanceof ApiKeyInputError)
          throw httpError(400, e.message, [{ path: `body.${e.field}`, message: e.message }]);
        throw e;
      }
    },
  );
  r.delete(
    '/admin/api-keys/:id',
    {
      schema: {
        tags,
        summary: 'Revoke an API key (refused from the next request on, on every replica)',
        params: z.object({ id: z.string().min(1).max(64) }),
        response: { 200: z.object({ ok: z.literal(true) }), ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      if (!(await keys.revoke(req.params.id))) throw httpError(404, `no active API key ${req.params.id}`);
      return { ok: true as const };
    },
  );
}
