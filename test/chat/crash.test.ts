import { afterEach, describe, expect, it } from 'vitest';
import { spawnTs, type Child } from '../fixtures/child.js';
import { startFakeReceiver, type FakeReceiver } from '../fakes/http-receiver.js';
import { openTestStore, STORE, waitFor, type TestStore } from '../helpers/store.js';
import { ADMIN, adminPut, install, startWorld, type World } from '../provider/harness.js';
import { CHAT_SCOPES, SIGNING, chatMessage } from './harness.js';

/**
 * SIGKILL at seeded random points of a two-way chat storm (CHAT_CRASH_SEED replays a run). The chat product re-pushes
 * whatever did not get its 202 (as a real client does); GHL deliveries that met a dead bridge are lost (GHL does not
 * retry them) and must be repaired. Afterwards: every pushed message exactly once in GHL, every GHL reply delivered to
 * the chat product (duplicates only as retries with the same webhook-id, which the contract tells receivers to
 * dedupe on), nothing the bridge posted came back.
 */

let w: World | undefined;
let rx: FakeReceiver | undefined;
let store: TestStore | undefined;
const children: Child[] = [];
afterEach(async () => {
  for (const c of children.splice(0))
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await w?.emu.close();
  await rx?.close();
  if (STORE === 'postgres') await store?.close();
  w = rx = store = undefined;
});

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

describe('SIGKILL during a two-way chat storm', () => {
  it('nothing lost, nothing doubled', async () => {
    const seed = Number(process.env.CHAT_CRASH_SEED ?? Date.now() % 100_000);
    const rand = rng(seed);
    const N = Number(process.env.CHAT_CRASH_MESSAGES ?? 40);
    const KILLS = Number(process.env.CHAT_CRASH_KILLS ?? 2);
    w = await startWorld();
    w.emu.control.updateApp(w.clientId, { scopes: CHAT_SCOPES });
    rx = await startFakeReceiver(SIGNING);
    store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close(); // the child owns the data directory
    const env = {
      ...w.env,
      ...store.env,
      GHL_SCOPES: CHAT_SCOPES,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'silent',
      JOB_LEASE_MS: '1000',
      JOB_POLL_MS: '50',
      PROVIDER_RETRY_BASE_MS: '50',
      PROVIDER_CATCHUP_INTERVAL_MS: '0',
      PROVIDER_CATCHUP_SETTLE_MS: '0',
      CHAT_RECONCILE_INTERVAL_MS: '0',
      WEBHOOK_EXTRA_ED25519_KEYS: w.emu.keys.ed25519PublicKeyPem,
    };
    const loc = w.locationIds[0]!;
    const spawn = async () => {
      const child = spawnTs('test/chat/fixtures/bridge-child.ts', [], env);
      children.push(child);
      const line = await child.waitForLine(/"url"/, 60_000);
      const url = (JSON.parse(line) as { url: string }).url;
      w!.emu.control.updateApp(w!.clientId, {
        providerDeliveryUrl: `${url}/webhooks/ghl/provider`,
        webhookUrl: `${url}/webhooks/ghl`,
      });
      return { child, url };
    };
    let cur = await spawn();
    await install(cur.url, loc);
    expect(
      (await adminPut(cur.url, loc, { config: { kind: 'http', url: rx.url, signingSecret: SIGNING } })).status,
    ).toBe(200);
    const clients = Array.from({ length: 3 }, (_, i) => ({ externalId: `k-${i}`, phone: `+1415555030${i}` }));
    const push = async (i: number): Promise<boolean> => {
      const k = i % clients.length;
      try {
        const r = await fetch(`${cur.url}/v1/locations/${loc}/chat/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            conversationId: `t-${k}`,
            client: clients[k],
            message: chatMessage(`x-${i}`, { direction: i % 2 ? 'outbound' : 'inbound' }),
          }),
        });
        return r.status === 202;
      } catch {
        return false; // the bridge died under the request: the chat product retries it
      }
    };
    for (let i = 0; i < clients.length; i++) expect(await push(i)).toBe(true);
    const emu = w.emu;
    await waitFor(() => emu.control.listContacts({ locationId: loc }).length === clients.length, {
      what: 'contacts',
      timeoutMs: 30_000,
    });
    await waitFor(() => emu.control.listMessages({ locationId: loc }).length >= clients.length, { what: 'seeds' });
    const contactOf = new Map(emu.control.listContacts({ locationId: loc }).map((c) => [c.phone, c.id]));
    const killAt = new Set(
      Array.from({ length: KILLS }, () => clients.length + Math.floor(rand() * (N - clients.length))),
    );
    const unsent: number[] = [];
    const replyIds: string[] = [];
    const providerId = w.providerId;
    // A GHL user replies to the client of step i.
    const reply = (i: number) =>
      replyIds.push(
        emu.control.sendMessageAsUser({
          locationId: loc,
          contactId: contactOf.get(clients[i % clients.length]!.phone)!,
          type: 'SMS',
          message: `reply ${i}`,
          conversationProviderId: providerId,
        }).id,
      );
    for (let i = clients.length; i < N; i++) {
      if (killAt.has(i)) {
        // Mid-flight: pushes and replies of this step race the kill.
        const racing = push(i);
        reply(i);
        cur.child.proc.kill('SIGKILL');
        await cur.child.exited;
        if (!(await racing)) unsent.push(i);
        cur = await spawn();
        continue;
      }
      if (!(await push(i))) unsent.push(i);
      reply(i);
    }
    // The chat product retries what got no 202 (a duplicate of a stored one is a no-op).
    for (const i of unsent) await waitFor(() => push(i), { what: `re-push ${i}` });
    // Replies GHL failed to deliver to a dead bridge: the last bridge's start-up catch-up, then the chat reconcile.
    const sweep = async () => {
      await fetch(`${cur.url}/admin/provider/catch-up`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: '{}',
      });
      return new Set(rx!.received.map((d) => d.webhookId)).size >= replyIds.length;
    };
    await waitFor(sweep, { what: `all ${replyIds.length} replies (seed ${seed})`, timeoutMs: 60_000, intervalMs: 500 });
    await waitFor(() => emu.control.listMessages({ locationId: loc }).filter((m) => m.altId).length >= N, {
      what: `all ${N} pushed messages in GHL (seed ${seed})`,
      timeoutMs: 60_000,
    });
    await emu.idle();
    const inGhl = emu.control.listMessages({ locationId: loc });
    const alt = inGhl.filter((m) => m.altId).map((m) => m.altId!);
    expect(alt.length, `seed ${seed}`).toBe(N);
    expect(new Set(alt).size, `seed ${seed}`).toBe(N);
    expect(emu.control.listContacts({ locationId: loc })).toHaveLength(clients.length);
    const ids = rx.received.map((d) => d.webhookId);
    expect(new Set(ids), `seed ${seed}`).toEqual(new Set(replyIds));
    const posted = new Set(inGhl.filter((m) => m.altId).map((m) => m.id));
    expect(ids.filter((id) => id && posted.has(id))).toHaveLength(0);
    // Every delivery carries the chat ids.
    expect(rx.received.every((d) => (d.body as { chat?: { clientId: string } }).chat?.clientId.startsWith('k-'))).toBe(
      true,
    );
  }, 240_000);
});
