import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** `Authorization: Bearer <key>` matches, compared in constant time (hashed first so lengths match). */
export function bearerMatches(header: string | undefined, key: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m?.[1]) return false;
  return timingSafeEqual(digest(m[1].trim()), digest(key));
}

/** Hook (onRequest / preHandler) guarding the operator API with ADMIN_API_KEY. */
export function requireAdminKey(apiKey: string) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (!bearerMatches(req.headers.authorization, apiKey)) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({
        statusCode: 401,
        error: 'Unauthorized',
        message: 'admin API: send Authorization: Bearer <ADMIN_API_KEY>',
        requestId: req.id,
      });
    }
  };
}
