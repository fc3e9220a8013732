import { afterEach, describe, expect, it } from 'vitest';
import { bridgeModules } from '../../src/modules.js';
import { startTestBridge, testConfig, type TestBridge } from '../helpers/store.js';

const KEY = 'admin-scope-test-key-0123456789abcdef';
let bridge: TestBridge | undefined;
afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
});

/** A concrete URL for a route pattern (path parameters filled with a valid id). */
const concrete = (url: string) => url.replace(/:[A-Za-z]+/g, 'x1');

describe('one guarded admin scope (#11 item 5)', () => {
  it('every route of every module under /admin refuses a missing or wrong key with the one error shape', async () => {
    const cfg = testConfig({ ADMIN_API_KEY: KEY });
    bridge = await startTestBridge({ config: cfg, modules: await bridgeModules(cfg) });
    const routes = bridge.adminRouteTable;
    // The table is not empty and holds each module's admin API (so a module that escapes the scope is noticed).
    for (const prefix of ['/admin/webhooks/', '/admin/channels', '/admin/provider/', '/admin/api/'])
      expect(routes.some((r) => r.url.startsWith(prefix))).toBe(true);
    for (const r of routes) {
      expect(r.url.startsWith('/admin')).toBe(true);
      for (const auth of [undefined, 'Bearer wrong-key', `Basic ${KEY}`]) {
        const res = await fetch(bridge.url + concrete(r.url), {
          method: r.method,
          headers: {
            ...(auth ? { authorization: auth } : {}),
            ...(r.method === 'GET' || r.method === 'DELETE' ? {} : { 'content-type': 'application/json' }),
          },
          ...(r.method === 'GET' || r.method === 'DELETE' ? {} : { body: '{}' }),
        });
        expect({ route: `${r.method} ${r.url}`, auth, status: res.status }).toEqual({
          route: `${r.method} ${r.url}`,
          auth,
          status: 401,
        });
        const body = (await res.json()) as Record<string, unknown>;
        expect(body).toMatchObject({
          statusCode: 401,
          error: 'Unauthorized',
          requestId: res.headers.get('x-request-id'),
        });
        expect(typeof body.message).toBe('string');
        expect(JSON.stringify(body)).not.toContain(KEY);
      }
    }
    // With the key the same routes are reachable (not 401).
    const overview = await fetch(`${bridge.url}/admin/api/overview`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(overview.status).toBe(200);
  });

  it('the /admin page is the console shell served without a key and holds no data; without ADMIN_API_KEY the admin API does not exist', async () => {
    const cfg = testConfig({ ADMIN_API_KEY: KEY });
    bridge = await startTestBridge({ config: cfg, modules: await bridgeModules(cfg) });
    const page = await fetch(`${bridge.url}/admin`);
    expect(page.status).toBe(200);
    const html = await page.text();
    // The console's shell: a root element and its bundled script; the log-in form is drawn by the script.
    expect(html).toMatch(/<div id="root"><\/div>/);
    expect(html).toMatch(/<script type="module"[^>]+src="\/admin\/assets\//);
    expect(html).not.toContain(KEY);
    await bridge.close();
    const open = testConfig({});
    bridge = await startTestBridge({ config: open, modules: await bridgeModules(open) });
    expect(bridge.adminRouteTable).toEqual([]);
    expect((await fetch(`${bridge.url}/admin/api/overview`)).status).toBe(404);
  });
});
