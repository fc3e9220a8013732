import { afterEach, describe, expect, it } from 'vitest';
import { api, closeWorld, tokenFor, world, type World } from './helpers.js';

let w: World;
afterEach(async () => closeWorld(w));

const form = (o: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(o),
});

describe('OAuth', () => {
  it('install page redirects with code and echoes state; code exchanges once', async () => {
    w = await world();
    const url = `${w.base}/v2/oauth/chooselocation?response_type=code&client_id=${w.app.clientId}&redirect_uri=${encodeURIComponent('http://127.0.0.1:1/callback')}&scope=contacts.readonly&state=xyz`;
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(w.locationId);
    const pick = await fetch(`${url}&locationId=${w.locationId}`, { redirect: 'manual' });
    expect(pick.status).toBe(302);
    const loc = new URL(pick.headers.get('location') ?? '');
    expect(loc.searchParams.get('state')).toBe('xyz');
    const code = loc.searchParams.get('code') ?? '';
    const legacy = await fetch(`${w.base}/oauth/chooselocation?client_id=${w.app.clientId}`);
    expect(legacy.status).toBe(200);

    const body = {
      client_id: w.app.clientId,
      client_secret: w.app.clientSecret,
      grant_type: 'authorization_code',
      code,
      user_type: 'Location',
    };
    const res = await fetch(`${w.base}/oauth/token`, form(body));
    expect(res.status).toBe(200);
    const tok = (await res.json()) as Record<string, unknown>;
    expect(tok).toMatchObject({
      token_type: 'Bearer',
      expires_in: 86399,
      userType: 'Location',
      locationId: w.locationId,
      companyId: w.companyId,
      isBulkInstallation: false,
    });
    expect(typeof tok.refresh_token).toBe('string');
    expect(typeof tok.userId).toBe('string');
    const again = await fetch(`${w.base}/oauth/token`, form(body));
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('rejects wrong client secret with 401 and GHL error shape', async () => {
    w = await world();
    const { code } = w.emu.control.authorize({ clientId: w.app.clientId, locationId: w.locationId });
    const res = await fetch(
      `${w.base}/oauth/token`,
      form({ client_id: w.app.clientId, client_secret: 'nope', grant_type: 'authorization_code', code }),
    );
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
  });

  it('refresh rotates: the old refresh token is rejected after use', async () => {
    w = await world();
    const t1 = await tokenFor(w, { locationId: w.locationId });
    const refresh = (rt: string) =>
      fetch(
        `${w.base}/oauth/token`,
        form({
          client_id: w.app.clientId,
          client_secret: w.app.clientSecret,
          grant_type: 'refresh_token',
          refresh_token: rt,
          user_type: 'Location',
        }),
      );
    const r2 = await refresh(String(t1.refresh_token));
    expect(r2.status).toBe(200);
    const t2 = (await r2.json()) as Record<string, unknown>;
    expect(t2.refresh_token).not.toBe(t1.refresh_token);
    expect(t2.access_token).not.toBe(t1.access_token);
    const reuse = await refresh(String(t1.refresh_token));
    expect(reuse.status).toBe(400);
    expect(await reuse.json()).toMatchObject({ error: 'invalid_grant' });
    const r3 = await refresh(String(t2.refresh_token));
    expect(r3.status).toBe(200);
  });

  it('access tokens expire via clock control (401), refresh still works', async () => {
    w = await world({ accessTokenTtlSec: 60 });
    const t = await tokenFor(w, { locationId: w.locationId });
    const ok = await api(w, String(t.access_token), 'GET', `/conversations/search?locationId=${w.locationId}`);
    expect(ok.status).toBe(200);
    w.emu.clock.advance(61_000);
    const expired = await api(w, String(t.access_token), 'GET', `/conversations/search?locationId=${w.locationId}`);
    expect(expired.status).toBe(401);
    expect(expired.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
    const r = await fetch(
      `${w.base}/oauth/token`,
      form({
        client_id: w.app.clientId,
        client_secret: w.app.clientSecret,
        grant_type: 'refresh_token',
        refresh_token: String(t.refresh_token),
      }),
    );
    expect(r.status).toBe(200);
  });

  it('bulk agency install: Company token, locationToken per location, installedLocations', async () => {
    w = await world();
    const loc2 = w.emu.control.createLocation({ companyId: w.companyId, name: 'Second' });
    const loc3 = w.emu.control.createLocation({ companyId: w.companyId, name: 'Third' });
    const t = await tokenFor(w, { companyId: w.companyId });
    expect(t).toMatchObject({ userType: 'Company', companyId: w.companyId, isBulkInstallation: true });
    expect(t.locationId).toBeUndefined();
    expect(new Set(t.approvedLocations as string[])).toEqual(new Set([w.locationId, loc2.id, loc3.id]));
    await w.emu.idle();
    const installs = w.receiver.received.filter((r) => r.json.type === 'INSTALL');
    expect(
      installs
        .map((r) => r.json.locationId)
        .filter(Boolean)
        .sort(),
    ).toEqual([w.locationId, loc2.id, loc3.id].sort());

    const lt = await fetch(`${w.base}/oauth/locationToken`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${String(t.access_token)}`,
        version: '2021-07-28',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ companyId: w.companyId, locationId: loc2.id }),
    });
    expect(lt.status).toBe(200);
    const ltb = (await lt.json()) as Record<string, unknown>;
    expect(ltb).toMatchObject({ token_type: 'Bearer', locationId: loc2.id, expires_in: 86399 });
    const use = await api(w, String(ltb.access_token), 'GET', `/conversations/search?locationId=${loc2.id}`);
    expect(use.status).toBe(200);
    const other = await api(w, String(ltb.access_token), 'GET', `/conversations/search?locationId=${w.locationId}`);
    expect(other.status).toBe(403);

    const il = await api(
      w,
      String(t.access_token),
      'GET',
      `/oauth/installedLocations?companyId=${w.companyId}&appId=${w.app.appId}&isInstalled=true`,
      undefined,
      '2021-07-28',
    );
    expect(il.status).toBe(200);
    expect((il.body.locations as unknown[]).length).toBe(3);

    // A location token cannot mint location tokens.
    const lt2 = await api(
      w,
      String(ltb.access_token),
      'POST',
      '/oauth/locationToken',
      { companyId: w.companyId, locationId: loc2.id },
      '2021-07-28',
    );
    expect(lt2.status).toBe(401);
  });

  it('agency-targeted app: Company token without bulk, agency-level INSTALL without locationId', async () => {
    w = await world();
    const agencyApp = w.emu.control.createApp({
      name: 'Agency tool',
      redirectUri: 'http://127.0.0.1:1/cb',
      scopes: ['oauth.readonly'],
      distribution: 'agency',
      webhookUrl: `${w.receiver.url}/agency`,
    });
    const { code } = w.emu.control.authorize({ clientId: agencyApp.clientId, companyId: w.companyId });
    const res = await fetch(
      `${w.base}/oauth/token`,
      form({
        client_id: agencyApp.clientId,
        client_secret: agencyApp.clientSecret,
        grant_type: 'authorization_code',
        code,
      }),
    );
    const t = (await res.json()) as Record<string, unknown>;
    expect(t).toMatchObject({ userType: 'Company', companyId: w.companyId, isBulkInstallation: false });
    await w.emu.idle();
    const inst = w.receiver.received.find((r) => r.path === '/agency')!;
    expect(inst.json).toMatchObject({ type: 'INSTALL', companyId: w.companyId, appId: agencyApp.appId });
    expect(inst.json.locationId).toBeUndefined();
    expect(() => w.emu.control.authorize({ clientId: agencyApp.clientId, locationId: w.locationId })).toThrow();
  });

  it('uninstall revokes tokens and sends UNINSTALL', async () => {
    w = await world();
    const t = await tokenFor(w, { locationId: w.locationId });
    w.emu.control.uninstall({ clientId: w.app.clientId, locationId: w.locationId });
    const r = await api(w, String(t.access_token), 'GET', `/conversations/search?locationId=${w.locationId}`);
    expect(r.status).toBe(401);
    await w.emu.idle();
    expect(w.receiver.received.map((x) => x.json.type)).toEqual(['INSTALL', 'UNINSTALL']);
  });

  it('revokeToken makes a token invalid', async () => {
    w = await world();
    const t = await tokenFor(w, { locationId: w.locationId });
    expect(w.emu.control.revokeToken(String(t.access_token))).toBe(true);
    const r = await api(w, String(t.access_token), 'GET', `/conversations/search?locationId=${w.locationId}`);
    expect(r.status).toBe(401);
  });
});
