import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../src/app.js';
import { bridgeModules } from '../../src/modules.js';
import { documentedBridge, OPENAPI_FILE, renderOpenApi } from '../../scripts/gen-openapi.js';
import { startTestBridge, testConfig, type TestBridge } from '../helpers/store.js';

const KEY = 'openapi-test-admin-key-0123456789abcdef';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown[]; tags?: string[] }>>;
  components?: { securitySchemes?: Record<string, unknown> };
};

describe('OpenAPI document (#17, #11 item 5)', () => {
  let gen: Bridge;
  beforeAll(async () => {
    gen = await documentedBridge();
  });
  afterAll(async () => {
    await gen.close();
  });

  it('the checked-in docs/openapi.json is the generated one (run `npm run gen:openapi` when this fails)', () => {
    expect(readFileSync(OPENAPI_FILE, 'utf8')).toBe(renderOpenApi(gen));
  });

  it('documents every registered route (HEAD and the /docs stylesheet aside) and marks the admin API as bearer-secured', () => {
    const doc = JSON.parse(renderOpenApi(gen)) as Doc;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components?.securitySchemes?.adminKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    // Static files (the /docs stylesheet, the console's hashed assets) are not API.
    const routes = gen.routeTable.filter(
      (r) => r.method !== 'HEAD' && !r.url.startsWith('/docs/') && !r.url.startsWith('/admin/assets/'),
    );
    // A full bridge: probes, docs, webhooks, OAuth, channel inbound, admin API.
    for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs', '/webhooks/ghl', '/oauth/callback'])
      expect(routes.some((r) => r.url === url)).toBe(true);
    expect(routes.filter((r) => r.url.startsWith('/admin/')).length).toBeGreaterThanOrEqual(10);
    const missing = routes.filter((r) => {
      const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      return !doc.paths[path]?.[r.method.toLowerCase()];
    });
    expect(missing).toEqual([]);
    // And nothing in the document that is not a route.
    const documented = Object.entries(doc.paths).flatMap(([p, item]) =>
      Object.keys(item)
        .filter((m) => METHODS.includes(m))
        .map((m) => `${m.toUpperCase()} ${p}`),
    );
    expect(documented.length).toBe(routes.length);
    for (const r of gen.adminRouteTable) {
      const op = doc.paths[r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]![r.method.toLowerCase()]!;
      expect({ route: `${r.method} ${r.url}`, security: op.security }).toEqual({
        route: `${r.method} ${r.url}`,
        security: [{ adminKey: [] }],
      });
    }
    // Every operation of the public /v1 API (chat, calls, triggers, opportunities, …) takes an API key.
    const v1 = routes.filter((r) => r.url.startsWith('/v1/'));
    expect(v1.length).toBeGreaterThanOrEqual(10);
    expect(doc.components?.securitySchemes?.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const r of v1) {
      const op = doc.paths[r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]![r.method.toLowerCase()]!;
      expect({ route: `${r.method} ${r.url}`, security: op.security }).toEqual({
        route: `${r.method} ${r.url}`,
        security: [{ apiKey: [] }, { adminKey: [] }],
      });
    }
    // Public routes carry no security requirement.
    expect(doc.paths['/healthz']!.get!.security).toBeUndefined();
    expect(doc.paths['/channels/{locationId}/inbound']!.post!.security).toBeUndefined();
  });
});

describe('served document and reference page', () => {
  let bridge: TestBridge | undefined;
  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
  });

  it('GET /openapi.json and GET /docs answer without the admin key; the page lists operations, loads no script and no CDN', async () => {
    const cfg = testConfig({ ADMIN_API_KEY: KEY });
    bridge = await startTestBridge({ config: cfg, modules: await bridgeModules(cfg) });
    const res = await fetch(`${bridge.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const doc = (await res.json()) as Doc;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/admin/channels/{locationId}']?.put?.security).toEqual([{ adminKey: [] }]);
    expect(JSON.stringify(doc)).not.toContain(KEY);

    const page = await fetch(`${bridge.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing loaded from elsewhere
    expect(html).toContain('/admin/webhooks/replay');
    expect(html).toContain('/channels/{locationId}/inbound');
    const css = html.match(/<link rel="stylesheet" href="([^"]+)"/)?.[1];
    expect(css).toBeDefined();
    const sheet = await fetch(`${bridge.url}${css}`);
    expect(sheet.status).toBe(200);
    expect(sheet.headers.get('content-type')).toMatch(/text\/css/);
  });

  it('a bridge without ADMIN_API_KEY documents no admin API', async () => {
    const cfg = testConfig({});
    bridge = await startTestBridge({ config: cfg, modules: await bridgeModules(cfg) });
    const doc = (await (await fetch(`${bridge.url}/openapi.json`)).json()) as Doc;
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/admin/'))).toEqual([]);
    expect(Object.keys(doc.paths)).toContain('/webhooks/ghl');
  });
});
