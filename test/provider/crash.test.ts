import { afterEach, describe, expect, it } from 'vitest';
import { spawnTs, type Child } from '../fixtures/child.js';
import { startFakeCast, type FakeCast } from '../fakes/cast-server.js';
import { openDatabase } from '../../src/infra/db/index.js';
import { openTestStore, STORE, waitFor, type TestStore } from '../helpers/store.js';
import { adminPut, CAST_INBOUND_KEY, CAST_KEY, finalStatus, install, startWorld, type World } from './harness.js';

/**
 * SIGKILL at each step of the outbound path. The bridge runs in a child process on a durable store; after the kill a
 * second process takes over (job leases of 1 s expire). Whatever the crash point: exactly one SMS at the (fake) Cast
 * gateway and a final status in GHL.
 */

let w: World | undefined;
let cast: FakeCast | undefined;
let store: TestStore | undefined;
const children: Child[] = [];
afterEach(async () => {
  for (const c of children.splice(0))
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await w?.emu.close();
  await cast?.close();
  if (STORE === 'postgres') await store?.close();
  w = cast = store = undefined;
});

async function spawnBridge(env: Record<string, string>): Promise<{ child: Child; url: string }> {
  const child = spawnTs('test/provider/fixtures/bridge-child.ts', [], env);
  children.push(child);
  const line = await child.waitForLine(/"url"/, 60_000);
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

async function kill(c: Child): Promise<void> {
  c.proc.kill('SIGKILL');
  await c.exited;
}

type CrashPoint = 'webhook-acknowledged' | 'during-send' | 'after-send-before-record' | 'during-status';

async function scenario(point: CrashPoint): Promise<void> {
  w = await startWorld();
  cast = await startFakeCast();
  store = await openTestStore({ onDisk: true });
  if (STORE === 'pglite') await store.close(); // the child owns the data directory
  const env = {
    ...w.env,
    ...store.env,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    JOB_LEASE_MS: '1000',
    JOB_POLL_MS: '50',
    PROVIDER_RETRY_BASE_MS: '50',
    PROVIDER_POLL_BASE_MS: '100',
    WEBHOOK_EXTRA_ED25519_KEYS: w.emu.keys.ed25519PublicKeyPem,
  };
  const loc = w.locationIds[0]!;
  const first = await spawnBridge(env);
  w.emu.control.updateApp(w.clientId, { providerDeliveryUrl: `${first.url}/webhooks/ghl/provider` });
  await install(first.url, loc);
  const put = await adminPut(first.url, loc, {
    config: { kind: 'cast', apiKey: CAST_KEY, baseUrl: cast.url, inboundApiKey: CAST_INBOUND_KEY },
    defaultRegion: 'PH',
  });
  expect(put.status).toBe(200);
  const contact = w.emu.control.createContact({ locationId: loc, firstName: 'Maria', phone: '+639181112222' });

  if (point === 'during-send') cast.injectFault('timeout', 1);
  if (point === 'after-send-before-record') cast.injectFault('timeout', 1, { afterProcessing: true });
  if (point === 'during-status')
    w.emu.control.injectFault({
      pathPattern: '/conversations/messages/*/status',
      method: 'PUT',
      times: 1,
      kind: 'timeout',
    });

  const m = w.emu.control.sendMessageAsUser({
    locationId: loc,
    contactId: contact.id,
    type: 'SMS',
    message: `crash ${point}`,
    conversationProviderId: w.providerId,
  });
  const c = cast;
  const emu = w.emu;
  switch (point) {
    case 'webhook-acknowledged':
      await waitFor(
        () =>
          emu.control
            .listDeliveries({ eventType: 'ProviderOutboundMessage' })
            .some((d) => d.attempts.some((a) => a.status === 200)),
        { what: 'webhook 200' },
      );
      break;
    case 'during-send':
      await waitFor(() => c.requests.some((r) => r.path.includes('/sms/send') && r.status === 0), {
        what: 'send request hanging',
      });
      expect(c.sends).toHaveLength(0);
      break;
    case 'after-send-before-record':
      await waitFor(() => c.sends.length === 1, { what: 'SMS processed, answer lost' });
      break;
    case 'during-status':
      await waitFor(() => emu.control.listFaults().length === 0, { what: 'status call hanging' });
      expect(c.sends).toHaveLength(1);
      break;
  }
  await kill(first.child);

  await spawnBridge(env);
  await waitFor(() => c.sends.length >= 1, { what: 'the SMS', timeoutMs: 30_000 });
  c.setStatus(c.sends[0]!.messageId, 'delivered');
  await waitFor(() => finalStatus(emu, m.id) === 'delivered', { what: 'final status delivered', timeoutMs: 30_000 });
  expect(c.sends).toHaveLength(1);
  expect(c.sends[0]!.idempotencyKey).toBe(m.id);
  if (point === 'after-send-before-record') expect(c.requests.some((r) => r.replay)).toBe(true);
}

describe('SIGKILL on the outbound path → exactly one send and a final status', () => {
  it.each<CrashPoint>(['webhook-acknowledged', 'during-send', 'after-send-before-record', 'during-status'])(
    'crash: %s',
    async (point) => {
      await scenario(point);
    },
    90_000,
  );
});

describe('SIGKILL between acceptance and confirmation of an unsigned delivery', () => {
  it.each(['lookup', 'event'] as const)(
    'after restart it is confirmed (%s) and sent once',
    async (via) => {
      w = await startWorld({ emulator: { signProviderDeliveries: false } });
      cast = await startFakeCast();
      store = await openTestStore({ onDisk: true });
      if (STORE === 'pglite') await store.close();
      const token = 'crashTestToken_0123456789abcdefghijklmnop';
      const env = {
        ...w.env,
        ...store.env,
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: 'silent',
        JOB_LEASE_MS: '1000',
        JOB_POLL_MS: '50',
        PROVIDER_POLL_BASE_MS: '100',
        WEBHOOK_EXTRA_ED25519_KEYS: w.emu.keys.ed25519PublicKeyPem,
        PROVIDER_DELIVERY_TOKENS: token,
        // Lookup: due 3 s after the delivery, well after the kill. Event: the event only reaches the second process.
        PROVIDER_CONFIRMATION: via === 'lookup' ? 'event_then_lookup' : 'event',
        PROVIDER_CONFIRMATION_WAIT_MS: '3000',
      };
      const loc = w.locationIds[0]!;
      const first = await spawnBridge(env);
      // The app webhook URL leads nowhere: the OutboundMessage event does not reach the first process.
      w.emu.control.updateApp(w.clientId, {
        providerDeliveryUrl: `${first.url}/webhooks/ghl/provider/${token}`,
        webhookUrl: 'http://127.0.0.1:9/unreachable',
      });
      await install(first.url, loc);
      expect(
        (
          await adminPut(first.url, loc, {
            config: { kind: 'cast', apiKey: CAST_KEY, baseUrl: cast.url, inboundApiKey: CAST_INBOUND_KEY },
            defaultRegion: 'PH',
          })
        ).status,
      ).toBe(200);
      const contact = w.emu.control.createContact({ locationId: loc, firstName: 'Maria', phone: '+639181112222' });
      const m = w.emu.control.sendMessageAsUser({
        locationId: loc,
        contactId: contact.id,
        type: 'SMS',
        message: 'crash before confirmation',
        conversationProviderId: w.providerId,
      });
      const emu = w.emu;
      await waitFor(
        () =>
          emu.control
            .listDeliveries({ eventType: 'ProviderOutboundMessage' })
            .some((d) => d.attempts.some((a) => a.status === 200)),
        { what: 'delivery accepted' },
      );
      await kill(first.child);
      expect(cast.sends).toHaveLength(0);
      expect(
        emu.control.listApiCalls({ method: 'GET', pathPattern: '^/conversations/messages/(?!export$)[^/]+$' }),
      ).toHaveLength(0);

      const second = await spawnBridge(env);
      if (via === 'event') {
        // GHL's signed OutboundMessage event for the same message reaches the restarted bridge.
        const ev = emu.control
          .listDeliveries({ eventType: 'OutboundMessage' })
          .find((d) => (d.payload as { messageId?: string }).messageId === m.id)!;
        expect(
          (await fetch(`${second.url}/webhooks/ghl`, { method: 'POST', headers: ev.headers, body: ev.body })).status,
        ).toBe(200);
      }
      const c = cast;
      await waitFor(() => c.sends.length >= 1, { what: 'the SMS', timeoutMs: 30_000 });
      c.setStatus(c.sends[0]!.messageId, 'delivered');
      await waitFor(() => finalStatus(emu, m.id) === 'delivered', {
        what: 'final status delivered',
        timeoutMs: 30_000,
      });
      expect(c.sends).toHaveLength(1);
      expect(c.sends[0]!.idempotencyKey).toBe(m.id);
      const lookups = emu.control.listApiCalls({
        method: 'GET',
        pathPattern: '^/conversations/messages/(?!export$)[^/]+$',
      }).length;
      if (via === 'event') expect(lookups).toBe(0);
      else {
        // Confirmed once: by the lookup, or first by the restarted bridge's start-up catch-up, whose authenticated
        // export read of the same message confirms it (catchup.ts) and makes the lookup unnecessary.
        await kill(second.child);
        const db =
          STORE === 'postgres'
            ? store!
            : await openDatabase({ schema: store!.env.DATABASE_SCHEMA!, dataDir: store!.env.DATA_DIR! });
        const row = await db.db
          .selectFrom('provider_outbound')
          .select('confirmed_by')
          .where('message_id', '=', m.id)
          .executeTakeFirstOrThrow();
        if (STORE === 'pglite') await db.close();
        expect(['lookup', 'catchup']).toContain(row.confirmed_by);
        expect(lookups).toBe(row.confirmed_by === 'lookup' ? 1 : 0);
      }
    },
    90_000,
  );
});
