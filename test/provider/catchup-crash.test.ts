import { afterEach, describe, expect, it } from 'vitest';
import { spawnTs, type Child } from '../fixtures/child.js';
import { startFakeCast, type FakeCast } from '../fakes/cast-server.js';
import { openTestStore, STORE, waitFor, type TestStore } from '../helpers/store.js';
import { adminPut, CAST_INBOUND_KEY, CAST_KEY, finalStatus, install, startWorld, type World } from './harness.js';

/**
 * Issue 12: SIGKILL at random points during a relay, with restarts. Messages GHL tried to deliver while the bridge was
 * dead are lost by GHL (no retry on connection refused); catch-up at each start finds them. Every message ends
 * delivered, or failed with a reason; none stays pending; none is sent twice (Cast counts processed sends per
 * idempotency key = GHL messageId).
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

const TOTAL = 120;
const KILLS = 3;

describe('SIGKILL at random points during a relay, with restarts and catch-up', () => {
  it(`${TOTAL} messages, ${KILLS} kills: every message delivered or failed with a reason, none pending, none sent twice`, async () => {
    w = await startWorld({ locations: 2 });
    cast = await startFakeCast({ ratePerSecond: 1000 });
    store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close();
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
      PROVIDER_CATCHUP_SETTLE_MS: '0',
      PROVIDER_CATCHUP_INTERVAL_MS: '3000',
      WEBHOOK_EXTRA_ED25519_KEYS: w.emu.keys.ed25519PublicKeyPem,
    };
    let bridge = await spawnBridge(env);
    w.emu.control.updateApp(w.clientId, { providerDeliveryUrl: `${bridge.url}/webhooks/ghl/provider` });
    const contacts = [];
    for (const [i, loc] of w.locationIds.entries()) {
      await install(bridge.url, loc);
      expect(
        (
          await adminPut(bridge.url, loc, {
            config: { kind: 'cast', apiKey: CAST_KEY, baseUrl: cast.url, inboundApiKey: CAST_INBOUND_KEY },
            defaultRegion: 'PH',
          })
        ).status,
      ).toBe(200);
      for (let k = 0; k < 3; k++)
        contacts.push(w.emu.control.createContact({ locationId: loc, phone: `+6391811${i}${k}222` }));
    }
    // Kill points: random message indexes (seeded by Math.random; the outcome must hold for any).
    const killAt = new Set<number>();
    while (killAt.size < KILLS) killAt.add(10 + Math.floor(Math.random() * (TOTAL - 20)));
    const ids: string[] = [];
    for (let i = 0; i < TOTAL; i++) {
      const c = contacts[i % contacts.length]!;
      ids.push(
        w.emu.control.sendMessageAsUser({
          locationId: c.locationId,
          contactId: c.id,
          type: 'SMS',
          message: `m${i}`,
          conversationProviderId: w.providerId,
        }).id,
      );
      if (killAt.has(i)) {
        bridge.child.proc.kill('SIGKILL');
        await bridge.child.exited;
        // While it is down, a few more messages meet the closed port (GHL does not retry those).
        for (let j = 0; j < 5 && i + 1 < TOTAL; j++, i++) {
          const d = contacts[(i + 1) % contacts.length]!;
          ids.push(
            w.emu.control.sendMessageAsUser({
              locationId: d.locationId,
              contactId: d.id,
              type: 'SMS',
              message: `down ${i + 1}`,
              conversationProviderId: w.providerId,
            }).id,
          );
        }
        bridge = await spawnBridge(env);
        w.emu.control.updateApp(w.clientId, { providerDeliveryUrl: `${bridge.url}/webhooks/ghl/provider` });
      } else if (i % 10 === 0) {
        await new Promise((r) => setImmediate(r)); // let deliveries interleave with the sends
      }
    }
    const c = cast;
    // Cast leaves messages pending until its DLR: mark each processed send delivered as it appears.
    const marked = new Set<string>();
    await waitFor(
      () => {
        for (const s of c.sends) {
          if (marked.has(s.messageId)) continue;
          c.setStatus(s.messageId, 'delivered');
          marked.add(s.messageId);
        }
        return ids.every((id) => ['delivered', 'failed'].includes(finalStatus(w!.emu, id) ?? ''));
      },
      { what: 'every message delivered or failed', timeoutMs: 120_000, intervalMs: 100 },
    );
    const lost = ids.filter(
      (id) =>
        w!.emu.control.listDeliveries({ kind: 'provider' }).find((d) => d.payload.messageId === id)?.state === 'failed',
    );
    const perKey = new Map<string, number>();
    for (const s of c.sends) perKey.set(s.idempotencyKey ?? '', (perKey.get(s.idempotencyKey ?? '') ?? 0) + 1);
    for (const id of ids) {
      const m = w.emu.control.getMessage(id)!;
      if (m.status === 'failed') expect(m.error?.message, id).toBeTruthy();
      else expect(perKey.get(id), id).toBe(1);
    }
    expect([...perKey.values()].every((n) => n === 1)).toBe(true);
    expect(ids.filter((id) => finalStatus(w!.emu, id) === 'pending')).toEqual([]);
    expect(lost.length).toBeGreaterThanOrEqual(KILLS); // GHL really lost some deliveries; catch-up recovered them
  }, 240_000);
});
