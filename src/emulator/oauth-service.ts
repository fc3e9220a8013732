import type { Ctx } from './context.js';
import { sendToApp } from './events.js';
import type { AccessToken, App, AuthCode, Installation, RefreshToken, UserType } from './state.js';

export interface AuthorizeInput {
  clientId: string;
  /** Sub-account install by a location user. */
  locationId?: string;
  /** Agency install (agency app, or bulk install of a sub-account app). */
  companyId?: string;
  /** Agency install of a sub-account app onto several locations (default: all of the company's locations). */
  bulk?: boolean;
  locationIds?: string[];
  redirectUri?: string;
  state?: string;
  userId?: string;
  installToFutureLocations?: boolean;
}

export interface AuthorizeResult {
  code: string;
  redirectUrl: string;
  userType: UserType;
  installedLocationIds: string[];
}

export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.message ?? body.error_description ?? body.error));
  }
}

const invalidGrant = (d: string) => new OAuthError(400, { error: 'invalid_grant', error_description: d });

/** Pick an installing user: given one, or the first admin of the location/company, or create a synthetic id. */
function installingUser(ctx: Ctx, companyId: string, locationId?: string, userId?: string): string {
  if (userId) return userId;
  for (const u of ctx.state.users.values()) {
    if (u.companyId !== companyId) continue;
    if (locationId === undefined ? u.type === 'agency' : u.locationIds.includes(locationId) || u.type === 'agency')
      return u.id;
  }
  return ctx.ids.id();
}

function installPayloadBase(ctx: Ctx, app: App, companyId: string) {
  const ag = ctx.state.agencies.get(companyId);
  return {
    appId: app.appId,
    versionId: app.versionId,
    companyId,
    ...(app.planId ? { planId: app.planId } : {}),
    isWhitelabelCompany: ag?.isWhitelabelCompany ?? false,
    whitelabelDetails: ag?.isWhitelabelCompany ? { domain: ag.whitelabelDomain ?? '', logoUrl: '' } : {},
    companyName: ag?.name ?? '',
  };
}

/** Record a location install, select the default provider if configured, send INSTALL. */
export function installOnLocation(ctx: Ctx, app: App, locationId: string, userId: string, isBulk: boolean): void {
  const loc = ctx.state.locations.get(locationId);
  if (!loc) throw new Error(`unknown location ${locationId}`);
  if (ctx.state.locationInstall(app.appId, locationId)) return;
  const inst: Installation = {
    appId: app.appId,
    companyId: loc.companyId,
    locationId,
    installedAt: ctx.clock.now(),
    userId,
    isBulk,
  };
  ctx.state.installations.push(inst);
  const cp = app.conversationProvider;
  if (cp && !cp.isCustom && ctx.opts.autoSelectDefaultProvider) loc.defaultProvider[cp.type] = app.appId;
  sendToApp(ctx, app, {
    type: 'INSTALL',
    ...installPayloadBase(ctx, app, loc.companyId),
    locationId,
    userId,
    installType: 'Location',
  });
}

function installOnCompany(ctx: Ctx, app: App, companyId: string, userId: string, isBulk: boolean): void {
  if (ctx.state.companyInstall(app.appId, companyId)) return;
  ctx.state.installations.push({ appId: app.appId, companyId, installedAt: ctx.clock.now(), userId, isBulk });
  sendToApp(ctx, app, { type: 'INSTALL', ...installPayloadBase(ctx, app, companyId), userId, installType: 'Company' });
}

