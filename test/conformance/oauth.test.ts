import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeWorld, tokenFor, world, type World } from '../emulator/helpers.js';
import { call } from './spec.js';

let w: World;
beforeAll(async () => {
  w = await world();
});
afterAll(async () => closeWorld(w));

describe('oauth.json', () => {
  it('get-access-token: authorization_code and refresh_token; invalid grant is 4xx', async () => {
    const { code } = w.emu.control.authorize({ clientId: w.app.clientId, locationId: w.locationId });
    const ok = await call(w.base, 'get-access-token', {
      form: true,
      body: {
        client_id: w.app.clientId,
        client_secret: w.app.clientSecret,
        grant_type: 'authorization_code',
        code,
        user_type: 'Location',
      },
    });
    const ref = await call(w.base, 'get-access-token', {
      form: true,
      body: {
        client_id: w.app.clientId,
        client_secret: w.app.clientSecret,
        grant_type: 'refresh_token',
        refresh_token: String(ok.body.refresh_token),
        user_type: 'Location',
      },
    });
    expect(ref.body.userType).toBe('Location');
    const bad = await call(
      w.base,
      'get-access-token',
      { form: true, body: { client_id: w.app.clientId, client_secret: w.app.clientSecret, grant_type: 'bogus' } },
      'invalid',
    );
    expect(bad.status).toBe(422);
    const badSecret = await call(
      w.base,
      'get-access-token',
      {
        form: true,
        body: { client_id: w.app.clientId, client_secret: 'x', grant_type: 'authorization_code', code: 'x' },
      },
      'invalid',
    );
    expect(badSecret.status).toBe(401);
  });

  it('get-location-access-token and get-installed-location (agency token)', async () => {
    const t = String((await tokenFor(w, { companyId: w.companyId })).access_token);
    const lt = await call(w.base, 'get-location-access-token', {
      token: t,
      form: true,
      body: { companyId: w.companyId, locationId: w.locationId },
    });
    expect(lt.body.locationId).toBe(w.locationId);
    const bad = await call(
      w.base,
      'get-location-access-token',
      { token: t, form: true, body: { companyId: w.companyId } },
      'invalid',
    );
    expect(bad.status).toBe(422);
    const noAuth = await call(
      w.base,
      'get-location-access-token',
      { form: true, body: { companyId: w.companyId, locationId: w.locationId } },
      'invalid',
    );
    expect(noAuth.status).toBe(401);

    const il = await call(w.base, 'get-installed-location', {
      token: t,
      query: { companyId: w.companyId, appId: w.app.appId },
    });
    expect(il.body.count).toBe(1);
    const ilBad = await call(
      w.base,
      'get-installed-location',
      { token: t, query: { companyId: w.companyId } },
      'invalid',
    );
    expect(ilBad.status).toBe(422);
  });
});
