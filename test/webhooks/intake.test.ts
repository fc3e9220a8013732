import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { BridgeModule } from '../../src/app.js';
import {
  webhooksModule,
  webhooksService,
  type StoredEvent,
  type WebhooksModuleOptions,
  type WebhooksService,
} from '../../src/platform/webhooks/index.js';
import { startTestBridge, waitFor, type TestBridge } from '../helpers/store.js';
import { contactCreate, countEvents, events, makeSigner, post, sendSigned } from './helpers.js';

const s = makeSigner();
const ADMIN = 'admin-key-for-tests-0123456789abcdef';
let bridge: TestBridge | undefined;
afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
});

/** A module that registers handlers in init, like the installations/provider modules will. */
function handlers(register: (w: WebhooksService) => void): BridgeModule {
  return { name: 'test-handlers', init: (ctx) => register(webhooksService(ctx)) };
}

async function start(
  opts: {
    env?: Record<string, string>;
    module?: WebhooksModuleOptions;
    register?: (w: WebhooksService) => void;
    handlersFirst?: boolean;
  } = {},
) {
  const wh = webhooksModule({ extraEd25519Keys: [s.edPublicPem], extraRsaKeys: [s.rsaPublicPem], ...opts.module });
  const h = handlers(opts.register ?? (() => {}));
  // Handlers registered by a module listed before or after webhooks must both work.
  bridge = await startTestBridge({
    modules: opts.handlersFirst ? [h, wh] : [wh, h],
    env: { ADMIN_API_KEY: ADMIN, ...opts.env },
  });
  return { b: bridge, app: `${bridge.url}/webhooks/ghl`, provider: `${bridge.url}/webhooks/ghl/provider` };
}

async function metric(b: TestBridge, name: string, labels: Record<string, string>): Promise<number> {
  const m = await b.ctx.metrics.registry.getSingleMetric(name)?.get();
  // Sum over the label sets that match (e.g. both sources).
  return (m?.values ?? [])
    .filter((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val))
    .reduce((a, x) => a + x.value, 0);
}

