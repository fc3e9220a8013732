import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authOf, makeGate, type AuthContext, type OpSecurity } from '../auth.js';
import type { Ctx } from '../context.js';
import { badRequest } from '../errors.js';
import type { App, Location } from '../state.js';

export type Handler = (req: FastifyRequest, reply: FastifyReply, auth: AuthContext) => Promise<unknown> | unknown;

/** Register a GHL operation guarded by its security requirement (token, rate limit, Version, scopes). */
export function op(
  app: FastifyInstance,
  ctx: Ctx,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  sec: OpSecurity,
  handler: Handler,
): void {
  app.route({
    method,
    url,
    preHandler: makeGate(ctx, sec),
    handler: async (req, reply) => handler(req, reply, authOf(req)),
  });
}

export function callerApp(ctx: Ctx, auth: AuthContext): App {
  const a = ctx.state.apps.get(auth.token.appId);
  if (!a) throw badRequest('App not found');
  return a;
}

export function mustLocation(ctx: Ctx, locationId: string): Location {
  const loc = ctx.state.locations.get(locationId);
  if (!loc) throw badRequest('Location not found');
  return loc;
}

export const params = (req: FastifyRequest) => req.params as Record<string, string>;
export const query = (req: FastifyRequest) => req.query as Record<string, string | undefined>;