/** What the chooselocation page does after the user picks: install + issue an authorization code. */
export function authorize(ctx: Ctx, input: AuthorizeInput): AuthorizeResult {
  const app = ctx.state.appByClientId(input.clientId);
  if (!app) throw new OAuthError(400, { statusCode: 400, message: 'Invalid client_id' });
  const redirectUri = input.redirectUri ?? app.redirectUris[0];
  if (!redirectUri || !app.redirectUris.includes(redirectUri))
    throw new OAuthError(400, { statusCode: 400, message: 'Invalid redirect_uri' });
  let userType: UserType;
  let companyId: string;
  let locationId: string | undefined;
  let isBulk = false;
  let approved: string[] = [];
  if (input.locationId) {
    const loc = ctx.state.locations.get(input.locationId);
    if (!loc) throw new OAuthError(400, { statusCode: 400, message: 'Location not found' });
    if (app.distribution === 'agency')
      throw new OAuthError(400, { statusCode: 400, message: 'This app can only be installed by an agency' });
    userType = 'Location';
    companyId = loc.companyId;
    locationId = loc.id;
    const userId = installingUser(ctx, companyId, locationId, input.userId);
    installOnLocation(ctx, app, loc.id, userId, false);
    return finish(ctx, app, { userType, companyId, locationId, userId, redirectUri, isBulk, approved }, input.state);
  }
  if (!input.companyId) throw new OAuthError(400, { statusCode: 400, message: 'locationId or companyId is required' });
  const ag = ctx.state.agencies.get(input.companyId);
  if (!ag) throw new OAuthError(400, { statusCode: 400, message: 'Company not found' });
  userType = 'Company';
  companyId = ag.id;
  const userId = installingUser(ctx, companyId, undefined, input.userId);
  if (app.distribution === 'agency' && !input.bulk) {
    installOnCompany(ctx, app, companyId, userId, false);
  } else {
    // Agency user installs a sub-account app: bulk install onto the chosen (or all) locations.
    isBulk = true;
    const all = [...ctx.state.locations.values()].filter((l) => l.companyId === companyId).map((l) => l.id);
    approved = input.locationIds ?? all;
    for (const id of approved) {
      const loc = ctx.state.locations.get(id);
      if (!loc || loc.companyId !== companyId)
        throw new OAuthError(400, { statusCode: 400, message: `Location ${id} not in company` });
    }
    installOnCompany(ctx, app, companyId, userId, true);
    ctx.state.companyInstallOptions.set(`${app.appId}|${companyId}`, {
      installToFutureLocations: input.installToFutureLocations ?? false,
      approveAllLocations: input.locationIds === undefined,
    });
    for (const id of approved) installOnLocation(ctx, app, id, userId, true);
  }
  return finish(ctx, app, { userType, companyId, userId, redirectUri, isBulk, approved }, input.state);
}

function finish(
  ctx: Ctx,
  app: App,
  c: {
    userType: UserType;
    companyId: string;
    locationId?: string;
    userId: string;
    redirectUri: string;
    isBulk: boolean;
    approved: string[];
  },
  state: string | undefined,
): AuthorizeResult {
  const code: AuthCode = {
    code: ctx.ids.hex24() + ctx.ids.hex24().slice(0, 16),
    clientId: app.clientId,
    userType: c.userType,
    companyId: c.companyId,
    userId: c.userId,
    redirectUri: c.redirectUri,
    expiresAt: ctx.clock.now() + ctx.opts.authCodeTtlSec * 1000,
    isBulk: c.isBulk,
    approvedLocations: c.approved,
    used: false,
    ...(c.locationId !== undefined ? { locationId: c.locationId } : {}),
  };
  ctx.state.codes.set(code.code, code);
  const u = new URL(c.redirectUri);
  u.searchParams.set('code', code.code);
  if (state !== undefined) u.searchParams.set('state', state);
  const installed = c.locationId ? [c.locationId] : c.approved;
  return { code: code.code, redirectUrl: u.toString(), userType: c.userType, installedLocationIds: installed };
}

export function mintAccess(
  ctx: Ctx,
  app: App,
  g: { userType: UserType; companyId: string; locationId?: string; userId: string; scopes: string[] },
  origin: AccessToken['origin'],
): AccessToken {
  const t: AccessToken = {
    token: ctx.ids.token({ authClass: g.userType, authClassId: g.locationId ?? g.companyId, sub: app.clientId }),
    appId: app.appId,
    clientId: app.clientId,
    userType: g.userType,
    companyId: g.companyId,
    userId: g.userId,
    scopes: g.scopes,
    expiresAt: ctx.clock.now() + ctx.opts.accessTokenTtlSec * 1000,
    revoked: false,
    origin,
    ...(g.locationId !== undefined ? { locationId: g.locationId } : {}),
  };
  ctx.state.accessTokens.set(t.token, t);
  return t;
}

