import { afterEach, describe, expect, it } from 'vitest';
import { GHL_LIMITS, RateLimiter } from '../../src/platform/ghl/ratelimit.js';
import { openTestStore, type TestStore } from '../helpers/store.js';

let store: TestStore | undefined;
const limiters: RateLimiter[] = [];
afterEach(async () => {
  for (const l of limiters.splice(0)) await l.close();
  await store?.close();
  store = undefined;
});

async function take(l: RateLimiter, resource: string, n: number, timeoutMs: number): Promise<number> {
  let granted = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      const t = await l.acquire(resource, 'live', AbortSignal.timeout(timeoutMs)).catch(() => null);
      if (t) {
        granted++;
        t.done();
      }
    }),
  );
  return granted;
}

describe('rate limiter: a bucket row written under other limits', () => {
  it('is re-shaped to the new limits instead of granting nothing (a row of 100 slots read by a limiter of 100,000 per interval)', async () => {
    store = await openTestStore();
    const interval = { intervalMs: 1000, marginMs: 10 };
    const before = new RateLimiter(store.db, 'app', { ...GHL_LIMITS, ...interval, burst: 100 });
    limiters.push(before);
    expect(await take(before, 'loc:x', 100, 5000)).toBe(100);
    // Before the fix the new limiter read the 100-slot row with its 782-requests-per-slot unit: a cap of 0 slots, and
    // every acquire waited for ever.
    const after = new RateLimiter(store.db, 'app', {
      ...GHL_LIMITS,
      ...interval,
      burst: 100_000,
      daily: 1_000_000_000,
    });
    limiters.push(after);
    expect(await take(after, 'loc:x', 300, 10_000)).toBe(300);
    const row = await store.db
      .selectFrom('ghl_rate_buckets')
      .select(['cap', 'daily_limit'])
      .where('resource_id', '=', 'loc:x')
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ cap: 100_000, daily_limit: 1_000_000_000 });
  });

  it('re-shaping is conservative: after lowering the burst, the first interval grants no more than the new burst', async () => {
    store = await openTestStore();
    const interval = { intervalMs: 3000, marginMs: 10 };
    const wide = new RateLimiter(store.db, 'app', { ...GHL_LIMITS, ...interval, burst: 50 });
    limiters.push(wide);
    expect(await take(wide, 'loc:y', 5, 5000)).toBe(5);
    const narrow = new RateLimiter(store.db, 'app', { ...GHL_LIMITS, ...interval, burst: 10 });
    limiters.push(narrow);
    // Every slot of the re-shaped row is stamped "now": within 1 s (less than the 3 s interval) nothing is granted,
    // and the later grants never exceed the new burst per interval.
    expect(await take(narrow, 'loc:y', 10, 1000)).toBe(0);
    const started = Date.now();
    expect(await take(narrow, 'loc:y', 20, 15_000)).toBe(20);
    // 20 requests at 10 per 3 s: the second ten wait for the next interval.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
  });
});
