import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Ctx } from '../context.js';
import { badRequest, forbidden } from '../errors.js';
import { exchangeToken, mintAccess, OAuthError, type TokenRequest } from '../oauth-service.js';
import { parseBody } from '../validate.js';
import { callerApp, op, query } from './util.js';

const LocationTokenBody = z.object({ companyId: z.string().min(1), locationId: z.string().min(1) });

export function registerOAuthRoutes(app: FastifyInstance, ctx: Ctx): void {
  // Form-encoded per spec; JSON only when acceptJsonTokenRequests (UNCONFIRMED whether GHL takes it).
  app.post('/oauth/token', async (req, reply) => {
    const ct = String(req.headers['content-type'] ?? '');
    const isForm = ct.startsWith('application/x-www-form-urlencoded');
    const body = (
      isForm || (ctx.opts.acceptJsonTokenRequests && ct.startsWith('application/json')) ? req.body : {}
    ) as TokenRequest;
    try {
      return reply.code(200).send(exchangeToken(ctx, body ?? {}));
    } catch (e) {
      if (e instanceof OAuthError) return reply.code(e.status).send(e.body);
      throw e;
    }
  });

  op(
    app,
    ctx,
    'POST',
    '/oauth/locationToken',
    { version: '2021-07-28', scopes: ['oauth.write'], access: 'agency' },
    (req, _r, auth) => {
      const b = parseBody(LocationTokenBody, req.body);
      const t = auth.token;
      if (b.companyId !== t.companyId) throw forbidden('The token does not have access to this company.');
      const loc = ctx.state.locations.get(b.locationId);
      if (!loc || loc.companyId !== t.companyId) throw badRequest('Location not found');
      const inst = ctx.state.locationInstall(t.appId, loc.id);
      if (!inst) throw badRequest('App is not installed on this location');
      const app = callerApp(ctx, auth);
      const at = mintAccess(
        ctx,
        app,
        { userType: 'Location', companyId: loc.companyId, locationId: loc.id, userId: inst.userId, scopes: t.scopes },
        'locationToken',
      );
      return {
        access_token: at.token,
        token_type: 'Bearer',
        expires_in: ctx.opts.accessTokenTtlSec,
        scope: at.scopes.join(' '),
        userType: 'Location',
        companyId: loc.companyId,
        locationId: loc.id,
        userId: inst.userId,
        ...(app.planId ? { planId: app.planId } : {}),
        appId: app.appId,
        versionId: app.versionId,
        isBulkInstallation: inst.isBulk,
      };
    },
  );

  op(
    app,
    ctx,
    'GET',
    '/oauth/installedLocations',
    { version: '2021-07-28', scopes: ['oauth.readonly'], access: 'agency' },
    (req, _r, auth) => {
      const q = query(req);
      const missing = [!q.companyId && 'companyId should not be empty', !q.appId && 'appId should not be empty'].filter(
        Boolean,
      ) as string[];
      if (missing.length)
        throw new OAuthError(422, { statusCode: 422, message: missing, error: 'Unprocessable Entity' });
      if (q.companyId !== auth.token.companyId) throw forbidden('The token does not have access to this company.');
      const app = ctx.state.apps.get(String(q.appId).split('-')[0] ?? '');
      if (!app || app.appId !== auth.token.appId) throw badRequest('Invalid appId');
      const skip = Number(q.skip ?? 0) || 0;
      const limit = Number(q.limit ?? 20) || 20;
      const all = [...ctx.state.locations.values()].filter((l) => l.companyId === q.companyId);
      let rows = all.map((l) => {
        const inst = ctx.state.locationInstall(app.appId, l.id);
        return {
          _id: l.id,
          name: l.name,
          address: l.address,
          isInstalled: inst !== undefined,
          versionId: app.versionId,
          ...(inst ? { installedAt: new Date(inst.installedAt).toISOString() } : {}),
        };
      });
      if (q.isInstalled !== undefined) rows = rows.filter((r) => r.isInstalled === (q.isInstalled === 'true'));
      if (q.locationId) rows = rows.filter((r) => r._id === q.locationId);
      if (q.query) rows = rows.filter((r) => r.name.toLowerCase().includes(String(q.query).toLowerCase()));
      const opt = ctx.state.companyInstallOptions.get(`${app.appId}|${q.companyId}`);
      return {
        locations: rows.slice(skip, skip + limit),
        count: all.length,
        installToFutureLocations: opt?.installToFutureLocations ?? false,
      };
    },
  );
}