function tokenResponse(ctx: Ctx, app: App, at: AccessToken, rt: RefreshToken): Record<string, unknown> {
  const opt = ctx.state.companyInstallOptions.get(`${app.appId}|${at.companyId}`);
  return {
    access_token: at.token,
    token_type: 'Bearer',
    expires_in: ctx.opts.accessTokenTtlSec,
    refresh_token: rt.token,
    scope: at.scopes.join(' '),
    refreshTokenId: rt.id,
    userType: at.userType,
    companyId: at.companyId,
    ...(at.locationId !== undefined ? { locationId: at.locationId } : {}),
    userId: at.userId,
    ...(app.planId ? { planId: app.planId } : {}),
    isBulkInstallation: rt.isBulk,
    ...(at.userType === 'Company'
      ? {
          approvedLocations: rt.approvedLocations,
          installToFutureLocations: opt?.installToFutureLocations ?? false,
          approveAllLocations: opt?.approveAllLocations ?? false,
        }
      : {}),
  };
}

function mintPair(
  ctx: Ctx,
  app: App,
  g: Omit<RefreshToken, 'token' | 'id' | 'appId' | 'clientId' | 'expiresAt' | 'used' | 'revoked'>,
  origin: AccessToken['origin'],
) {
  const at = mintAccess(ctx, app, g, origin);
  const rt: RefreshToken = {
    ...g,
    token: ctx.ids.token({
      authClass: g.userType,
      authClassId: g.locationId ?? g.companyId,
      sub: app.clientId,
      refresh: true,
    }),
    id: ctx.ids.hex24(),
    appId: app.appId,
    clientId: app.clientId,
    expiresAt: ctx.clock.now() + ctx.opts.refreshTokenTtlSec * 1000,
    used: false,
    revoked: false,
  };
  ctx.state.refreshTokens.set(rt.token, rt);
  return tokenResponse(ctx, app, at, rt);
}

export interface TokenRequest {
  client_id?: string;
  client_secret?: string;
  grant_type?: string;
  code?: string;
  refresh_token?: string;
  user_type?: string;
  redirect_uri?: string;
}