describe('webhook intake', () => {
  it('accepts a valid Ed25519 delivery, stores it and dispatches it to the handler', async () => {
    const seen: StoredEvent[] = [];
    const { b, app } = await start({
      register: (w) => w.on('ContactCreate', async (e) => void seen.push(e)),
      handlersFirst: true,
    });
    const p = contactCreate();
    const r = await sendSigned(app, s, p);
    expect(r.status).toBe(200);
    await waitFor(() => seen.length === 1, { what: 'handler call' });
    expect(seen[0]).toMatchObject({
      type: 'ContactCreate',
      source: 'app',
      locationId: 'loc_1',
      webhookId: p.webhookId,
      replay: false,
    });
    expect(seen[0]!.payload).toMatchObject({ id: p.id, firstName: 'Ada' });
    const row = await waitFor(async () => (await events(b.ctx.db)).find((e) => e.status === 'dispatched'), {
      what: 'dispatched status',
    });
    expect(row).toMatchObject({
      signature: 'ed25519',
      dedupe_key: p.webhookId,
      ordering_key: `wh:loc_1:${String(p.id)}`,
    });
    expect(await metric(b, 'ghl_bridge_webhook_intake_total', { outcome: 'accepted' })).toBe(1);
  });

  it('answers 401 and stores nothing for a wrong key, a tampered byte, a missing or wrong header', async () => {
    const { b, app } = await start();
    const other = makeSigner();
    const body = JSON.stringify(contactCreate());
    const tampered = body.replace('Ada', 'Adb');
    const cases: Array<[string, string, Record<string, string>]> = [
      ['wrong key', body, { 'x-ghl-signature': other.ed(body) }],
      ['tampered byte', tampered, { 'x-ghl-signature': s.ed(body) }],
      ['missing header', body, {}],
      ['N/A header', body, { 'x-ghl-signature': 'N/A' }],
      ['Ed25519 signature in the RSA header', body, { 'x-wh-signature': s.ed(body) }],
      ['RSA signature in the Ed25519 header', body, { 'x-ghl-signature': s.rsa(body) }],
      ['garbage signature', body, { 'x-ghl-signature': 'AAAA' }],
    ];
    for (const [what, payload, headers] of cases) {
      const r = await post(app, payload, headers);
      expect(r.status, what).toBe(401);
    }
    expect(await countEvents(b.ctx.db)).toBe(0);
    expect(await metric(b, 'ghl_bridge_webhook_rejected_total', { reason: 'invalid_signature' })).toBe(5);
    expect(await metric(b, 'ghl_bridge_webhook_rejected_total', { reason: 'missing_signature' })).toBe(2);
  });

  it("only the configured keys verify (GHL's published key cannot be forged here, so prove the list is what counts)", async () => {
    bridge = await startTestBridge({ modules: [webhooksModule({ omitGhlKeys: true })], env: {} });
    const r = await sendSigned(`${bridge.url}/webhooks/ghl`, s, contactCreate());
    expect(r.status).toBe(401);
    await bridge.close();
    bridge = await startTestBridge({
      modules: [webhooksModule({ omitGhlKeys: true })],
      env: { WEBHOOK_EXTRA_ED25519_KEYS: s.edPublicPem.replace(/\n/g, '\\n') },
    });
    expect((await sendSigned(`${bridge.url}/webhooks/ghl`, s, contactCreate())).status).toBe(200);
  });

  it('accepts legacy RSA X-WH-Signature only while WEBHOOK_ACCEPT_LEGACY_RSA is on', async () => {
    let ctx = await start({ env: { WEBHOOK_ACCEPT_LEGACY_RSA: 'true' } });
    expect((await sendSigned(ctx.app, s, contactCreate(), 'rsa')).status).toBe(200);
    expect((await events(ctx.b.ctx.db))[0]?.signature).toBe('rsa');
    await bridge!.close();
    ctx = await start({ env: { WEBHOOK_ACCEPT_LEGACY_RSA: 'false' } });
    const r = await sendSigned(ctx.app, s, contactCreate(), 'rsa');
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'legacy_disabled' });
    expect(await countEvents(ctx.b.ctx.db)).toBe(0);
  });

  it('accepts a body whose signature covers JSON.stringify(JSON.parse(raw)) (docs/ghl-behaviour.md#signed-bytes)', async () => {
    const { b, app } = await start();
    const p = contactCreate({ name: 'Zoë "Z" Ünal', customFields: [{ id: 'f1', value: 3.25 }] });
    const sig = s.ed(JSON.stringify(p));
    const r = await post(app, JSON.stringify(p, null, 2), { 'x-ghl-signature': sig });
    expect(r.status).toBe(200);
    const [row] = await events(b.ctx.db);
    expect(row).toMatchObject({ signature: 'ed25519+reserialized', dedupe_key: p.webhookId });
    expect(row!.payload).toEqual(p);
  });

  it('processes a duplicate delivery once (webhookId), and provider deliveries once per messageId', async () => {
    let appCalls = 0;
    const provider: StoredEvent[] = [];
    const {
      b,
      app,
      provider: providerUrl,
    } = await start({
      register: (w) => {
        w.on('ContactCreate', async () => void appCalls++);
        w.on('ProviderOutboundMessage', async (e) => void provider.push(e));
      },
    });
    const p = contactCreate();
    const first = await sendSigned(app, s, p);
    const again = await Promise.all([sendSigned(app, s, p), sendSigned(app, s, p)]);
    expect(first.status).toBe(200);
    expect(again.map((r) => r.status)).toEqual([200, 200]);
    expect(again.every((r) => JSON.parse(r.body).duplicate === true)).toBe(true);

    const msg = {
      contactId: 'c1',
      locationId: 'loc_1',
      messageId: 'm1',
      type: 'SMS',
      phone: '+15550100',
      message: 'hi',
      attachments: [],
    };
    // Same messageId under two different webhookIds (e.g. a re-send by GHL): one SMS.
    expect(
      (await sendSigned(providerUrl, s, { ...msg, webhookId: randomUUID(), timestamp: new Date().toISOString() }))
        .status,
    ).toBe(200);
    expect(
      (await sendSigned(providerUrl, s, { ...msg, webhookId: randomUUID(), timestamp: new Date().toISOString() }))
        .status,
    ).toBe(200);
    // A provider delivery without any envelope field (docs/ghl-behaviour.md#provider-outbound-message) is still accepted.
    expect((await sendSigned(providerUrl, s, { ...msg, messageId: 'm2' })).status).toBe(200);

    await waitFor(async () => (await events(b.ctx.db)).every((e) => e.status === 'dispatched'), {
      what: 'all dispatched',
    });
    expect(appCalls).toBe(1);
    expect(provider.map((e) => e.payload.messageId)).toEqual(['m1', 'm2']);
    expect(provider[0]).toMatchObject({ type: 'ProviderOutboundMessage', source: 'provider' });
    expect(await countEvents(b.ctx.db)).toBe(3);
    expect(await metric(b, 'ghl_bridge_webhook_intake_total', { outcome: 'duplicate' })).toBe(3);
  });

  it('rejects a timestamp outside the window (stale or from the future) and an unreadable one', async () => {
    const { b, app } = await start({ env: { WEBHOOK_TOLERANCE_SEC: '300' } });
    const old = new Date(Date.now() - 301_000).toISOString();
    const future = new Date(Date.now() + 301_000).toISOString();
    expect((await sendSigned(app, s, contactCreate({ timestamp: old }))).status).toBe(401);
    expect((await sendSigned(app, s, contactCreate({ timestamp: future }))).status).toBe(401);
    expect((await sendSigned(app, s, contactCreate({ timestamp: 'yesterday' }))).status).toBe(400);
    expect(
      (await sendSigned(app, s, contactCreate({ timestamp: new Date(Date.now() - 200_000).toISOString() }))).status,
    ).toBe(200);
    expect(await countEvents(b.ctx.db)).toBe(1);
    expect(await metric(b, 'ghl_bridge_webhook_rejected_total', { reason: 'stale' })).toBe(2);
  });

  it('keeps a signed but malformed body as a dead record with the reason', async () => {
    const { b, app } = await start();
    const body = '{"type":"ContactCreate","locationId":"loc_1",';
    const r = await post(app, body, { 'x-ghl-signature': s.ed(body) });
    expect(r.status).toBe(200);
    const notObject = '[1,2,3]';
    expect((await post(app, notObject, { 'x-ghl-signature': s.ed(notObject) })).status).toBe(200);
    const rows = await events(b.ctx.db);
    expect(rows.map((e) => e.status)).toEqual(['dead', 'dead']);
    expect(rows[0]!.reason).toMatch(/malformed JSON/);
    expect(Buffer.from(rows[0]!.raw!).toString()).toBe(body);
    expect(rows[1]!.reason).toMatch(/not an object/);
  });

  it('stores payloads with \\u0000 and lone surrogates unchanged (json, not jsonb)', async () => {
    const { b, app } = await start();
    const p = contactCreate({ firstName: 'a\u0000b', lastName: 'x\ud800y' });
    const body = JSON.stringify(p);
    expect((await post(app, body, { 'x-ghl-signature': s.ed(body) })).status).toBe(200);
    const [row] = await events(b.ctx.db);
    expect(row).toMatchObject({ status: 'skipped', raw: null });
    expect(row!.payload).toEqual(p);
  });

  it('stores and counts unknown types, and records known types nobody handles as skipped', async () => {
    const { b, app } = await start();
    expect((await sendSigned(app, s, contactCreate({ type: 'BrandNewEvent' }))).status).toBe(200);
    expect((await sendSigned(app, s, contactCreate({ type: 'NoteCreate' }))).status).toBe(200);
    const rows = await events(b.ctx.db);
    expect(rows.map((e) => [e.type, e.status])).toEqual([
      ['BrandNewEvent', 'unknown_type'],
      ['NoteCreate', 'skipped'],
    ]);
    expect(await metric(b, 'ghl_bridge_webhook_unknown_type_total', { type: 'BrandNewEvent' })).toBe(1);
  });

  it('skips events of unknown locations; handlers that opt out (INSTALL) still run', async () => {
    const installs: StoredEvent[] = [];
    const contacts: StoredEvent[] = [];
    const { b, app } = await start({
      module: { isKnownLocation: async (loc) => loc === 'loc_known' },
      register: (w) => {
        w.on('INSTALL', async (e) => void installs.push(e), { requireKnownLocation: false });
        w.on('ContactCreate', async (e) => void contacts.push(e));
      },
    });
    await sendSigned(app, s, contactCreate({ locationId: 'loc_unknown' }));
    await sendSigned(app, s, contactCreate({ locationId: 'loc_known' }));
    await sendSigned(app, s, {
      type: 'INSTALL',
      appId: 'app1',
      locationId: 'loc_new',
      companyId: 'co1',
      timestamp: new Date().toISOString(),
      webhookId: randomUUID(),
    });
    await waitFor(async () => (await events(b.ctx.db)).every((e) => e.status !== 'received'), { what: 'all handled' });
    const rows = await events(b.ctx.db);
    expect(rows.map((e) => [e.location_id, e.status])).toEqual([
      ['loc_unknown', 'skipped'],
      ['loc_known', 'dispatched'],
      ['loc_new', 'dispatched'],
    ]);
    expect(rows[0]!.reason).toMatch(/unknown or uninstalled location/);
    expect(contacts.map((e) => e.locationId)).toEqual(['loc_known']);
    expect(installs).toHaveLength(1);
  });

  it('marks a payload that fails its schema dead instead of handing it to the handler', async () => {
    let calls = 0;
    const { b, app } = await start({ register: (w) => w.on('ContactCreate', async () => void calls++) });
    await sendSigned(app, s, contactCreate({ tags: 'not-an-array' }));
    const row = await waitFor(async () => (await events(b.ctx.db)).find((e) => e.status === 'dead'), {
      what: 'dead event',
    });
    expect(row.reason).toMatch(/invalid payload.*tags/s);
    expect(calls).toBe(0);
  });

  it('runs events of one contact in arrival order', async () => {
    const order: string[] = [];
    const { b, app } = await start({
      register: (w) =>
        w.on('ContactUpdate', async (e) => {
          // The first event is slow: without ordering the second would overtake it.
          if (e.payload.firstName === 'v0') await new Promise((r) => setTimeout(r, 150));
          order.push(String(e.payload.firstName));
        }),
      env: { WORKER_CONCURRENCY: '4' },
    });
    for (let i = 0; i < 4; i++)
      expect(
        (await sendSigned(app, s, contactCreate({ type: 'ContactUpdate', id: 'c_same', firstName: `v${i}` }))).status,
      ).toBe(200);
    await waitFor(() => order.length === 4, { what: 'four updates' });
    expect(order).toEqual(['v0', 'v1', 'v2', 'v3']);
    expect(await countEvents(b.ctx.db)).toBe(4);
  });

  it('a handler that throws is retried, goes dead with the reason, and replay succeeds after the fix', async () => {
    let broken = true;
    let attempts = 0;
    let done = 0;
    const { b, app } = await start({
      module: { maxAttempts: 3, backoff: { baseMs: 50, maxMs: 200 } },
      register: (w) =>
        w.on('ContactCreate', async () => {
          attempts++;
          if (broken) throw new Error('CRM is down');
          done++;
        }),
    });
    await sendSigned(app, s, contactCreate());
    const dead = await waitFor(async () => (await events(b.ctx.db)).find((e) => e.status === 'dead'), {
      what: 'dead event',
    });
    expect(attempts).toBe(3);
    expect(dead.reason).toMatch(/attempt 3\/3.*CRM is down/);
    expect(await metric(b, 'ghl_bridge_webhook_dispatch_total', { type: 'ContactCreate', outcome: 'dead' })).toBe(1);

    broken = false;
    const url = `${b.url}/admin/webhooks/replay`;
    const unauth = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dead: true }),
    });
    expect(unauth.status).toBe(401);
    const wrong = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer nope' },
      body: JSON.stringify({ dead: true }),
    });
    expect(wrong.status).toBe(401);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ dead: true }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ replayed: [dead.id] });
    await waitFor(async () => (await events(b.ctx.db))[0]?.status === 'dispatched', {
      what: 'dispatched after replay',
    });
    expect(done).toBe(1);
    const one = await fetch(`${b.url}/admin/webhooks/events/${dead.id}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(await one.json()).toMatchObject({ id: dead.id, status: 'dispatched', reason: null });
  });

  it('answers 429 while the dispatch backlog is above WEBHOOK_MAX_BACKLOG', async () => {
    // No workers: jobs stay ready, so the backlog only grows.
    const { b, app } = await start({
      env: { WEBHOOK_MAX_BACKLOG: '2', WORKER_CONCURRENCY: '0' },
      register: (w) => w.on('ContactCreate', async () => {}),
    });
    expect((await sendSigned(app, s, contactCreate())).status).toBe(200);
    expect((await sendSigned(app, s, contactCreate())).status).toBe(200);
    // The count is cached for up to a second; poll until intake sees it.
    const r = await waitFor(
      async () => {
        const x = await sendSigned(app, s, contactCreate());
        return x.status === 429 ? x : undefined;
      },
      { what: '429 from backlog' },
    );
    expect(r.status).toBe(429);
    expect(await metric(b, 'ghl_bridge_webhook_throttled_total', { reason: 'backlog' })).toBeGreaterThanOrEqual(1);
  });

  it('refuses bodies above WEBHOOK_MAX_BODY_BYTES', async () => {
    const { b, app } = await start({ env: { WEBHOOK_MAX_BODY_BYTES: '2048' } });
    const r = await sendSigned(app, s, contactCreate({ notes: 'x'.repeat(4000) }));
    expect(r.status).toBe(413);
    expect(await countEvents(b.ctx.db)).toBe(0);
  });

  it('insecure mode accepts unsigned bodies and marks them', async () => {
    const { b, app } = await start({ env: { WEBHOOK_INSECURE_SKIP_VERIFY: 'true' } });
    expect((await post(app, JSON.stringify(contactCreate()))).status).toBe(200);
    expect((await events(b.ctx.db))[0]?.signature).toBe('none');
  });

  it('1,000 random malformed or unsigned bodies: none accepted, server still healthy', async () => {
    const { b, app, provider } = await start();
    const valid = JSON.stringify(contactCreate());
    const sig = s.ed(valid);
    const rnd = (n: number) => Math.floor(Math.random() * n);
    const junk = (): [string | Buffer, Record<string, string>] => {
      switch (rnd(6)) {
        case 0:
          return [Buffer.from(Array.from({ length: rnd(2000) }, () => rnd(256))), {}];
        case 1: {
          const t = Buffer.from(valid);
          const i = rnd(t.length);
          t[i] = t[i]! ^ (1 + rnd(255)); // always a different byte
          return [t, { 'x-ghl-signature': sig }];
        }
        case 2:
          return [
            valid,
            { 'x-ghl-signature': Buffer.from(Array.from({ length: 64 }, () => rnd(256))).toString('base64') },
          ];
        case 3:
          return [valid.slice(0, rnd(valid.length)), { 'x-ghl-signature': sig, 'content-type': 'text/plain' }];
        case 4:
          return [JSON.stringify({ type: 'INSTALL', appId: String(Math.random()) }), { 'x-wh-signature': sig }];
        default: {
          // A corrupted signature: one byte flipped (re-encoded, so it decodes to other bytes), maybe truncated.
          const b = Buffer.from(sig, 'base64');
          const i = rnd(b.length);
          b[i] = b[i]! ^ (1 + rnd(255));
          const enc = b.toString('base64');
          return [
            valid,
            {
              'x-ghl-signature': rnd(2) ? enc : enc.slice(0, 1 + rnd(enc.length - 1)),
              'content-type': 'application/x-www-form-urlencoded',
            },
          ];
        }
      }
    };
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 20; batch++) {
      const rs = await Promise.all(
        Array.from({ length: 50 }, () => {
          const [body, headers] = junk();
          return post(rnd(2) ? app : provider, body, headers);
        }),
      );
      for (const r of rs) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    expect([...statuses.values()].reduce((a, c) => a + c, 0)).toBe(1000);
    expect(statuses.get(200) ?? 0).toBe(0);
    expect([...statuses.keys()].every((k) => k === 401 || k === 400)).toBe(true);
    expect(await countEvents(b.ctx.db)).toBe(0);
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
    expect((await sendSigned(app, s, contactCreate())).status).toBe(200);
  });
});
