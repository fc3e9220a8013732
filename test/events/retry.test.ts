import { afterEach, describe, expect, it } from 'vitest';
import { MAX_ATTEMPTS, RETRY_SCHEDULE_MS } from '../../src/capabilities/events/index.js';
import { waitFor } from '../helpers/store.js';
import { contact, startEventsBridge, startReceiver, type EventsBridge } from './harness.js';

let bridge: EventsBridge | undefined;
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  await bridge?.close();
  bridge = undefined;
});

/**
 * The retry schedule with an injected clock: the bridge runs no delivery loop (autoDeliver off); the test moves the
 * clock and runs one delivery pass, so "not before its time" and "at its time" are both exact, without sleeping.
 */
describe('retry schedule (injected clock)', () => {
  it('follows the documented schedule ±10 %, honours Retry-After, dead-letters after the last attempt', async () => {
    let clock = Date.parse('2026-01-01T00:00:00Z');
    bridge = await startEventsBridge({
      events: { now: () => clock, autoDeliver: false },
      env: { EVENTS_DISABLE_AFTER_DAYS: '0', EVENTS_BREAKER_THRESHOLD: '1000' },
    });
    // Attempt 3 answers 503 with Retry-After: 2 h (longer than the 5 min step); every other one 500.
    const r = await startReceiver((_req, n) =>
      n === 3 ? { status: 503, headers: { 'retry-after': '7200' } } : { status: 500 },
    );
    closers.push(() => r.close());
    const created = await bridge.admin('POST', '/admin/api/subscriptions', { url: r.url, eventTypes: ['Contact*'] });
    const sub = created.body.subscription.id as string;
    await bridge.rt.engine.refresh();
    expect(await bridge.ghl(contact('ContactCreate', 'loc_1', 'c1'))).toBe(200);
    const delivery = async () => (await bridge!.rt.store.deliveries({ subscriptionId: sub, withAttempts: true }))[0];
    // The fan-out row is written by the dispatch job (workers run): wait for it.
    await waitFor(delivery, { what: 'the fan-out row' });
    const run = () => bridge!.rt.engine.runOnce(sub);

    const start = clock;
    expect(await run()).toBe(1); // attempt 1: immediately
    const atTimes: number[] = [clock];
    for (let attempt = 2; attempt <= MAX_ATTEMPTS; attempt++) {
      const d = (await delivery())!;
      expect(d.status).toBe('pending');
      const due = d.nextAt!.getTime();
      const prev = atTimes[atTimes.length - 1]!;
      const step = RETRY_SCHEDULE_MS[attempt - 1]!;
      if (attempt === 4)
        expect(due - prev).toBeGreaterThanOrEqual(7200_000); // Retry-After won over 30 min
      else {
        expect(due - prev).toBeGreaterThanOrEqual(Math.floor(step * 0.9));
        expect(due - prev).toBeLessThanOrEqual(Math.ceil(step * 1.1));
      }
      clock = due - 1;
      expect(await run(), `attempt ${attempt} must not run before its time`).toBe(0);
      clock = due;
      expect(await run(), `attempt ${attempt} runs at its time`).toBe(1);
      atTimes.push(clock);
    }
    const d = (await delivery())!;
    expect(d.status).toBe('dead');
    expect(d.attempts).toBe(MAX_ATTEMPTS);
    expect(d.deadReason).toMatch(/failed 8 attempts; last: HTTP 500/);
    expect(d.attemptLog!.map((a) => a.statusCode)).toEqual([500, 500, 503, 500, 500, 500, 500, 500]);
    expect(d.attemptLog!.map((a) => a.at.getTime())).toEqual(atTimes);
    // 5 s + 5 min + 2 h (Retry-After instead of 30 min) + 2 h + 5 h + 10 h + 10 h, ±10 % each.
    expect(clock - start).toBeGreaterThan(0.9 * 29 * 3600_000);
    expect(clock - start).toBeLessThan(1.1 * 29.1 * 3600_000);
    clock += 100 * 3600_000;
    expect(await run()).toBe(0);
    expect(r.count()).toBe(MAX_ATTEMPTS);
  });

  it('an endpoint failing for EVENTS_DISABLE_AFTER_DAYS is disabled with endpoint.disabled and an alert', async () => {
    let clock = Date.parse('2026-01-01T00:00:00Z');
    bridge = await startEventsBridge({
      events: { now: () => clock, autoDeliver: false },
      env: { EVENTS_DISABLE_AFTER_DAYS: '0.25', EVENTS_BREAKER_THRESHOLD: '3', EVENTS_BREAKER_COOLDOWN_MS: '60000' },
    });
    const bad = await startReceiver(() => ({ status: 502 }));
    const watcher = await startReceiver();
    closers.push(
      () => bad.close(),
      () => watcher.close(),
    );
    const s = (await bridge.admin('POST', '/admin/api/subscriptions', { url: bad.url, eventTypes: ['Contact*'] })).body
      .subscription.id as string;
    const w = (await bridge.admin('POST', '/admin/api/subscriptions', { url: watcher.url, eventTypes: ['endpoint.*'] }))
      .body.subscription.id as string;
    await bridge.rt.engine.refresh();
    for (let i = 0; i < 3; i++) expect(await bridge.ghl(contact('ContactCreate', 'loc_1', `c${i}`))).toBe(200);
    const pending = async () => (await bridge!.rt.store.deliveries({ subscriptionId: s })).length;
    await waitFor(async () => (await pending()) === 3, { what: 'three fan-out rows' });
    // Three failures open the circuit: nothing is sent while it is open, even what is due.
    expect(await bridge.rt.engine.runOnce(s)).toBe(3);
    clock += 10_000;
    expect(await bridge.rt.engine.runOnce(s)).toBe(0);
    expect((await bridge.admin('GET', `/admin/api/subscriptions/${s}`)).body.circuitOpenUntil).not.toBeNull();
    // Then one probe at a time (half-open) until the circuit closes or the endpoint is disabled.
    clock += 60_000;
    expect(await bridge.rt.engine.runOnce(s)).toBe(1);
    expect(bad.count()).toBe(4);
    clock += 6 * 3600_000 + 1;
    await bridge.rt.engine.runOnce(s);
    const v = (await bridge.admin('GET', `/admin/api/subscriptions/${s}`)).body;
    expect(v).toMatchObject({ state: 'disabled', disabledBy: 'system' });
    expect(v.disabledReason).toMatch(/failing for 0.3 days|failing for 0.2 days|failing/);
    expect((await bridge.admin('GET', '/admin/api/event-alerts')).body.alerts).toHaveLength(1);
    await bridge.rt.engine.runOnce(w);
    expect(watcher.got.map((g) => g.body.type)).toEqual(['endpoint.disabled']);
    expect(watcher.got[0]!.body.data).toMatchObject({ subscriptionId: s, url: bad.url });
  });
});