/** POST /oauth/token semantics. Throws OAuthError with the body to send. */
export function exchangeToken(ctx: Ctx, r: TokenRequest): Record<string, unknown> {
  const missing: string[] = [];
  if (!r.client_id) missing.push('client_id should not be empty');
  if (!r.client_secret) missing.push('client_secret should not be empty');
  if (!r.grant_type) missing.push('grant_type should not be empty');
  else if (!['authorization_code', 'refresh_token', 'client_credentials'].includes(r.grant_type))
    missing.push(
      'grant_type must be one of the following values: authorization_code, refresh_token, client_credentials',
    );
  if (r.user_type !== undefined && r.user_type !== 'Company' && r.user_type !== 'Location')
    missing.push('user_type must be one of the following values: Company, Location');
  if (missing.length) throw new OAuthError(422, { statusCode: 422, message: missing, error: 'Unprocessable Entity' });
  const app = ctx.state.appByClientId(r.client_id ?? '');
  if (!app || app.clientSecret !== r.client_secret)
    throw new OAuthError(401, { statusCode: 401, message: 'Invalid client credentials', error: 'Unauthorized' });
  const now = ctx.clock.now();
  if (r.grant_type === 'authorization_code') {
    if (!r.code)
      throw new OAuthError(422, {
        statusCode: 422,
        message: ['code should not be empty'],
        error: 'Unprocessable Entity',
      });
    const c = ctx.state.codes.get(r.code);
    if (!c || c.clientId !== app.clientId) throw invalidGrant('Invalid authorization code');
    if (c.used) throw invalidGrant('Authorization code has already been used');
    if (now >= c.expiresAt) throw invalidGrant('Authorization code has expired');
    if (r.redirect_uri !== undefined && r.redirect_uri !== c.redirectUri)
      throw invalidGrant('redirect_uri does not match');
    if (r.user_type !== undefined && r.user_type !== c.userType)
      throw new OAuthError(400, {
        statusCode: 400,
        message: `This authorization code was issued for user_type ${c.userType}`,
      });
    c.used = true;
    return mintPair(
      ctx,
      app,
      {
        userType: c.userType,
        companyId: c.companyId,
        userId: c.userId,
        scopes: app.scopes,
        isBulk: c.isBulk,
        approvedLocations: c.approvedLocations,
        ...(c.locationId !== undefined ? { locationId: c.locationId } : {}),
      },
      'authorization_code',
    );
  }
  if (r.grant_type === 'refresh_token') {
    if (!r.refresh_token)
      throw new OAuthError(422, {
        statusCode: 422,
        message: ['refresh_token should not be empty'],
        error: 'Unprocessable Entity',
      });
    const rt = ctx.state.refreshTokens.get(r.refresh_token);
    if (!rt || rt.clientId !== app.clientId || rt.revoked) throw invalidGrant('Invalid refresh token');
    if (rt.used) throw invalidGrant('Refresh token has already been used');
    if (now >= rt.expiresAt) throw invalidGrant('Refresh token has expired');
    if (r.user_type !== undefined && r.user_type !== rt.userType)
      throw new OAuthError(400, {
        statusCode: 400,
        message: `This refresh token was issued for user_type ${rt.userType}`,
      });
    rt.used = true;
    return mintPair(
      ctx,
      app,
      {
        userType: rt.userType,
        companyId: rt.companyId,
        userId: rt.userId,
        scopes: rt.scopes,
        isBulk: rt.isBulk,
        approvedLocations: rt.approvedLocations,
        ...(rt.locationId !== undefined ? { locationId: rt.locationId } : {}),
      },
      'refresh_token',
    );
  }
  throw new OAuthError(400, { statusCode: 400, message: 'client_credentials grant is not supported for this app' });
}

/** Revoke every token of an app for a location or company (uninstall). */
export function revokeFor(ctx: Ctx, appId: string, where: { locationId?: string; companyId?: string }): void {
  const hit = (t: { appId: string; locationId?: string; companyId: string; userType: UserType }) =>
    t.appId === appId &&
    (where.locationId !== undefined ? t.locationId === where.locationId : t.companyId === where.companyId);
  for (const t of ctx.state.accessTokens.values()) if (hit(t)) t.revoked = true;
  for (const t of ctx.state.refreshTokens.values()) if (hit(t)) t.revoked = true;
}

export function uninstall(ctx: Ctx, clientId: string, where: { locationId?: string; companyId?: string }): number {
  const app = ctx.state.appByClientId(clientId);
  if (!app) throw new Error(`unknown clientId ${clientId}`);
  const removed: Installation[] = [];
  ctx.state.installations = ctx.state.installations.filter((i) => {
    const match =
      i.appId === app.appId &&
      (where.locationId !== undefined ? i.locationId === where.locationId : i.companyId === where.companyId);
    if (match) removed.push(i);
    return !match;
  });
  for (const i of removed) {
    if (i.locationId !== undefined) {
      const loc = ctx.state.locations.get(i.locationId);
      if (loc)
        for (const k of ['SMS', 'Email'] as const)
          if (loc.defaultProvider[k] === app.appId) delete loc.defaultProvider[k];
      revokeFor(ctx, app.appId, { locationId: i.locationId });
      sendToApp(ctx, app, { type: 'UNINSTALL', appId: app.appId, locationId: i.locationId, companyId: i.companyId });
    } else {
      revokeFor(ctx, app.appId, { companyId: i.companyId });
      sendToApp(ctx, app, { type: 'UNINSTALL', appId: app.appId, companyId: i.companyId });
    }
  }
  return removed.length;
}
