import { afterEach, describe, expect, it } from 'vitest';
import { enqueue, getJob } from '../../src/infra/queue/index.js';
import { webhooksModule } from '../../src/platform/webhooks/index.js';
import { waitFor } from '../helpers/store.js';
import { install, startBridge, startGhl, type BridgeWithGhl, type GhlWorld } from './harness.js';

let w: GhlWorld | undefined;
let b: BridgeWithGhl | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  b = w = undefined;
});

/** A bridge with the webhook intake, trusting the emulator's signing keys, as the app's webhook URL. */
async function startWithWebhooks(world: GhlWorld): Promise<BridgeWithGhl> {
  const bridge = await startBridge(world, {
    before: [
      webhooksModule({
        extraEd25519Keys: [world.emu.keys.ed25519PublicKeyPem],
        extraRsaKeys: [world.emu.keys.rsaPublicKeyPem],
      }),
    ],
  });
  world.emu.control.updateApp(world.clientId, { webhookUrl: `${bridge.url}/webhooks/ghl` });
  return bridge;
}

describe('INSTALL / UNINSTALL through the webhook intake (signed by the emulator)', () => {
  it('bulk install; a later location gets a token from its INSTALL; UNINSTALL deletes tokens and cancels jobs', async () => {
    w = await startGhl({ locations: 3 });
    b = await startWithWebhooks(w);
    expect((await install(b, { companyId: w.companyId, bulk: true })).status).toBe(200);
    await waitFor(
      async () =>
        (await b!.s.installations.list({ status: 'active', companyId: w!.companyId })).filter(
          (i) => i.kind === 'location',
        ).length === 3,
      { what: '3 location tokens' },
    );
    await w.emu.idle();

    // A sub-account added to the bulk install later: only its INSTALL webhook tells us.
    const late = w.emu.control.createLocation({ companyId: w.companyId, name: 'Late' }).id;
    w.emu.control.install({ clientId: w.clientId, companyId: w.companyId, bulk: true, locationIds: [late] });
    await waitFor(async () => (await b!.s.installations.get(late))?.status === 'active', {
      what: 'token for the late location',
    });
    await b.s.ghl.customFields.list(late, { installation: { locationId: late } });

    // UNINSTALL of one location: tokens gone, its waiting jobs cancelled, other locations untouched.
    const gone = w.locationIds[1]!;
    const [jobId] = await enqueue(b.ctx.db, {
      kind: 'test.never',
      payload: {},
      scope: `loc:${gone}`,
      runAt: new Date(Date.now() + 3600_000),
    });
    expect(await b.s.installations.isKnownLocation(gone, w.companyId)).toBe(true); // remembered for a second: UNINSTALL must forget it
    w.emu.control.uninstall({ clientId: w.clientId, locationId: gone });
    await waitFor(async () => (await b!.s.installations.get(gone))?.status === 'uninstalled', {
      what: 'UNINSTALL handled',
    });
    const row = (await b.s.installations.getRow(`loc:${gone}`))!;
    expect([row.access_token_enc, row.refresh_token_enc]).toEqual([null, null]);
    expect((await getJob(b.ctx.db, jobId!))?.state).toBe('cancelled');
    expect((await b.s.installations.get(w.locationIds[0]!))!.status).toBe('active');
    expect(await b.s.installations.isKnownLocation(gone, w.companyId)).toBe(false);
    expect(await b.s.installations.isKnownLocation(w.locationIds[0]!, w.companyId)).toBe(true);
  });

  it('UNINSTALL still lands when the revoked tokens have just paused the location (its 401 came first)', async () => {
    w = await startGhl({ locations: 1 });
    b = await startWithWebhooks(w);
    const loc = w.locationIds[0]!;
    expect((await install(b, { locationId: loc })).status).toBe(200);
    await w.emu.idle();
    // The workers held still, so the order is fixed: GHL revokes the tokens and sends UNINSTALL (stored, its job
    // waiting), then another job of the location calls GHL, gets 401 and pauses the location's waiting jobs.
    await b.ctx.queue.stop(5_000);
    w.emu.control.uninstall({ clientId: w.clientId, locationId: loc });
    await waitFor(
      async () =>
        (await b!.ctx.db
          .selectFrom('webhook_events')
          .select('id')
          .where('type', '=', 'UNINSTALL')
          .executeTakeFirst()) !== undefined,
      { what: 'UNINSTALL stored' },
    );
    await expect(b.s.ghl.customFields.list(loc, { installation: { locationId: loc } })).rejects.toThrow(
      /re-authorization/,
    );
    expect((await b.s.installations.get(loc))!.status).toBe('reauth_required');
    await b.ctx.queue.start();
    await waitFor(async () => (await b!.s.installations.get(loc))?.status === 'uninstalled', {
      what: 'UNINSTALL handled after the pause',
    });
    const row = (await b.s.installations.getRow(`loc:${loc}`))!;
    expect([row.access_token_enc, row.refresh_token_enc]).toEqual([null, null]);
    // A late 401 of a job that was already running cannot turn the uninstall back into "needs re-authorization".
    await expect(b.s.ghl.customFields.list(loc, { installation: { locationId: loc } })).rejects.toThrow();
    expect((await b.s.installations.get(loc))!.status).toBe('uninstalled');
  });
});
