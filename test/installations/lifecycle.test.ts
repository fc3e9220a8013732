import { afterEach, describe, expect, it } from 'vitest';
import { decrypt, generateKeySpec, parseKeyRing } from '../../src/infra/crypto/aes.js';
import { oauthToken } from '../../src/platform/ghl/client.js';
import { rotateTokenKeys } from '../../src/platform/installations/vault.js';
import { countByState } from '../../src/infra/queue/index.js';
import { waitFor } from '../helpers/store.js';
import { install, startBridge, startGhl, type BridgeWithGhl, type GhlWorld } from './harness.js';

let w: GhlWorld | undefined;
let b: BridgeWithGhl | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  b = w = undefined;
});

describe('installation lifecycle', () => {
  it('keys rotate: every token re-encrypted with the new first key; old key no longer needed', async () => {
    w = await startGhl({ locations: 3 });
    b = await startBridge(w);
    for (const loc of w.locationIds) expect((await install(b, { locationId: loc })).status).toBe(200);
    const oldSpec = w.env.TOKEN_ENCRYPTION_KEYS!;
    const newSpec = generateKeySpec('k2');
    const before = await b.ctx.db.selectFrom('ghl_installations').selectAll().execute();
    const plain = before.map((r) =>
      decrypt(parseKeyRing(oldSpec), r.access_token_enc!, `ghl_installations:${r.id}:access`),
    );

    const r = await rotateTokenKeys(b.ctx.db, parseKeyRing(`${newSpec},${oldSpec}`));
    expect(r).toEqual({ rotated: 3, current: 0, total: 3 });
    expect(await rotateTokenKeys(b.ctx.db, parseKeyRing(`${newSpec},${oldSpec}`))).toEqual({
      rotated: 0,
      current: 3,
      total: 3,
    });
    const after = await b.ctx.db.selectFrom('ghl_installations').selectAll().execute();
    const onlyNew = parseKeyRing(newSpec);
    for (const [i, row] of after.entries()) {
      expect(row.key_id).toBe('k2');
      expect(row.access_token_enc).toMatch(/^v1\.k2\./);
      expect(decrypt(onlyNew, row.access_token_enc!, `ghl_installations:${row.id}:access`)).toBe(
        plain[before.findIndex((x) => x.id === row.id)] ?? plain[i],
      );
      expect(decrypt(onlyNew, row.refresh_token_enc!, `ghl_installations:${row.id}:refresh`)).toBeTruthy();
      expect(() => decrypt(parseKeyRing(oldSpec), row.access_token_enc!, `ghl_installations:${row.id}:access`)).toThrow(
        /not in TOKEN_ENCRYPTION_KEYS/,
      );
    }
  });

  it('Private Integration Token: used as is, never refreshed; a 401 marks the installation reauth_required', async () => {
    w = await startGhl();
    b = await startBridge(w);
    const loc = w.locationIds[1]!;
    // The emulator has no PIT screen: a static token it accepts stands in for one.
    const { code } = w.emu.control.authorize({ clientId: w.clientId, locationId: loc });
    const t = await oauthToken(w.emu.baseUrl, {
      client_id: w.clientId,
      client_secret: w.clientSecret,
      grant_type: 'authorization_code',
      code,
    });
    const view = await b.s.installations.configurePit({ locationId: loc, companyId: w.companyId }, t.access_token!);
    expect(view).toMatchObject({ tokenSource: 'pit', status: 'active' });
    expect(view.accessToken).not.toContain(t.access_token!.slice(8, 30));
    await b.s.ghl.customFields.list(loc, { installation: { locationId: loc } });
    // Far past any OAuth expiry: a PIT is still sent as is (no refresh attempted).
    w.emu.clock.advance(3600_000);
    await b.s.ghl.customFields.list(loc, { installation: { locationId: loc } });
    expect(w.observed.refreshGrants).toBe(0);
    w.emu.control.revokeToken(t.access_token!);
    await expect(b.s.ghl.customFields.list(loc, { installation: { locationId: loc } })).rejects.toThrow(
      /re-authorization/,
    );
    expect(w.observed.refreshGrants).toBe(0);
    expect(await b.s.installations.get(loc)).toMatchObject({ status: 'reauth_required' });
    expect((await b.s.installations.get(loc))!.statusReason).toMatch(/private integration token/);
  });

  it('reconcile: locations GHL lists but we lack get tokens; ones GHL no longer lists are removed', async () => {
    w = await startGhl({ locations: 5 });
    b = await startBridge(w);
    expect((await install(b, { companyId: w.companyId, bulk: true })).status).toBe(200);
    await waitFor(
      async () =>
        (await b!.s.installations.list({ status: 'active', companyId: w!.companyId })).filter(
          (i) => i.kind === 'location',
        ).length === 5,
      { what: '5 location tokens' },
    );
    // Changes at GHL whose webhooks we never got (no webhook URL configured in this test).
    w.emu.control.uninstall({ clientId: w.clientId, locationId: w.locationIds[0]! });
    const added = w.emu.control.createLocation({ companyId: w.companyId, name: 'Late' }).id;
    w.emu.control.install({ clientId: w.clientId, companyId: w.companyId, bulk: true, locationIds: [added] });
    const r = await b.s.installations.reconcile();
    expect(r).toMatchObject({ added: 1, removed: 1, companies: 1 });
    expect((await b.s.installations.get(w.locationIds[0]!))!.status).toBe('uninstalled');
    expect((await b.s.installations.get(added))!.status).toBe('active');
    await b.s.ghl.customFields.list(added, { installation: { locationId: added } });
    expect(await b.s.installations.reconcile()).toMatchObject({ added: 0, removed: 0 });
  });

  it('minted location tokens are re-minted from the company token when they expire', async () => {
    w = await startGhl({ locations: 2 });
    b = await startBridge(w);
    expect((await install(b, { companyId: w.companyId, bulk: true })).status).toBe(200);
    const loc = w.locationIds[0]!;
    // Every location minted (the sync job makes no more calls that the clock jump could catch mid-flight).
    await waitFor(
      async () =>
        (await b!.s.installations.list({ status: 'active', companyId: w!.companyId })).filter(
          (i) => i.kind === 'location',
        ).length === 2,
      { what: 'location tokens' },
    );
    // …and the sync job itself finished: a call still in flight when the clock jumps would meet a 401.
    await waitFor(
      async () => {
        const c = await countByState(b!.ctx.db);
        return c.ready + c.running + c.blocked === 0;
      },
      { what: 'background jobs finished' },
    );
    const before = (await b.s.installations.getRow(`loc:${loc}`))!;
    w.emu.clock.advance(2 * 24 * 3600_000); // both the company and the location token expired
    await b.s.ghl.customFields.list(loc, { installation: { locationId: loc } });
    const after = (await b.s.installations.getRow(`loc:${loc}`))!;
    expect(after.refresh_count).toBe(before.refresh_count + 1);
    expect(w.observed.refreshGrants).toBe(1); // the company token, once
    expect(w.observed.api401).toBe(0);
  });
});
