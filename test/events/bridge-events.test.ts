import { afterEach, describe, expect, it } from 'vitest';
import { eventsModule } from '../../src/capabilities/events/index.js';
import { decrypt, parseKeyRing } from '../../src/infra/crypto/aes.js';
import { waitFor } from '../helpers/store.js';
import { ADMIN, adminPut, startBridge, startWorld, type ProviderBridge, type World } from '../provider/harness.js';
import { startReceiver } from './harness.js';

let w: World | undefined;
let b: ProviderBridge | undefined;
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  await b?.close();
  await w?.emu.close();
  b = undefined;
  w = undefined;
});

/** The bridge's own events from the modules that emit them, end to end through GHL (the emulator). */
describe('bridge events', () => {
  it('message.sent, the GHL OutboundMessage/ProviderOutboundMessage events, and installation.uninstalled reach a subscriber', async () => {
    w = await startWorld();
    b = await startBridge(w, {
      modules: [eventsModule()],
      env: { EVENTS_ALLOWED_NETWORKS: '127.0.0.1/32', EVENTS_POLL_MS: '100' },
    });
    w.emu.control.updateApp(w.clientId, { webhookUrl: `${b.url}/webhooks/ghl` });
    const loc = w.locationIds[0]!;
    expect((await adminPut(b.url, loc, { config: { kind: 'loopback', autoReply: false } })).status).toBe(200);
    const r = await startReceiver();
    closers.push(() => r.close());
    const res = await fetch(`${b.url}/admin/api/subscriptions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: r.url, eventTypes: ['message.*', 'installation.*', 'ProviderOutboundMessage'] }),
    });
    expect(res.status).toBe(201);
    const { secret } = (await res.json()) as { secret: string };

    const contact = w.emu.control.createContact({ locationId: loc, firstName: 'Eve', phone: '+15550100' });
    const m = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: contact.id,
      type: 'SMS',
      message: 'hi',
      conversationProviderId: w.providerId,
    });
    await waitFor(() => r.got.some((g) => g.body.type === 'message.sent'), { what: 'message.sent' });
    const sent = r.got.find((g) => g.body.type === 'message.sent')!;
    expect(sent.body).toMatchObject({ source: 'bridge', version: 1, locationId: loc, contactId: contact.id });
    expect(sent.body.data).toMatchObject({ messageId: m.id, locationId: loc, contactId: contact.id });
    expect(r.got.some((g) => g.body.type === 'ProviderOutboundMessage' && g.body.data.messageId === m.id)).toBe(true);

    // Uninstalled at once: the message's status report may still be queued, get 401 from the revoked tokens and pause
    // the location's waiting jobs; UNINSTALL's dispatch belongs to no location scope, so it still runs.
    w.emu.control.uninstall({ clientId: w.clientId, locationId: loc });
    // UNINSTALL reaches the bridge as GHL's webhook, then its job, then the fan-out: give a loaded CI machine time.
    await waitFor(() => r.got.some((g) => g.body.type === 'installation.uninstalled'), {
      what: 'installation.uninstalled',
      timeoutMs: 60_000,
    });
    const un = r.got.find((g) => g.body.type === 'installation.uninstalled')!;
    expect(un.body.data).toMatchObject({ locationId: loc });
    for (const g of r.got) expect(r.verify(g, secret)).toBeTruthy();
    expect(new Set(r.got.map((g) => g.id)).size).toBe(r.got.length);
  }, 120_000);

  it('installation.reauth_required when GHL refuses the tokens', async () => {
    w = await startWorld();
    b = await startBridge(w, {
      modules: [eventsModule()],
      env: { EVENTS_ALLOWED_NETWORKS: '127.0.0.1/32', EVENTS_POLL_MS: '100' },
    });
    const loc = w.locationIds[0]!;
    const r = await startReceiver();
    closers.push(() => r.close());
    const res = await fetch(`${b.url}/admin/api/subscriptions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: r.url, eventTypes: ['installation.*'] }),
    });
    expect(res.status).toBe(201);
    // GHL revokes both tokens of the installation (as when the user removes access).
    const row = await b.ctx.db
      .selectFrom('ghl_installations')
      .selectAll()
      .where('location_id', '=', loc)
      .executeTakeFirstOrThrow();
    const ring = parseKeyRing(w.env.TOKEN_ENCRYPTION_KEYS!);
    for (const kind of ['access', 'refresh'] as const) {
      const enc = kind === 'access' ? row.access_token_enc : row.refresh_token_enc;
      w.emu.control.revokeToken(decrypt(ring, enc!, `ghl_installations:${row.id}:${kind}`));
    }
    const ghl = b.ctx.services.get('ghl');
    await expect(ghl.customFields.list(loc, { installation: { locationId: loc } })).rejects.toThrow(/re-authorization/);
    await waitFor(() => r.got.some((g) => g.body.type === 'installation.reauth_required'), {
      what: 'installation.reauth_required',
    });
    const ev = r.got.find((g) => g.body.type === 'installation.reauth_required')!;
    expect(ev.body).toMatchObject({ source: 'bridge', locationId: loc });
    expect(ev.body.data).toMatchObject({ locationId: loc, companyId: null });
    expect(String(ev.body.data.reason).length).toBeGreaterThan(0);
  });
});
