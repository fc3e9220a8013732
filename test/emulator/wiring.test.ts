import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeySpec } from '../../src/infra/crypto/aes.js';
import { spawnTs, type Child } from '../fixtures/child.js';
import { freePort } from '../helpers/net.js';
import { dropSchema, freshSchema, PG_URL, STORE, tempDataDir, waitFor } from '../helpers/store.js';

const ADMIN = 'admin-key-for-wiring-tests-0123456789';
const children: Child[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.proc.kill('SIGINT');
    await Promise.race([c.exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
    c.proc.kill('SIGKILL');
  }
  for (const c of cleanups.splice(0)) await c();
});

const field = (out: string, label: string) => new RegExp(`${label}\\s+(\\S+)`).exec(out)?.[1] ?? '';

describe('standalone emulator wired to ghl-bridge as documented (two real CLI processes)', () => {
  it('ghl-bridge emulator --bridge-url … and ghl-bridge start: a message sent by a GHL user is delivered', async () => {
    const [emuPort, bridgePort] = [await freePort(), await freePort()];
    const bridgeUrl = `http://127.0.0.1:${bridgePort}`;
    // Delivery-URL calls are unsigned (as real GHL's): the bridge takes them on the URL with its token.
    const token = randomBytes(24).toString('base64url');
    const emu = spawnTs(
      'src/cli/main.ts',
      [
        'emulator',
        '--port',
        String(emuPort),
        '--seed',
        '5',
        '--bridge-url',
        bridgeUrl,
        '--delivery-token',
        token,
        '--access-token-ttl-sec',
        '120',
        '--no-rate-limit',
      ],
      {},
    );
    children.push(emu);
    await emu.waitForLine(/END PUBLIC KEY/, 60_000);
    const out = emu.output();
    const base = field(out, 'listening on');
    expect(out).toMatch(/access token TTL\s+120 s/);
    expect(out).toMatch(/rate limit\s+lifted/);
    const keys = (await (await fetch(`${base}/_emulator/keys`)).json()) as { ed25519PublicKeyPem: string };

    let store: Record<string, string> = { DATA_DIR: tempDataDir() };
    if (STORE === 'postgres') {
      const schema = freshSchema();
      store = { DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema };
      cleanups.push(() => dropSchema(schema));
    }
    const bridge = spawnTs('src/cli/main.ts', ['start'], {
      ...store,
      SANDBOX: 'false',
      PORT: String(bridgePort),
      HOST: '127.0.0.1',
      PUBLIC_URL: bridgeUrl,
      GHL_CLIENT_ID: field(out, 'app clientId'),
      GHL_CLIENT_SECRET: field(out, 'app clientSecret'),
      GHL_CONVERSATION_PROVIDER_ID: field(out, 'conversationProviderId'),
      GHL_API_BASE: base,
      GHL_MARKETPLACE_BASE: base,
      TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
      ADMIN_API_KEY: ADMIN,
      WEBHOOK_EXTRA_ED25519_KEYS: keys.ed25519PublicKeyPem.replace(/\n/g, '\\n'),
      GHL_RECONCILE_INTERVAL_MIN: '0',
      PROVIDER_DELIVERY_TOKENS: token,
    });
    children.push(bridge);
    await bridge.waitForLine(/Stop with Ctrl-C/, 60_000);

    // Install through the real OAuth flow: bridge → emulator's chooselocation → bridge callback.
    const locationId = field(out, 'location');
    const r1 = await fetch(`${bridgeUrl}/oauth/install`, { redirect: 'manual' });
    const choose = new URL(r1.headers.get('location')!);
    choose.searchParams.set('locationId', locationId);
    const r2 = await fetch(choose, { redirect: 'manual' });
    expect(r2.status).toBe(302);
    const done = await fetch(r2.headers.get('location')!, { redirect: 'manual' });
    expect(done.status).toBe(200);
    const ch = await fetch(`${bridgeUrl}/admin/channels/${locationId}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ config: { kind: 'loopback' } }),
    });
    expect(ch.status).toBe(200);

    // A GHL user sends an SMS: the emulator delivers it to the URL it was wired with, the bridge relays it.
    const sent = await fetch(`${base}/_emulator/send-message`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        locationId,
        contactId: field(out, 'contact'),
        type: 'SMS',
        message: 'hello through the wire',
      }),
    });
    expect(sent.status).toBe(201);
    const { id } = (await sent.json()) as { id: string };
    const msg = await waitFor(
      async () => {
        const m = (await (await fetch(`${base}/_emulator/messages/${id}`)).json()) as { status?: string };
        return m.status === 'delivered' ? m : undefined;
      },
      { what: 'message delivered', timeoutMs: 30_000 },
    );
    expect(msg.status).toBe('delivered');
    const deliveries = (await (await fetch(`${base}/_emulator/deliveries`)).json()) as Array<{
      url: string;
      state: string;
      kind: string;
    }>;
    const provider = deliveries.filter((d) => d.url.startsWith(`${bridgeUrl}/webhooks/ghl/provider`));
    expect(provider.length).toBeGreaterThanOrEqual(1);
    expect(provider.every((d) => d.state === 'delivered')).toBe(true);
  }, 120_000);
});
