import { afterEach, describe, expect, it } from 'vitest';
import { generateKeySpec } from '../../src/infra/crypto/aes.js';
import { spawnTs, type Child } from '../fixtures/child.js';
import { openTestStore, STORE, waitFor, type TestStore } from '../helpers/store.js';
import { makeSigner, sendSigned } from '../webhooks/helpers.js';
import { ADMIN, contact, startReceiver } from './harness.js';

/**
 * SIGKILL during fan-out: a bridge process takes a stream of GHL events and fans them out to two subscriptions; it is
 * killed while events are still arriving and being delivered, and a second process takes over on the same store.
 * Every event GHL was answered 200 for reaches both endpoints at least once; a duplicate always carries the same
 * event id (webhook-id), and no event is ever sent under two ids.
 */
let store: TestStore | undefined;
const children: Child[] = [];
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of children.splice(0))
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  for (const c of closers.splice(0)) await c();
  if (STORE === 'postgres') await store?.close();
  store = undefined;
});

async function spawnBridge(env: Record<string, string>): Promise<{ child: Child; url: string }> {
  const child = spawnTs('test/events/fixtures/bridge-child.ts', [], env);
  children.push(child);
  const line = await child.waitForLine(/"url"/, 90_000);
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

describe('SIGKILL during fan-out', () => {
  it('every accepted event is delivered at least once to every subscriber; duplicates only with the same id', async () => {
    const signer = makeSigner();
    store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close(); // the child owns the data directory
    const env = {
      ...store.env,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'silent',
      SANDBOX: 'true',
      ADMIN_API_KEY: ADMIN,
      TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
      JOB_LEASE_MS: '1000',
      JOB_POLL_MS: '50',
      EVENTS_POLL_MS: '100',
      EVENTS_DELIVERY_TIMEOUT_MS: '1000',
      // Delivery slower than the stream (2 in flight per endpoint, rounds 50 ms apart): the kill finds a backlog.
      EVENTS_ENDPOINT_CONCURRENCY: '2',
      EVENTS_BATCH_MS: '50',
      EVENTS_ALLOWED_NETWORKS: '127.0.0.0/8',
      WEBHOOK_EXTRA_ED25519_KEYS: signer.edPublicPem,
    };
    const receivers = [await startReceiver(), await startReceiver()];
    for (const r of receivers) closers.push(() => r.close());
    const first = await spawnBridge(env);
    for (const r of receivers) {
      const res = await fetch(`${first.url}/admin/api/subscriptions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          url: r.url,
          eventTypes: ['Contact*'],
          ordering: r === receivers[0] ? 'contact' : 'none',
        }),
      });
      expect(res.status).toBe(201);
    }

    const N = 400;
    const accepted = new Set<string>();
    let killed = false;
    // One payload per event: a retry (as GHL's) carries the same webhookId, which the intake deduplicates on.
    const payloads = Array.from({ length: N }, (_, i) => contact('ContactCreate', `loc_${i % 4}`, `c${i}`));
    const send = async (url: string, i: number) => {
      const st = await sendSigned(`${url}/webhooks/ghl`, signer, payloads[i]).then(
        (r) => r.status,
        () => 0,
      );
      if (st === 200) accepted.add(`c${i}`);
    };
    // A steady stream, 8 at a time; the kill lands once the endpoints have seen some deliveries, mid-stream.
    let next = 0;
    const stream = (url: string, until: number) =>
      Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < until && !(killed && url === first.url)) await send(url, next++);
        }),
      );
    const streaming = stream(first.url, N);
    await waitFor(() => receivers.every((r) => r.got.length >= 40), { what: 'first deliveries', timeoutMs: 60_000 });
    first.child.proc.kill('SIGKILL');
    killed = true;
    const deliveredAtKill = receivers.map((r) => new Set(r.got.map((g) => String(g.body.data.id))).size);
    await first.child.exited;
    await streaming;
    // The kill came mid-fan-out: accepted events were still to be delivered.
    expect(Math.min(...deliveredAtKill)).toBeLessThan(accepted.size);

    const second = await spawnBridge(env);
    // What GHL would retry (it was never answered 200) and the rest of the stream go to the new process.
    const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !accepted.has(`c${i}`));
    for (const i of missing) await send(second.url, i);
    expect(accepted.size).toBe(N);

    for (const r of receivers)
      await waitFor(() => new Set(r.got.map((g) => String(g.body.data.id))).size === N, {
        what: 'every event at every endpoint',
        timeoutMs: 90_000,
      });
    for (const r of receivers) {
      const idOf = new Map<string, string>();
      const contactOf = new Map<string, string>();
      for (const g of r.got) {
        const c = String(g.body.data.id);
        expect(idOf.get(c) ?? g.id, `event of ${c} delivered under two ids`).toBe(g.id);
        expect(contactOf.get(g.id) ?? c).toBe(c);
        idOf.set(c, g.id);
        contactOf.set(g.id, c);
      }
      expect(idOf.size).toBe(N);
    }
    // The per-contact ordered subscription: each contact has one event here, so only the count matters; the log shows
    // how many duplicates the kill caused (at-least-once).
    const dups = receivers.map((r) => r.got.length - N);
    expect(dups.every((d) => d >= 0)).toBe(true);
  }, 240_000);
});
