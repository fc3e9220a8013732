import { afterEach, describe, expect, it } from 'vitest';
import { GHL_LIMITS, RateLimiter, type RateTicket } from '../../src/platform/ghl/ratelimit.js';
import { openTestStore, waitFor, type TestStore } from '../helpers/store.js';

/**
 * Issue 14 (live lane during an import): the bulk lane leaves `liveReserveShare` of the burst free, so a live call
 * finds a slot at once while bulk saturates the resource, instead of waiting for the next slot to free. Tickets are
 * held (never done), so no slot frees during the test: a live call can only be served from the reserve.
 */
let store: TestStore | undefined;
const limiters: RateLimiter[] = [];
afterEach(async () => {
  for (const l of limiters.splice(0)) await l.close();
  await store?.close();
  store = undefined;
});

describe('rate limiter: live reserve', () => {
  it('saturating bulk leaves the reserved slot alone; a live call gets it without waiting for a slot to free', async () => {
    store = await openTestStore();
    const l = new RateLimiter(store.db, 'app', {
      ...GHL_LIMITS,
      burst: 10,
      intervalMs: 1000,
      marginMs: 10,
      liveReserveShare: 0.1,
    });
    limiters.push(l);
    const stop = new AbortController();
    const bulk: RateTicket[] = [];
    const waiting = Array.from({ length: 15 }, () =>
      l.acquire('loc:a', 'bulk', stop.signal).then(
        (t) => void bulk.push(t),
        () => undefined,
      ),
    );
    await waitFor(() => bulk.length >= 9, { what: 'nine bulk grants' });
    // Bulk keeps asking (its waiters are still queued) and is refused the last slot every time.
    const asked = l.stats.reservations;
    await waitFor(() => l.stats.reservations >= asked + 5, { what: 'bulk asking again' });
    expect(bulk).toHaveLength(9);
    // Every other slot is held for a minute: this grant can only come from the reserve.
    const live = await l.acquire('loc:a', 'live', undefined, 2000);
    expect(bulk).toHaveLength(9);
    live.done();
    stop.abort();
    await Promise.all(waiting);
    for (const t of bulk) t.done();
  });

  it('with no reserve (share 0) bulk takes the whole burst', async () => {
    store = await openTestStore();
    const l = new RateLimiter(store.db, 'app', {
      ...GHL_LIMITS,
      burst: 10,
      intervalMs: 1000,
      marginMs: 10,
      liveReserveShare: 0,
    });
    limiters.push(l);
    const ts = await Promise.all(Array.from({ length: 10 }, () => l.acquire('loc:b', 'bulk', undefined, 5000)));
    expect(ts).toHaveLength(10);
    for (const t of ts) t.done();
  });

  it("GHL's limits keep one slot of 100 for live", () => {
    expect(Math.floor(GHL_LIMITS.burst * GHL_LIMITS.liveReserveShare)).toBe(1);
  });
});
