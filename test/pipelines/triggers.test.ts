import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { generateKeySpec, parseKeyRing } from '../../src/infra/crypto/aes.js';
import { JOB_TRIGGER, prunePipelines, rotateTriggerKeys, setTrigger } from '../../src/capabilities/pipelines/index.js';
import { retryJobs } from '../../src/infra/queue/index.js';
import { captureLog, waitFor } from '../helpers/store.js';
import { metricValue, startPipelinesWorld, type PipelinesWorld } from './harness.js';

let w: PipelinesWorld;
const logs = captureLog('debug');
const hookIds: string[] = [];
beforeAll(async () => {
  w = await startPipelinesWorld({ module: { triggers: { retryBaseMs: 20, maxAttempts: 4 } }, log: logs.log });
});
afterAll(async () => {
  await w?.close();
  // The hook URLs are credentials: never in a log line (debug level included).
  const text = JSON.stringify(logs.lines);
  expect(logs.lines.length).toBeGreaterThan(10);
  for (const id of hookIds) expect(text).not.toContain(id);
});

type Req = {
  id: number;
  state: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  duplicate: boolean;
  statusUrl: string;
  idempotencyKey: string;
};

async function hook(name: string) {
  const h = w.emu.opportunities.createHook(w.locationId, w.emu.baseUrl);
  hookIds.push(h.triggerId);
  const r = await w.admin(`/admin/triggers/${w.locationId}/${name}`, { method: 'PUT', json: { url: h.url } });
  expect(r.status).toBe(200);
  return h;
}

const metric = (name: string, labels: Record<string, string>) => metricValue(w.bridge.url, name, labels);
const triggers = (name: string, outcome: string) => metric('ghl_bridge_triggers_total', { name, outcome });

const settled = (statusUrl: string, from = 'pending') =>
  waitFor(
    async () => {
      const r = (await (await w.api(statusUrl)).json()) as Req;
      return r.state !== from && r.state !== 'pending' ? r : undefined;
    },
    { what: `trigger ${statusUrl} settled` },
  );

