import { afterEach, describe, expect, it } from 'vitest';
import { spawnTs, type Child } from '../fixtures/child.js';
import { startFakeCast, type FakeCast } from '../fakes/cast-server.js';
import { openDatabase } from '../../src/infra/db/index.js';
import { openTestStore, STORE, waitFor, type TestStore } from '../helpers/store.js';
import { adminPut, CAST_INBOUND_KEY, finalStatus, install, startWorld, type World } from './harness.js';

/**
 * Issue 12: SIGKILL at random points during a 1,000-message relay, with restarts. GHL (the emulator, in this process)
 * offers the messages at a steady pace over 10 locations while a bridge child process is killed at seeded random
 * message indexes and started again. Deliveries GHL attempts while the bridge is dead get connection refused and are
 * lost (GHL retries only on a 429); catch-up at each start (and every few seconds) finds them. Every message ends
 * delivered, or failed with a reason; none stays pending; none is sent twice (the fake Cast counts processed sends per
 * idempotency key = GHL messageId, and each message's text is unique, so a second send under another key shows too).
 *
 * Seed: printed; CATCHUP_CRASH_SEED=<n> replays a run's kill points.
 */
let w: World | undefined;
let cast: FakeCast | undefined;
let store: TestStore | undefined;
const children: Child[] = [];
const timers: NodeJS.Timeout[] = [];
afterEach(async () => {
  for (const t of timers.splice(0)) clearInterval(t);
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

/** Small seeded PRNG (mulberry32): the same seed gives the same kill points. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const castKey = (i: number) => `cast_${i.toString(16).padStart(2, '0').repeat(32)}`;
const TOTAL = 1000;
const LOCATIONS = 10;
const KILLS = 8;
/** Offered messages per second (open loop, as GHL users would send them; the kills do not pause it). */
const RATE = 25;
const SEED = process.env.CATCHUP_CRASH_SEED
  ? Number(process.env.CATCHUP_CRASH_SEED)
  : Math.floor(Math.random() * 2 ** 31);

describe('SIGKILL at random points during a relay, with restarts and catch-up', () => {
  it(`${TOTAL} messages over ${LOCATIONS} locations, ${KILLS} kills: every message delivered or failed with a reason, none pending, none sent twice`, async () => {
    console.log(`catchup-crash seed ${SEED} (CATCHUP_CRASH_SEED=${SEED} replays it)`);
    const rand = prng(SEED);
    const t0 = Date.now();
    w = await startWorld({ locations: LOCATIONS });
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
    const emu = w.emu;
    const c = cast;
    let bridge = await spawnBridge(env);
    emu.control.updateApp(w.clientId, { providerDeliveryUrl: `${bridge.url}/webhooks/ghl/provider` });
    const contacts: Array<{ locationId: string; id: string }> = [];
    for (const [i, loc] of w.locationIds.entries()) {
      await install(bridge.url, loc);
      const put = await adminPut(bridge.url, loc, {
        // Each location its own Cast account (Cast allows 10 sends/s per account; the channel throttles to that).
        config: { kind: 'cast', apiKey: castKey(i), baseUrl: c.url, inboundApiKey: CAST_INBOUND_KEY },
        defaultRegion: 'PH',
      });
      expect(put.status).toBe(200);
      for (let k = 0; k < 3; k++)
        contacts.push(
          emu.control.createContact({ locationId: loc, phone: `+639181${String(i).padStart(2, '0')}${k}222` }),
        );
    }
    // Cast leaves a message pending until its DLR: mark each processed send delivered as it appears.
    const marked = new Set<string>();
    timers.push(
      setInterval(() => {
        for (const s of c.sends) {
          if (marked.has(s.messageId)) continue;
          c.setStatus(s.messageId, 'delivered');
          marked.add(s.messageId);
        }
      }, 100),
    );
    // Progress every 10 s (messages final in GHL), to show where the time goes when it runs slow.
    const progress: string[] = [];
    let ids: string[] = [];
    timers.push(
      setInterval(() => {
        const done = ids.filter((id) => ['delivered', 'failed'].includes(finalStatus(emu, id) ?? '')).length;
        progress.push(`${Math.round((Date.now() - t0) / 1000)}s:${done}/${ids.length}`);
      }, 10_000),
    );

    // Kill points: seeded random message indexes, at least 60 apart, between the first 50 and the last 100.
    const killAt: number[] = [];
    while (killAt.length < KILLS) {
      const k = 50 + Math.floor(rand() * (TOTAL - 150));
      if (killAt.every((x) => Math.abs(x - k) >= 60)) killAt.push(k);
    }
    killAt.sort((a, b) => a - b);
    // How many deliveries must meet the dead bridge before it is started again (at least, per kill).
    const minLost = killAt.map(() => 3 + Math.floor(rand() * 10));
    console.log(`kill at messages ${killAt.join(', ')}; restart after ≥ ${minLost.join(', ')} refused deliveries`);

    const refused = () =>
      emu.control
        .listDeliveries({ kind: 'provider' })
        .filter((d) => d.state === 'failed' && d.attempts.some((a) => /ECONNREFUSED/.test(a.error ?? ''))).length;
    // A kill: SIGKILL, then (while the load goes on) wait until GHL has really lost deliveries to the dead bridge, then
    // start a new bridge process on the same store. Not awaited by the load, which keeps its pace.
    let chaos: Promise<void> = Promise.resolve();
    const downs: Array<{ at: number; downMs: number; refused: number }> = [];
    const kill = (n: number, at: number) =>
      (async () => {
        const before = refused();
        const killedAt = Date.now();
        bridge.child.proc.kill('SIGKILL');
        await bridge.child.exited;
        await waitFor(() => refused() - before >= minLost[n]!, {
          what: `≥ ${minLost[n]} deliveries refused after kill ${n + 1}`,
          timeoutMs: 30_000,
          intervalMs: 20,
        });
        bridge = await spawnBridge(env);
        emu.control.updateApp(w!.clientId, { providerDeliveryUrl: `${bridge.url}/webhooks/ghl/provider` });
        downs.push({ at, downMs: Date.now() - killedAt, refused: refused() - before });
      })();

    ids = [];
    const tLoad = Date.now();
    let due = tLoad;
    for (let i = 0; i < TOTAL; i++) {
      // Open-loop pacing: one message every 1 / RATE s (re-based after a pause, so a pause is not followed by a burst).
      due = Math.max(due + 1000 / RATE, Date.now() - 200);
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      const ct = contacts[i % contacts.length]!;
      ids.push(
        emu.control.sendMessageAsUser({
          locationId: ct.locationId,
          contactId: ct.id,
          type: 'SMS',
          message: `m${i}`,
          conversationProviderId: w.providerId,
        }).id,
      );
      const n = killAt.indexOf(i);
      if (n >= 0) {
        // A kill point reached while the previous restart is still under way waits for it (the only pause of the
        // load): every kill then meets a running bridge and at least 100 more messages, so it always loses deliveries.
        await chaos;
        chaos = kill(n, i);
      }
    }
    const offeredMs = Date.now() - tLoad;
    await chaos;

    await waitFor(() => ids.every((id) => ['delivered', 'failed'].includes(finalStatus(emu, id) ?? '')), {
      what: 'every message delivered or failed',
      timeoutMs: 120_000,
      intervalMs: 100,
    });
    const settledMs = Date.now() - tLoad;

    // What the bridge itself recorded as caught up (its store, read after it stopped).
    bridge.child.proc.kill('SIGTERM');
    await bridge.child.exited;
    const db =
      STORE === 'postgres'
        ? store
        : await openDatabase({ schema: store.env.DATABASE_SCHEMA!, dataDir: store.env.DATA_DIR! });
    const caughtUp = new Set(
      (
        await db.db.selectFrom('provider_outbound').select('message_id').where('confirmed_by', '=', 'catchup').execute()
      ).map((r) => r.message_id),
    );
    if (STORE === 'pglite') await db.close();

    const lostIds = new Set(
      emu.control
        .listDeliveries({ kind: 'provider' })
        .filter((d) => d.state === 'failed' && d.attempts.some((a) => /ECONNREFUSED/.test(a.error ?? '')))
        .map((d) => String(d.payload.messageId)),
    );
    const perKey = new Map<string, number>();
    const perText = new Map<string, number>();
    for (const s of c.sends) {
      perKey.set(s.idempotencyKey ?? '', (perKey.get(s.idempotencyKey ?? '') ?? 0) + 1);
      perText.set(s.message, (perText.get(s.message) ?? 0) + 1);
    }
    const failed = ids.filter((id) => finalStatus(emu, id) === 'failed');
    console.log(
      `${TOTAL} offered in ${(offeredMs / 1000).toFixed(1)} s; all final ${(settledMs / 1000).toFixed(1)} s after the first; ` +
        `kills: ${downs.map((d) => `#${d.at} down ${(d.downMs / 1000).toFixed(1)} s, ${d.refused} refused`).join('; ')}; ` +
        `lost by GHL ${lostIds.size}, caught up by the bridge ${caughtUp.size}, failed ${failed.length}, ` +
        `Cast sends ${c.sends.length}; test ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    const calls = emu.control.listApiCalls();
    const kinds = new Map<string, number>();
    for (const k of calls) {
      const key = `${k.method} ${k.path.replace(/[A-Za-z0-9]{16,}/g, ':id')} ${k.status}`;
      kinds.set(key, (kinds.get(key) ?? 0) + 1);
    }
    console.log(
      `progress ${progress.join(' ')}\nGHL API calls: ${[...kinds].map(([k, n]) => `${k} ×${n}`).join(', ')}`,
    );

    expect(downs).toHaveLength(KILLS);
    for (const id of ids) {
      const m = emu.control.getMessage(id)!;
      expect(['delivered', 'failed'], id).toContain(m.status);
      if (m.status === 'failed') expect(m.error?.message, id).toBeTruthy();
      else expect(perKey.get(id), id).toBe(1);
    }
    // None sent twice: per idempotency key, and per message text (unique per message).
    expect([...perKey].filter(([, n]) => n > 1)).toEqual([]);
    expect([...perText].filter(([, n]) => n > 1)).toEqual([]);
    const idSet = new Set(ids);
    expect(c.sends.filter((s) => !idSet.has(s.idempotencyKey ?? ''))).toEqual([]);
    // None pending anywhere in GHL.
    expect(emu.control.listMessages().filter((m) => m.status === 'pending')).toEqual([]);
    // GHL really lost deliveries at every kill, and each lost one was caught up by the bridge (it never saw them).
    expect(lostIds.size).toBeGreaterThanOrEqual(minLost.reduce((a, b) => a + b, 0));
    expect([...lostIds].filter((id) => !caughtUp.has(id))).toEqual([]);
  }, 300_000);
});
