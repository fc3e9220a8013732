import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { BridgeModule } from '../../src/app.js';
import { createEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';
import {
  webhooksModule,
  webhooksService,
  type StoredEvent,
  type WebhooksModuleOptions,
  type WebhooksService,
} from '../../src/platform/webhooks/index.js';
import { openTestStore, PG_URL, startTestBridge, STORE, waitFor, type TestBridge } from '../helpers/store.js';
import { countEvents, events, post } from './helpers.js';
import { TcpProxy } from './tcp-proxy.js';

const SCOPES = [
  'contacts.readonly',
  'contacts.write',
  'conversations.readonly',
  'conversations.write',
  'conversations/message.readonly',
  'conversations/message.write',
];
const ADMIN = 'admin-key-for-tests-0123456789abcdef';

let emu: Emulator | undefined;
let bridge: TestBridge | undefined;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
  await emu?.close();
  emu = undefined;
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  emu: Emulator;
  b: TestBridge;
  clientId: string;
  companyId: string;
  locationId: string;
  providerId: string;
}

/** Emulator + bridge wired the way an operator wires GHL: app webhook URL and provider Delivery URL. */
async function setup(
  o: {
    emu?: EmulatorOptions;
    env?: Record<string, string>;
    module?: WebhooksModuleOptions;
    register?: (w: WebhooksService) => void;
  } = {},
): Promise<Setup> {
  emu = await createEmulator({ seed: 7, webhookRetryIntervalMs: 300, webhookRetryJitterMs: 0, ...o.emu });
  await emu.listen();
  const handlers: BridgeModule = { name: 'test-handlers', init: (ctx) => o.register?.(webhooksService(ctx)) };
  bridge = await startTestBridge({
    modules: [
      webhooksModule({
        extraEd25519Keys: [emu.keys.ed25519PublicKeyPem],
        extraRsaKeys: [emu.keys.rsaPublicKeyPem],
        ...o.module,
      }),
      handlers,
    ],
    env: { ADMIN_API_KEY: ADMIN, ...o.env },
  });
  const c = emu.control;
  const ag = c.createAgency({ name: 'Agency' });
  c.createUser({ companyId: ag.id, type: 'agency' });
  const loc = c.createLocation({ companyId: ag.id, name: 'Store', phone: '+15550000001' });
  const app = c.createApp({
    name: 'ghl-bridge',
    redirectUri: `${bridge.url}/oauth/callback`,
    scopes: SCOPES,
    webhookUrl: `${bridge.url}/webhooks/ghl`,
    providerDeliveryUrl: `${bridge.url}/webhooks/ghl/provider`,
    conversationProvider: { type: 'SMS', isCustom: true },
  });
  c.install({ clientId: app.clientId, locationId: loc.id });
  await emu.idle();
  return {
    emu,
    b: bridge,
    clientId: app.clientId,
    companyId: ag.id,
    locationId: loc.id,
    providerId: app.conversationProviderId!,
  };
}

const delivered = (e: Emulator, type: string) => e.control.listDeliveries({ eventType: type });
const contactRows = async (b: TestBridge) => (await events(b.ctx.db)).filter((r) => r.type === 'ContactCreate');

