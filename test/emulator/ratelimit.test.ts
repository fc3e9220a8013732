import { afterEach, describe, expect, it } from 'vitest';
import { api, closeWorld, tokenFor, world, type World } from './helpers.js';

let w: World;
afterEach(async () => closeWorld(w));

describe('rate limits', () => {
  it('the 101st call in 10 s is 429 and the headers count down', async () => {
    w = await world();
    const t = String((await tokenFor(w, { locationId: w.locationId })).access_token);
    const path = `/conversations/search?locationId=${w.locationId}`;
    for (let i = 1; i <= 100; i++) {
      const r = await api(w, t, 'GET', path);
      expect(r.status).toBe(200);
      expect(r.headers.get('x-ratelimit-remaining')).toBe(String(100 - i));
      expect(r.headers.get('x-ratelimit-daily-remaining')).toBe(String(200_000 - i));
      expect(r.headers.get('x-ratelimit-max')).toBe('100');
      expect(r.headers.get('x-ratelimit-interval-milliseconds')).toBe('10000');
      expect(r.headers.get('x-ratelimit-limit-daily')).toBe('200000');
    }
    const over = await api(w, t, 'GET', path);
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ statusCode: 429 });
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(over.headers.get('x-ratelimit-remaining')).toBe('0');
    w.emu.clock.advance(10_000);
    const again = await api(w, t, 'GET', path);
    expect(again.status).toBe(200);
    expect(again.headers.get('x-ratelimit-remaining')).toBe('99');
  });

  it('limits are per app per location and configurable; daily cap applies', async () => {
    w = await world({ rateLimit: { burst: 3, intervalMs: 1000, daily: 5 } });
    const loc2 = w.emu.control.createLocation({ companyId: w.companyId, name: 'Two' });
    const t1 = String((await tokenFor(w, { locationId: w.locationId })).access_token);
    const t2 = String((await tokenFor(w, { locationId: loc2.id })).access_token);
    const p1 = `/conversations/search?locationId=${w.locationId}`;
    for (let i = 0; i < 3; i++) expect((await api(w, t1, 'GET', p1)).status).toBe(200);
    expect((await api(w, t1, 'GET', p1)).status).toBe(429);
    expect((await api(w, t2, 'GET', `/conversations/search?locationId=${loc2.id}`)).status).toBe(200);
    w.emu.clock.advance(1000);
    for (let i = 0; i < 2; i++) expect((await api(w, t1, 'GET', p1)).status).toBe(200);
    w.emu.clock.advance(1000);
    const daily = await api(w, t1, 'GET', p1);
    expect(daily.status).toBe(429);
    expect(daily.headers.get('x-ratelimit-daily-remaining')).toBe('0');
  });

  it('injected faults: 429, 500 and timeout on the next N calls', async () => {
    w = await world();
    const t = String((await tokenFor(w, { locationId: w.locationId })).access_token);
    const path = `/conversations/search?locationId=${w.locationId}`;
    w.emu.control.injectFault({ pathPattern: '/conversations/search', times: 1, kind: '429' });
    w.emu.control.injectFault({ pathPattern: '/conversations/*', method: 'GET', times: 1, kind: '500' });
    const a = await api(w, t, 'GET', path);
    expect(a.status).toBe(429);
    expect(a.headers.get('retry-after')).toBeTruthy();
    expect((await api(w, t, 'GET', path)).status).toBe(500);
    expect((await api(w, t, 'GET', path)).status).toBe(200);
    w.emu.control.injectFault({ pathPattern: '/conversations/search', times: 1, kind: 'timeout' });
    const err = await fetch(`${w.base}${path}`, {
      headers: { authorization: `Bearer ${t}`, version: '2021-04-15' },
      signal: AbortSignal.timeout(100),
    }).then(
      () => 'answered',
      (e: unknown) => (e instanceof Error ? e.name : 'error'),
    );
    expect(err).toBe('TimeoutError');
  });
});
