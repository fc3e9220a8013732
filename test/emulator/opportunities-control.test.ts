import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeWorld, world, type World } from './helpers.js';

let w: World;
beforeAll(async () => {
  w = await world();
});
afterAll(async () => closeWorld(w));

const post = async (path: string, body: unknown, method = 'POST') => {
  const r = await fetch(`${w.base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

describe('emulator: workflow hooks and pipelines over the HTTP control API', () => {
  it('a hook records what it receives, fails as told N times, and 404s when unknown', async () => {
    const h = await post('/_emulator/hooks', { locationId: w.locationId });
    expect(h.status).toBe(201);
    const { url, triggerId } = h.body as { url: string; triggerId: string };
    expect(url).toBe(`${w.base}/hooks/${w.locationId}/webhook-trigger/${triggerId}`);
    expect((await post(`/_emulator/hooks/${triggerId}/fail`, { status: 502, times: 1 })).status).toBe(200);
    const first = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(first.status).toBe(502);
    const second = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":2}',
    });
    expect(second.status).toBe(200);
    const seen = (await (await fetch(`${w.base}/_emulator/hooks/${triggerId}`)).json()) as {
      received: Array<{ status: number; body: unknown }>;
    };
    expect(seen.received.map((r) => [r.status, r.body])).toEqual([
      [502, { a: 1 }],
      [200, { a: 2 }],
    ]);
    const unknown = await fetch(url.replace(triggerId, 'ffffffff-ffff-4fff-8fff-ffffffffffff'), { method: 'POST' });
    expect(unknown.status).toBe(404);
  });

  it('seeds pipelines and stages, and changes an opportunity as a GHL user would', async () => {
    const p = await post('/_emulator/pipelines', { locationId: w.locationId, name: 'P', stages: ['A'] });
    expect(p.status).toBe(201);
    const id = p.body.id as string;
    const s = await post(`/_emulator/pipelines/${id}/stages`, { name: 'B' });
    expect((s.body.stages as Array<{ name: string }>).map((x) => x.name)).toEqual(['A', 'B']);
    const bad = await post(`/_emulator/pipelines`, { locationId: 'nope', name: 'P', stages: [] });
    expect(bad.status).toBe(400);
    expect((await post('/_emulator/opportunities/nope', { status: 'won' }, 'PATCH')).status).toBe(400);
  });
});
