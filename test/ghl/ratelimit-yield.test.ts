import { afterEach, describe, expect, it } from 'vitest';
import { GHL_LIMITS, RateLimiter, RateLimitWaitTimeout } from '../../src/platform/ghl/ratelimit.js';
import { openTestStore, type TestStore } from '../helpers/store.js';

/**
 * Issue 18 item 5: a job waiting for a rate-limit slot gives up its worker slot. acquire(…, maxQueuedMs) takes a
 * caller that got no slot in time out of the queue; the slot it would have had goes to the next caller, never wasted.
 */
let store: TestStore | undefined;
const limiters: RateLimiter[] = [];
afterEach(async () => {
  for (const l of limiters.splice(0)) await l.close();
  await store?.close();
  store = undefined;
});

describe('rate limiter: maxQueuedMs', () => {
  it('a caller with no slot within maxQueuedMs gets RateLimitWaitTimeout; the budget it gave up is used by others', async () => {
    store = await openTestStore();
    const l = new RateLimiter(store.db, 'app', { ...GHL_LIMITS, burst: 5, intervalMs: 2000, marginMs: 10 });
    limiters.push(l);
    const first = await Promise.all(Array.from({ length: 5 }, () => l.acquire('loc:a', 'live')));
    for (const t of first) t.done();
    // The window is spent: a caller that may wait 100 ms gives up; a patient one behind it gets the next slot.
    const started = Date.now();
    const impatient = l.acquire('loc:a', 'live', undefined, 100);
    const patient = l.acquire('loc:a', 'live');
    await expect(impatient).rejects.toBeInstanceOf(RateLimitWaitTimeout);
    expect(Date.now() - started).toBeLessThan(1500); // it did not wait for the window
    const t = await patient;
    t.done();
    // The impatient caller took nothing: the next window still has all 5 slots (4 left after `patient`).
    const next = await Promise.all(Array.from({ length: 4 }, () => l.acquire('loc:a', 'live', undefined, 5000)));
    for (const x of next) x.done();
    expect(next).toHaveLength(4);
    // Another resource is unaffected.
    const other = await l.acquire('loc:b', 'live', undefined, 100);
    other.done();
  });

  it('a caller granted a slot within maxQueuedMs is never timed out afterwards', async () => {
    store = await openTestStore();
    const l = new RateLimiter(store.db, 'app', { ...GHL_LIMITS, burst: 3, intervalMs: 1000, marginMs: 10 });
    limiters.push(l);
    const ts = await Promise.all(Array.from({ length: 3 }, () => l.acquire('loc:c', 'live', undefined, 50)));
    expect(ts).toHaveLength(3);
    for (const t of ts) t.done();
  });
});
