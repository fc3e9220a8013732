import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from './context.js';
import { badRequest, forbidden, tooManyRequests, unauthorized } from './errors.js';
import type { AccessToken } from './state.js';

/** Versions accepted in lenient mode (the SDK sends 2023-02-21 everywhere: docs/ghl-behaviour.md#api-versions). */
export const KNOWN_VERSIONS = ['2021-04-15', '2021-07-28', '2023-02-21', 'v3'];

/**
 * Security requirement of an operation, from the spec:
 * - 'location': `bearer` / `Location-Access` (sub-account token)
 * - 'agency': `Agency-Access-Only` (company token)
 * - 'any': either (e.g. `GET /locations/{id}`)
 */
export interface OpSecurity {
  version: string | null;
  scopes: readonly string[];
  access: 'location' | 'agency' | 'any';
}

export interface AuthContext {
  token: AccessToken;
  /** Rate-limit resource: locationId for location tokens, companyId for company tokens. */
  resourceId: string;
}

const authByReq = new WeakMap<FastifyRequest, AuthContext>();
const rateHeadersByReq = new WeakMap<FastifyRequest, Record<string, string>>();

export function authOf(req: FastifyRequest): AuthContext {
  const a = authByReq.get(req);
  if (!a) throw new Error('authOf() on a route without security');
  return a;
}

export function rateHeadersOf(req: FastifyRequest): Record<string, string> | undefined {
  return rateHeadersByReq.get(req);
}

/** Does a granted scope list satisfy a required scope? `x.write` also grants `x.readonly` (GHL scope pairs). */
export function hasScope(granted: string[], required: string): boolean {
  if (granted.includes(required)) return true;
  if (required.endsWith('.readonly')) return granted.includes(required.slice(0, -'.readonly'.length) + '.write');
  return false;
}

/** Resolve the bearer token to a live access token or throw GHL's 401. */
export function resolveToken(ctx: Ctx, header: string | undefined): AccessToken {
  if (!header) throw unauthorized('Invalid token: access token is invalid');
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  const raw = m?.[1]?.trim();
  if (!raw) throw unauthorized('Invalid token: access token is invalid');
  const tok = ctx.state.accessTokens.get(raw);
  if (!tok || tok.revoked) throw unauthorized('Invalid token: access token is invalid');
  if (ctx.clock.now() >= tok.expiresAt) throw unauthorized('Invalid JWT');
  return tok;
}

/** The full GHL gate for one operation, in GHL's order: token → rate limit → Version → token type → scopes. */
export function makeGate(ctx: Ctx, sec: OpSecurity) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const tok = resolveToken(ctx, req.headers.authorization);
    const resourceId = tok.locationId ?? tok.companyId;
    const rl = ctx.limiter.take(`${tok.clientId}|${resourceId}`);
    rateHeadersByReq.set(req, rl.headers);
    if (!rl.allowed) throw tooManyRequests(rl.retryAfterSec);
    checkVersion(ctx, req, sec.version);
    if (sec.access === 'location' && tok.userType !== 'Location')
      throw unauthorized(
        'This authClass type is not allowed to access this scope. Please reach out to the Platform team to get it added.',
      );
    if (sec.access === 'agency' && tok.userType !== 'Company')
      throw unauthorized(
        'This authClass type is not allowed to access this scope. Please reach out to the Platform team to get it added.',
      );
    for (const s of sec.scopes)
      if (!hasScope(tok.scopes, s)) throw unauthorized('The token is not authorized for this scope.');
    authByReq.set(req, { token: tok, resourceId });
  };
}

export function checkVersion(ctx: Ctx, req: FastifyRequest, expected: string | null): void {
  if (expected === null) return;
  const v = req.headers['version'];
  const version = Array.isArray(v) ? v[0] : v;
  if (!version) throw badRequest('version header was not found');
  const ok = ctx.opts.versionCheck === 'strict' ? version === expected : KNOWN_VERSIONS.includes(version);
  if (!ok) throw badRequest(`Invalid version header: ${version}`);
}

/** Location tokens may only touch their own location; company tokens any location of their company. */
export function assertLocationAccess(ctx: Ctx, auth: AuthContext, locationId: string): void {
  const t = auth.token;
  if (t.userType === 'Location') {
    if (t.locationId !== locationId) throw forbidden('The token does not have access to this location.');
    return;
  }
  const loc = ctx.state.locations.get(locationId);
  if (!loc || loc.companyId !== t.companyId) throw forbidden('The token does not have access to this location.');
}
