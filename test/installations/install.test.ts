import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { listJobs } from '../../src/infra/queue/index.js';
import { waitFor } from '../helpers/store.js';
import { install, startBridge, startGhl, type BridgeWithGhl, type GhlWorld } from './harness.js';

let w: GhlWorld | undefined;
let b: BridgeWithGhl | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  b = w = undefined;
});

describe('install flow (emulator over HTTP)', () => {
  it('location install end to end: redirect with v2 path, scopes and state; callback records the installation', async () => {
    w = await startGhl();
    b = await startBridge(w);
    const r1 = await fetch(`${b.url}/oauth/install`, { redirect: 'manual' });
    expect(r1.status).toBe(302);
    const u = new URL(r1.headers.get('location')!);
    expect(u.origin + u.pathname).toBe(`${w.emu.baseUrl}/v2/oauth/chooselocation`);
    expect(u.searchParams.get('scope')).toBe(w.env.GHL_SCOPES);
    expect(u.searchParams.get('client_id')).toBe(w.clientId);
    expect(u.searchParams.get('redirect_uri')).toBe('http://bridge.test/oauth/callback');
    expect(u.searchParams.get('state')).toMatch(/^\d{13}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);

    const res = await install(b, { locationId: w.locationIds[0]! });
    expect(res.status).toBe(200);
    expect(w.observed.codeGrants).toBe(1);
    const inst = await b.s.installations.get(w.locationIds[0]!);
    expect(inst).toMatchObject({
      kind: 'location',
      userType: 'Location',
      companyId: w.companyId,
      locationId: w.locationIds[0],
      tokenSource: 'oauth',
      status: 'active',
      isBulk: false,
    });
    expect(inst!.scopes).toContain('conversations/message.write');
    expect(inst!.expiresAt!.getTime()).toBeGreaterThan(w.emu.clock.now() + 86_000_000);
    expect(inst!.accessToken).toMatch(/^.{4}….{4}$/); // masked, never the token

    // The client works for that installation.
    const c = await b.s.ghl.contacts.upsert(
      { locationId: w.locationIds[0]!, email: 'a@example.com', firstName: 'A' },
      { installation: { locationId: w.locationIds[0]! } },
    );
    expect((c as { contact?: { id?: string } }).contact?.id).toBeTruthy();
    expect(await b.s.installations.isKnownLocation(w.locationIds[0]!, w.companyId)).toBe(true);
    expect(await b.s.installations.isKnownLocation(w.locationIds[1]!, w.companyId)).toBe(false);
  });

  it('rejects a reused state and an expired state', async () => {
    w = await startGhl();
    b = await startBridge(w);
    // Reused: replay the same callback URL (fresh code from the emulator, same state).
    const r1 = await fetch(`${b.url}/oauth/install`, { redirect: 'manual' });
    const state = new URL(r1.headers.get('location')!).searchParams.get('state')!;
    const a1 = w.emu.control.authorize({ clientId: w.clientId, locationId: w.locationIds[0]!, state });
    const ok = await fetch(`${b.url}/oauth/callback?code=${a1.code}&state=${state}`);
    expect(ok.status).toBe(200);
    const a2 = w.emu.control.authorize({ clientId: w.clientId, locationId: w.locationIds[1]!, state });
    const reused = await fetch(`${b.url}/oauth/callback?code=${a2.code}&state=${state}`);
    expect(reused.status).toBe(400);
    expect(await b.s.installations.get(w.locationIds[1]!)).toBeUndefined();
    // Unknown / missing state.
    expect((await fetch(`${b.url}/oauth/callback?code=${a2.code}&state=forged`)).status).toBe(400);
    expect((await fetch(`${b.url}/oauth/callback?code=${a2.code}`)).status).toBe(400);
    // Expired: 10 min TTL on the (shared) clock.
    const r2 = await fetch(`${b.url}/oauth/install`, { redirect: 'manual' });
    const state2 = new URL(r2.headers.get('location')!).searchParams.get('state')!;
    w.emu.clock.advance(11 * 60_000);
    const a3 = w.emu.control.authorize({ clientId: w.clientId, locationId: w.locationIds[1]!, state: state2 });
    expect((await fetch(`${b.url}/oauth/callback?code=${a3.code}&state=${state2}`)).status).toBe(400);
    // Tampered: a later expiry or another nonce with the original signature.
    const [exp, nonce, mac] = state2.split('.') as [string, string, string];
    for (const forged of [
      `${Number(exp) + 3_600_000}.${nonce}.${mac}`,
      `${exp}.${'A'.repeat(22)}.${mac}`,
      `${exp}.${nonce}.${'A'.repeat(43)}`,
      '%00',
      'x'.repeat(300),
    ]) {
      expect((await fetch(`${b.url}/oauth/callback?code=${a3.code}&state=${forged}`)).status, forged).toBe(400);
    }
    expect(w.observed.codeGrants).toBe(1); // bad states never reach the code exchange
  });

  it('10,000 unauthenticated /oauth/install calls write nothing; a state is still single-use when two callbacks race', async () => {
    w = await startGhl();
    b = await startBridge(w);
    const rows = async () =>
      Number(
        (
          await b!.ctx.db
            .selectFrom('ghl_oauth_states')
            .select(b!.ctx.db.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    let last = '';
    for (let i = 0; i < 100; i++) {
      const batch = await Promise.all(
        Array.from({ length: 100 }, () => b!.app.inject({ method: 'GET', url: '/oauth/install' })),
      );
      expect(batch.every((r) => r.statusCode === 302)).toBe(true);
      last = batch[0]!.headers.location as string;
    }
    expect(await rows()).toBe(0);
    const state = new URL(last).searchParams.get('state')!;
    const codes = w.locationIds
      .slice(0, 2)
      .map((locationId) => w!.emu.control.authorize({ clientId: w!.clientId, locationId, state }).code);
    const answers = await Promise.all(
      codes.map((code) => fetch(`${b!.url}/oauth/callback?code=${code}&state=${state}`)),
    );
    expect(answers.map((r) => r.status).sort()).toEqual([200, 400]);
    expect(w.observed.codeGrants).toBe(1);
    expect(await rows()).toBe(1); // the used nonce, until its state expires
    // Expired nonces are pruned at the next callback.
    w.emu.clock.advance(11 * 60_000);
    const r = await fetch(`${b.url}/oauth/install`, { redirect: 'manual' });
    const fresh = new URL(r.headers.get('location')!).searchParams.get('state')!;
    const code = w.emu.control.authorize({ clientId: w.clientId, locationId: w.locationIds[1]!, state: fresh }).code;
    expect((await fetch(`${b.url}/oauth/callback?code=${code}&state=${fresh}`)).status).toBe(200);
    expect(await rows()).toBe(1);
  }, 120_000);

  it('agency bulk install with 20 locations: a location token minted for each; INSTALL adds a new one; UNINSTALL removes one and cancels its jobs', async () => {
    w = await startGhl({ locations: 20 });
    b = await startBridge(w);
    const res = await install(b, { companyId: w.companyId, bulk: true });
    expect(res.status).toBe(200);
    const co = await b.s.installations.get(`co:${w.companyId}`);
    expect(co).toMatchObject({ kind: 'company', userType: 'Company', isBulk: true, status: 'active' });
    await waitFor(
      async () =>
        (await b!.s.installations.list({ companyId: w!.companyId })).filter(
          (i) => i.kind === 'location' && i.status === 'active',
        ).length === 20,
      { what: '20 location tokens' },
    );
    const locs = (await b.s.installations.list({ companyId: w.companyId })).filter((i) => i.kind === 'location');
    expect(locs.every((l) => l.tokenSource === 'company' && l.userType === 'Location')).toBe(true);
    // Each location token acts for its location only.
    for (const id of w.locationIds.slice(0, 3)) {
      const r = await b.s.ghl.customFields.list(id, { installation: { locationId: id } });
      expect(r).toBeTruthy();
    }

    // A location added later (INSTALL webhook for a bulk install): gets a token.
    const newLoc = w.emu.control.createLocation({ companyId: w.companyId, name: 'New' }).id;
    w.emu.control.install({ clientId: w.clientId, companyId: w.companyId, bulk: true, locationIds: [newLoc] });
    await b.s.installations.onInstall({ companyId: w.companyId, locationId: newLoc });
    await waitFor(async () => (await b!.s.installations.get(newLoc))?.status === 'active', {
      what: 'new location token',
    });

    // UNINSTALL: tokens deleted, pending jobs cancelled.
    const gone = w.locationIds[5]!;
    const { enqueue } = await import('../../src/infra/queue/index.js');
    await enqueue(b.ctx.db, {
      kind: 'test.never',
      payload: {},
      scope: `loc:${gone}`,
      runAt: new Date(Date.now() + 3600_000),
    });
    await b.s.installations.onUninstall({ companyId: w.companyId, locationId: gone });
    const row = await b.ctx.db
      .selectFrom('ghl_installations')
      .selectAll()
      .where('id', '=', `loc:${gone}`)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('uninstalled');
    expect(row.access_token_enc).toBeNull();
    expect(row.refresh_token_enc).toBeNull();
    expect((await listJobs(b.ctx.db, { scope: `loc:${gone}` }))[0]?.state).toBe('cancelled');
    await expect(b.s.ghl.contacts.get('x', { installation: { locationId: gone } })).rejects.toThrow(
      /no active installation/,
    );
    const n = await sql<{
      n: number;
    }>`select count(*)::int as n from ghl_installations where status = 'active' and kind = 'location'`.execute(
      b.ctx.db,
    );
    expect(n.rows[0]!.n).toBe(20);
  });
});
