import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { enqueue } from '../../src/infra/queue/index.js';
import { startTestBridge, STORE, waitFor, type TestBridge } from '../helpers/store.js';

let bridge: TestBridge | undefined;
afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
});

describe(`HTTP edge on ${STORE}`, () => {
  it('while closing, requests get 429 + Retry-After (GHL retries 429, never 503) and /readyz says draining', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let closing!: () => void;
    const closingStarted = new Promise<void>((r) => (closing = r));
    bridge = await startTestBridge({
      modules: [
        {
          name: 'hold-close',
          routes: async (app) => {
            app.post('/hold-test', async () => ({ ok: true }));
            // Keeps the listener open during the drain until the test has sent its requests.
            app.addHook('preClose', async () => {
              closing();
              await held;
            });
          },
        },
      ],
    });
    const url = bridge.url;
    expect((await fetch(`${url}/hold-test`, { method: 'POST' })).status).toBe(200);
    const closed = bridge.close();
    bridge = undefined;
    await closingStarted;
    // A fresh connection per request: the drain closes idle keep-alive connections as it goes.
    const once = (method: string, path: string) =>
      new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
        const req = request(`${url}${path}`, { method, agent: false }, (res) => {
          res.resume();
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    const r = await once('POST', '/hold-test');
    expect(r.status).toBe(429);
    expect(r.retryAfter).toBe('5');
    expect((await once('GET', '/readyz')).status).toBe(503);
    expect((await once('GET', '/healthz')).status).toBe(200);
    release();
    await closed;
  });

  it('answers health, readiness and Prometheus metrics including queue depth by state', async () => {
    bridge = await startTestBridge({
      modules: [
        {
          name: 'test-jobs',
          init: (ctx) => {
            ctx.queue.register('noop', async () => {});
          },
        },
      ],
    });
    expect((await fetch(`${bridge.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${bridge.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { database: null, migrations: null, workers: null },
      detail: { listen: { used: true, listening: true, reconnects: 0, lastError: null } },
    });
    await enqueue(bridge.ctx.db, [
      { kind: 'noop', payload: {} },
      { kind: 'noop', payload: {} },
    ]);
    await waitFor(async () =>
      /ghl_bridge_job_duration_seconds_count\{kind="noop",outcome="done"\} 2/.test(
        await (await fetch(`${bridge!.url}/metrics`)).text(),
      ),
    );
    await bridge.ctx.queue.drained();
    const metrics = await (await fetch(`${bridge.url}/metrics`)).text();
    expect(metrics).toContain('ghl_bridge_jobs{state="ready"} 0');
    expect(metrics).toContain('ghl_bridge_http_requests_total{method="GET",route="/readyz",status="200"} 1');
    expect(metrics).toMatch(/ghl_bridge_job_duration_seconds_count\{kind="noop",outcome="done"\} 2/);
  });

  it('echoes or assigns request ids, limits body size and answers unknown routes with a clear 404', async () => {
    bridge = await startTestBridge({
      env: { BODY_LIMIT_BYTES: '2048' },
      modules: [{ name: 'echo', routes: (app) => void app.post('/echo', async (req) => ({ got: req.body })) }],
    });
    const withId = await fetch(`${bridge.url}/healthz`, { headers: { 'x-request-id': 'abc-123' } });
    expect(withId.headers.get('x-request-id')).toBe('abc-123');
    expect((await fetch(`${bridge.url}/healthz`)).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const big = await fetch(`${bridge.url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ x: 'a'.repeat(4096) }),
    });
    expect(big.status).toBe(413);
    const small = await fetch(`${bridge.url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"x":1}',
    });
    expect(await small.json()).toEqual({ got: { x: 1 } });
    const missing = await fetch(`${bridge.url}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { message: string }).message).toBe('no route for GET /nope');
  });

  it('reports not ready once stopped (readiness fails while the database is closed)', async () => {
    bridge = await startTestBridge();
    await bridge.ctx.queue.stop(100);
    const r = await fetch(`${bridge.url}/readyz`);
    expect(r.status).toBe(503);
    expect(((await r.json()) as { checks: { workers: string } }).checks.workers).toBe('not running');
  });
});
