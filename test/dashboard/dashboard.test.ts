import { afterEach, describe, expect, it } from 'vitest';
import { bridgeModules } from '../../src/modules.js';
import { enqueue, getJob, PermanentJobError } from '../../src/infra/queue/index.js';
import { startTestBridge, STORE, testConfig, waitFor, type TestBridge } from '../helpers/store.js';

const KEY = 'dashboard-test-key-0123456789abcdef';
let bridge: TestBridge | undefined;
afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
});

describe(`ops dashboard on ${STORE}`, () => {
  it('serves the page, guards the API with the admin key, lists dead jobs and retries them', async () => {
    let broken = true;
    const cfg = testConfig({ ADMIN_API_KEY: KEY });
    bridge = await startTestBridge({
      config: cfg,
      modules: [
        ...(await bridgeModules(cfg)),
        {
          name: 'flaky-test-jobs',
          init: (ctx) => {
            ctx.queue.register('test.flaky', async () => {
              if (broken) throw new PermanentJobError('upstream said no');
            });
          },
        },
      ],
    });
    const page = await fetch(`${bridge.url}/admin`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
    expect((await fetch(`${bridge.url}/admin/api/overview`)).status).toBe(401);
    expect(
      (
        await fetch(`${bridge.url}/admin/api/overview`, {
          headers: { authorization: 'Bearer wrong-key-wrong-key-wrong' },
        })
      ).status,
    ).toBe(401);

    const [id] = await enqueue(bridge.ctx.db, { kind: 'test.flaky', payload: {} });
    bridge.ctx.queue.notify();
    await waitFor(async () => (await getJob(bridge!.ctx.db, id!))?.state === 'dead');
    const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const o = (await (await fetch(`${bridge.url}/admin/api/overview`, { headers: auth })).json()) as {
      jobs: { byState: Record<string, number>; dead: Array<{ id: number; lastError: string }> };
      installations: { total: number };
      mode: string;
    };
    expect(o.jobs.byState.dead).toBe(1);
    expect(o.jobs.dead[0]).toMatchObject({ id, lastError: expect.stringContaining('upstream said no') });
    expect(o.installations.total).toBe(0);

    const bad = await fetch(`${bridge.url}/admin/api/jobs/retry`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ ids: ['x'] }),
    });
    expect(bad.status).toBe(400);
    broken = false;
    const r = await fetch(`${bridge.url}/admin/api/jobs/retry`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ ids: [id] }),
    });
    expect(await r.json()).toEqual({ retried: 1 });
    await waitFor(async () => (await getJob(bridge!.ctx.db, id!)) === undefined, { what: 'retried job completed' });
  });
});