describe('workflow triggers', () => {
  it('forwards the payload to the GHL hook, retrying while it fails, and answers the same request for a repeated key', async () => {
    const h = await hook('order-paid');
    w.emu.opportunities.failHook(h.triggerId, { status: 500, times: 2 });
    const payload = { orderId: 'A-1', total: 42.5, items: [{ sku: 'x', qty: 2 }] };
    const r = await w.api(`/v1/locations/${w.locationId}/triggers/order-paid`, {
      method: 'POST',
      headers: { 'idempotency-key': 'order-A-1' },
      json: payload,
    });
    expect(r.status).toBe(202);
    const accepted = (await r.json()) as Req;
    expect(accepted).toMatchObject({ state: 'pending', idempotencyKey: 'order-A-1', duplicate: false });

    const done = await settled(accepted.statusUrl);
    expect(done).toMatchObject({ state: 'delivered', attempts: 3, lastStatus: 200, lastError: null });
    const got = w.emu.opportunities.hook(h.triggerId).received;
    expect(got.map((g) => g.status)).toEqual([500, 500, 200]);
    expect(got.at(-1)!.body).toEqual(payload);

    // Same key, same body (keys in another order): the stored request again, nothing forwarded twice.
    const again = await w.api(`/v1/locations/${w.locationId}/triggers/order-paid`, {
      method: 'POST',
      headers: { 'idempotency-key': 'order-A-1' },
      json: { items: [{ qty: 2, sku: 'x' }], total: 42.5, orderId: 'A-1' },
    });
    expect(again.status).toBe(202);
    expect(await again.json()).toMatchObject({ id: accepted.id, state: 'delivered', duplicate: true });
    // Same key in the body field, another body: 409 naming the key; nothing stored.
    const conflict = await w.api(`/v1/locations/${w.locationId}/triggers/order-paid`, {
      method: 'POST',
      json: { idempotencyKey: 'order-A-1', orderId: 'A-2' },
    });
    expect(conflict.status).toBe(409);
    expect(((await conflict.json()) as { message: string }).message).toMatch(/order-A-1/);
    const rows = await w.bridge.ctx.db.selectFrom('trigger_requests').select('id').execute();
    expect(rows).toHaveLength(1);
    expect(w.emu.opportunities.hook(h.triggerId).received).toHaveLength(3);

    // Metrics: accepted once (the repeat and the conflict are not), two failed attempts retried, then forwarded.
    expect(await triggers('order-paid', 'accepted')).toBe(1);
    expect(await triggers('order-paid', 'retried')).toBe(2);
    expect(await triggers('order-paid', 'forwarded')).toBe(1);
    expect(await triggers('order-paid', 'failed')).toBe(0);
    expect(await metric('ghl_bridge_trigger_forward_seconds_count', { outcome: 'error' })).toBeGreaterThanOrEqual(2);
    // /v1 is a hot path: its requests are counted in the request metrics, not logged one line each (#16 item 2).
    expect(
      await metric('ghl_bridge_http_requests_total', { route: '/v1/locations/:locationId/triggers/:name' }),
    ).toBeGreaterThanOrEqual(3);
    const requestLines = logs.lines.filter(
      (l) =>
        (l.msg === 'incoming request' || l.msg === 'request completed') &&
        JSON.stringify(l).includes('/triggers/order-paid'),
    );
    expect(requestLines).toEqual([]);
  });

  it('gives up after TRIGGER_MAX_ATTEMPTS and at once on a 404, dead with the reason', async () => {
    const h = await hook('lead-new');
    w.emu.opportunities.failHook(h.triggerId, { status: 503, times: Infinity });
    const r = await w.api(`/v1/locations/${w.locationId}/triggers/lead-new`, { method: 'POST', json: { lead: 1 } });
    const dead = await settled(((await r.json()) as Req).statusUrl);
    expect(dead).toMatchObject({ state: 'dead', attempts: 4, lastStatus: 503 });
    expect(dead.lastError).toMatch(/HTTP 503/);
    await waitFor(async () => (await triggers('lead-new', 'failed')) === 1, { what: 'failed counted' });
    expect(await triggers('lead-new', 'retried')).toBe(3); // the 4th failure is the last: failed, not retried

    // An operator retries the dead job once GHL is back: delivered.
    w.emu.opportunities.failHook(h.triggerId, { status: 200, times: 0 });
    expect(await retryJobs(w.bridge.ctx.db, { allDead: true, kind: JOB_TRIGGER })).toBe(1);
    w.bridge.ctx.queue.notify();
    expect(await settled(dead.statusUrl, 'dead')).toMatchObject({ state: 'delivered', attempts: 5 });

    // A hook that no longer exists (workflow deleted): 404 is final after one attempt.
    const gone = w.emu.opportunities.createHook(w.locationId, w.emu.baseUrl);
    const url = gone.url.replace(gone.triggerId, '00000000-0000-4000-8000-000000000000');
    await w.admin(`/admin/triggers/${w.locationId}/gone`, { method: 'PUT', json: { url } });
    const r2 = await w.api(`/v1/locations/${w.locationId}/triggers/gone`, { method: 'POST', json: {} });
    const dead2 = await settled(((await r2.json()) as Req).statusUrl);
    expect(dead2).toMatchObject({ state: 'dead', attempts: 1, lastStatus: 404 });
    expect(dead2.lastError).toMatch(/refused/);
    await waitFor(async () => (await triggers('gone', 'failed')) === 1, { what: 'failed counted' });
    expect(await triggers('gone', 'retried')).toBe(0); // a 404 is final
    expect(await triggers('lead-new', 'forwarded')).toBe(1);
  });

  it('refuses unknown triggers, bad URLs, missing or foreign keys; lists URLs masked', async () => {
    const h = await hook('masked');
    const list = await w.admin(`/admin/triggers?locationId=${w.locationId}`);
    const text = await list.text();
    expect(text).toContain('masked');
    expect(text).not.toContain(h.triggerId);
    expect(text).toContain(`****${h.triggerId.slice(-4)}`);

    const before = (await w.bridge.ctx.db.selectFrom('trigger_requests').select('id').execute()).length;
    const unknown = await w.api(`/v1/locations/${w.locationId}/triggers/nope`, { method: 'POST', json: { a: 1 } });
    expect(unknown.status).toBe(404);
    expect(
      await w.api(`/v1/locations/${w.locationId}/triggers/masked`, { method: 'POST', json: {}, as: null }),
    ).toHaveProperty('status', 401);
    const other = await w.bridge.ctx.services
      .get('apiKeys')
      .create({ name: 'other', locationIds: [w.otherLocationId] });
    expect(
      await w.api(`/v1/locations/${w.locationId}/triggers/masked`, { method: 'POST', json: {}, as: other.key }),
    ).toHaveProperty('status', 403);
    expect((await w.bridge.ctx.db.selectFrom('trigger_requests').select('id').execute()).length).toBe(before);

    const del = await w.admin(`/admin/triggers/${w.locationId}/masked`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await (await w.admin(`/admin/triggers?locationId=${w.locationId}`)).text()).not.toContain('"masked"');
    expect((await w.admin(`/admin/triggers/${w.locationId}/masked`, { method: 'DELETE' })).status).toBe(404);

    const bad = await w.admin(`/admin/triggers/${w.locationId}/x`, {
      method: 'PUT',
      json: { url: 'https://example.com/not-a-hook' },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { details: Array<{ path: string }> }).details[0]!.path).toBe('body.url');
  });

  it('the admin API lists trigger calls (newest first, filtered by state and name) without payloads', async () => {
    const all = (await (await w.admin(`/admin/api/trigger-requests?locationId=${w.locationId}`)).json()) as {
      requests: Array<Req & { name: string; locationId: string }>;
    };
    const stored = await w.bridge.ctx.db.selectFrom('trigger_requests').select(['id', 'state']).execute();
    expect(all.requests.map((r) => r.id)).toEqual(stored.map((r) => Number(r.id)).sort((a, b) => b - a));
    expect(JSON.stringify(all)).not.toContain('orderId'); // no payloads
    const dead = (await (await w.admin('/admin/api/trigger-requests?state=dead&name=gone')).json()) as {
      requests: Req[];
    };
    expect(dead.requests).toHaveLength(1);
    expect(dead.requests[0]).toMatchObject({ state: 'dead', attempts: 1, lastStatus: 404 });
    const bad = await w.admin('/admin/api/trigger-requests?state=lost');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { details: Array<{ path: string }> }).details[0]!.path).toBe('query.state');
  });

  it('re-encrypts trigger URLs on key rotation and prunes delivered calls past retention, keeping dead ones', async () => {
    const db = w.bridge.ctx.db;
    const spec = w.bridge.ctx.config.TOKEN_ENCRYPTION_KEYS!;
    const h = w.emu.opportunities.createHook(w.locationId, w.emu.baseUrl);
    await setTrigger(db, parseKeyRing(spec), w.locationId, 'rotated', h.url);
    const ring2 = parseKeyRing(`${generateKeySpec('k2')},${spec}`);
    expect(await rotateTriggerKeys(db, ring2)).toBeGreaterThanOrEqual(1);
    expect(await rotateTriggerKeys(db, ring2)).toBe(0);
    const keyIds = await db.selectFrom('trigger_configs').select('key_id').execute();
    expect(new Set(keyIds.map((k) => k.key_id))).toEqual(new Set(['k2']));

    const states = async () =>
      (await db.selectFrom('trigger_requests').select('state').execute()).map((r) => r.state).sort();
    expect(await states()).toContain('delivered');
    expect(await prunePipelines(db, 1)).toBe(0); // nothing old enough yet
    await sql`update trigger_requests set updated_at = now() - interval '2 days'`.execute(db);
    expect(await prunePipelines(db, 1)).toBeGreaterThanOrEqual(1);
    expect(new Set(await states())).toEqual(new Set(['dead']));
  });
});