describe('webhooks from the GHL emulator', () => {
  it('accepts INSTALL, ContactCreate and ProviderOutboundMessage signed by the emulator and dispatches each once', async () => {
    const seen: StoredEvent[] = [];
    const s = await setup({
      // Real GHL does not sign Delivery-URL calls (observed #224); the signed path still has to work.
      emu: { signProviderDeliveries: true },
      register: (w) => {
        w.on('INSTALL', async (e) => void seen.push(e), { requireKnownLocation: false });
        w.on('ContactCreate', async (e) => void seen.push(e));
        w.on('ProviderOutboundMessage', async (e) => void seen.push(e));
      },
    });
    const contact = s.emu.control.createContact({ locationId: s.locationId, firstName: 'Ann', phone: '+15551234567' });
    s.emu.control.sendMessageAsUser({
      locationId: s.locationId,
      contactId: contact.id,
      type: 'SMS',
      message: 'hello',
      conversationProviderId: s.providerId,
    });
    await s.emu.idle();
    for (const d of s.emu.control.listDeliveries())
      expect(
        d.attempts.map((a) => a.status),
        d.eventType,
      ).toEqual([200]);
    await waitFor(() => seen.length === 3, { what: 'three handler calls' });
    expect(seen.map((e) => e.type).sort()).toEqual(['ContactCreate', 'INSTALL', 'ProviderOutboundMessage']);
    const msg = seen.find((e) => e.type === 'ProviderOutboundMessage')!;
    expect(msg.payload).toMatchObject({ type: 'SMS', contactId: contact.id, message: 'hello' });
    const rows = await events(s.b.ctx.db);
    // OutboundMessage also reaches the app URL; nobody handles it here, so it is stored as skipped.
    expect(rows.find((r) => r.type === 'OutboundMessage')?.status).toBe('skipped');
    expect(rows.filter((r) => r.type !== 'OutboundMessage').every((r) => r.signature === 'ed25519')).toBe(true);
  });

  it('legacy RSA-only deliveries are accepted while enabled and refused (401) once disabled', async () => {
    let s = await setup({
      emu: { signWithEd25519: false, signWithRsa: true },
      env: { WEBHOOK_ACCEPT_LEGACY_RSA: 'true' },
    });
    s.emu.control.createContact({ locationId: s.locationId, firstName: 'A' });
    await s.emu.idle();
    expect(delivered(s.emu, 'ContactCreate')[0]?.attempts[0]?.status).toBe(200);
    expect((await contactRows(s.b))[0]?.signature).toBe('rsa');
    await bridge!.close();
    await emu!.close();
    bridge = undefined;
    s = await setup({
      emu: { signWithEd25519: false, signWithRsa: true },
      env: { WEBHOOK_ACCEPT_LEGACY_RSA: 'false' },
    });
    s.emu.control.createContact({ locationId: s.locationId, firstName: 'B' });
    await s.emu.idle();
    expect(delivered(s.emu, 'ContactCreate')[0]?.attempts[0]?.status).toBe(401);
    // INSTALL was refused the same way.
    expect(await countEvents(s.b.ctx.db)).toBe(0);
  });

  it('a redelivered webhook (same signed bytes) is processed once', async () => {
    let calls = 0;
    const s = await setup({ register: (w) => w.on('ContactCreate', async () => void calls++) });
    s.emu.control.createContact({ locationId: s.locationId, firstName: 'A' });
    await s.emu.idle();
    const d = delivered(s.emu, 'ContactCreate')[0]!;
    const again = await Promise.all([post(d.url, d.body, d.headers), post(d.url, d.body, d.headers)]);
    expect(again.map((r) => [r.status, JSON.parse(r.body).duplicate])).toEqual([
      [200, true],
      [200, true],
    ]);
    await waitFor(async () => (await contactRows(s.b))[0]?.status === 'dispatched', { what: 'dispatched' });
    expect(calls).toBe(1);
    expect(await contactRows(s.b)).toHaveLength(1);
  });

  it('rejects a delivery whose timestamp is older than the window', async () => {
    // The bridge's clock runs 10 minutes ahead, so the emulator's fresh timestamp is stale to it.
    const s = await setup({ module: { now: () => Date.now() + 600_000 }, env: { WEBHOOK_TOLERANCE_SEC: '300' } });
    s.emu.control.createContact({ locationId: s.locationId, firstName: 'A' });
    await s.emu.idle();
    expect(delivered(s.emu, 'ContactCreate')[0]?.attempts[0]?.status).toBe(401);
    expect(await countEvents(s.b.ctx.db)).toBe(0);
  });

  it("database unavailable → 429; the emulator's retry later succeeds and nothing is lost", async () => {
    let calls = 0;
    let proxy: TcpProxy | undefined;
    let env: Record<string, string> = { WEBHOOK_PERSIST_TIMEOUT_MS: '500' };
    if (STORE === 'postgres') {
      // PostgreSQL: the bridge reaches the server through a TCP proxy we can cut, so the pg
      // driver sees exactly what a stopped server produces (connections reset, then refused).
      const u = new URL(PG_URL);
      proxy = new TcpProxy(u.hostname, Number(u.port || 5432));
      const port = await proxy.start();
      u.port = String(port);
      env = { ...env, DATABASE_URL: u.toString() };
      const p = proxy;
      cleanups.push(() => p.stop());
    }
    const s = await setup({ env, register: (w) => w.on('ContactCreate', async () => void calls++) });

    let release: (() => void) | undefined;
    let held: Promise<unknown> | undefined;
    if (proxy) await proxy.stop();
    else {
      // PGlite is embedded (no server to stop): a transaction holding an exclusive lock on the
      // table stalls every write the way a hung database does, and intake must answer 429
      // within WEBHOOK_PERSIST_TIMEOUT_MS instead of letting GHL's delivery time out.
      const gate = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      held = s.b.ctx.db.transaction().execute(async (trx) => {
        await sql`lock table webhook_events in access exclusive mode`.execute(trx);
        locked();
        await gate;
      });
      await isLocked;
      cleanups.push(async () => {
        release?.();
        await held;
      });
    }

    s.emu.control.createContact({ locationId: s.locationId, firstName: 'A' });
    const first = await waitFor(() => delivered(s.emu, 'ContactCreate')[0]?.attempts[0], { what: 'first attempt' });
    expect(first.status).toBe(429);
    // Bring the database back before the emulator retries (300 ms later).
    if (proxy) await proxy.start();
    else {
      release!();
      await held;
    }
    await s.emu.idle();
    const d = delivered(s.emu, 'ContactCreate')[0]!;
    expect(d.state).toBe('delivered');
    expect(d.attempts.at(-1)?.status).toBe(200);
    await waitFor(async () => (await contactRows(s.b))[0]?.status === 'dispatched', {
      what: 'dispatched',
      timeoutMs: 30_000,
    });
    expect(await contactRows(s.b)).toHaveLength(1);
    expect(calls).toBe(1);
    const m = await s.b.ctx.metrics.registry.getSingleMetric('ghl_bridge_webhook_throttled_total')?.get();
    expect(m?.values.reduce((a, v) => a + v.value, 0)).toBeGreaterThanOrEqual(1);
  });

  it('a 429, then a redelivery 10 minutes later with its original timestamp (emulator clock) → accepted once, with the default window', async () => {
    let calls = 0;
    // The bridge reads the emulator's clock, so advancing it is the 10 minutes GHL waits before redelivering.
    const s = await setup({
      env: { WEBHOOK_PERSIST_TIMEOUT_MS: '500' },
      module: { now: () => emu!.clock.now() },
      register: (w) => w.on('ContactCreate', async () => void calls++),
    });
    // A transaction holding an exclusive lock on the table stalls every intake write (both stores): intake answers 429.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const held = s.b.ctx.db.transaction().execute(async (trx) => {
      await sql`lock table webhook_events in access exclusive mode`.execute(trx);
      locked();
      await gate;
    });
    cleanups.push(async () => {
      release();
      await held;
    });
    await isLocked;

    s.emu.control.createContact({ locationId: s.locationId, firstName: 'A' });
    const first = await waitFor(() => delivered(s.emu, 'ContactCreate')[0]?.attempts[0], { what: 'first attempt' });
    expect(first.status).toBe(429);
    s.emu.clock.advance(10 * 60_000);
    release();
    await held;
    await s.emu.idle();
    const d = delivered(s.emu, 'ContactCreate')[0]!;
    // The redelivery carried the original timestamp, 10 minutes old by now.
    expect(s.emu.clock.now() - new Date(JSON.parse(d.body).timestamp as string).getTime()).toBeGreaterThanOrEqual(
      10 * 60_000,
    );
    expect(d.state).toBe('delivered');
    expect(d.attempts.at(-1)?.status).toBe(200);
    await waitFor(async () => (await contactRows(s.b))[0]?.status === 'dispatched', {
      what: 'dispatched',
      timeoutMs: 30_000,
    });
    // A further copy is a duplicate, not processed again.
    const again = await post(d.url, d.body, d.headers);
    expect([again.status, JSON.parse(again.body).duplicate]).toEqual([200, true]);
    expect(await contactRows(s.b)).toHaveLength(1);
    expect(calls).toBe(1);
    // Past GHL's retry horizon and the window, a captured delivery is refused as stale again.
    s.emu.clock.advance(2 * 3600_000);
    expect((await post(d.url, d.body, d.headers)).status).toBe(401);
  });

  it('a throwing handler is retried, goes dead, and a replay succeeds after the fix', async () => {
    let broken = true;
    let ok = 0;
    const s = await setup({
      module: { maxAttempts: 2, backoff: { baseMs: 50, maxMs: 100 } },
      register: (w) =>
        w.on('ContactCreate', async () => {
          if (broken) throw new Error('downstream 503');
          ok++;
        }),
    });
    s.emu.control.createContact({ locationId: s.locationId, firstName: 'A' });
    await s.emu.idle();
    const dead = await waitFor(async () => (await events(s.b.ctx.db)).find((e) => e.status === 'dead'), {
      what: 'dead',
    });
    expect(dead.reason).toMatch(/attempt 2\/2.*downstream 503/);
    broken = false;
    const res = await fetch(`${s.b.url}/admin/webhooks/replay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'ContactCreate' }),
    });
    expect(await res.json()).toMatchObject({ replayed: [dead.id] });
    await waitFor(async () => (await contactRows(s.b))[0]?.status === 'dispatched', {
      what: 'dispatched after replay',
    });
    expect(ok).toBe(1);
  });

  it('SIGKILL right after the 200: the event is processed after restart', async () => {
    const store = await openTestStore({ onDisk: true });
    // PGlite allows one process per data directory: hand it over to the child.
    if (STORE === 'pglite') await store.close();
    else cleanups.push(() => store.close());
    emu = await createEmulator({ seed: 9 });
    await emu.listen();
    const env = {
      ...process.env,
      ...store.env,
      LOG_LEVEL: 'silent',
      HOST: '127.0.0.1',
      PORT: '0',
      JOB_POLL_MS: '50',
      ADMIN_API_KEY: ADMIN,
      WEBHOOK_EXTRA_ED25519_KEYS: emu.keys.ed25519PublicKeyPem.replace(/\n/g, '\\n'),
    };
    const spawnChild = async (extra: Record<string, string>): Promise<{ child: ChildProcess; url: string }> => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/webhooks/fixtures/bridge-child.ts'], {
        env: { ...env, ...extra },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      cleanups.push(async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await new Promise((r) => child.once('exit', r));
        }
      });
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
      });
      return { child, url: (JSON.parse(line) as { url: string }).url };
    };

    // First run without workers: whatever happens after the 200, only the store can save the event.
    const first = await spawnChild({ WORKER_CONCURRENCY: '0' });
    const c = emu.control;
    const ag = c.createAgency({ name: 'Agency' });
    const loc = c.createLocation({ companyId: ag.id, name: 'Store' });
    const app = c.createApp({
      name: 'b',
      redirectUri: `${first.url}/cb`,
      scopes: SCOPES,
      webhookUrl: `${first.url}/webhooks/ghl`,
    });
    c.install({ clientId: app.clientId, locationId: loc.id });
    await emu.idle();
    c.createContact({ locationId: loc.id, firstName: 'Crash' });
    await emu.idle();
    expect(delivered(emu, 'ContactCreate')[0]?.attempts[0]?.status).toBe(200);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    const second = await spawnChild({ WORKER_CONCURRENCY: '2' });
    const row = await waitFor(
      async () => {
        const r = await fetch(`${second.url}/admin/webhooks/events?type=ContactCreate`, {
          headers: { authorization: `Bearer ${ADMIN}` },
        });
        const body = (await r.json()) as { events: Array<{ status: string }> };
        return body.events.find((e) => e.status === 'dispatched');
      },
      { what: 'ContactCreate dispatched after restart', timeoutMs: 30_000 },
    );
    expect(row.status).toBe('dispatched');
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  });
});
