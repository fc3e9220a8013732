import { afterEach, describe, expect, it } from 'vitest';
import { startTestBridge, type TestBridge } from '../helpers/store.js';
import { installationsModule } from '../../src/platform/installations/index.js';
import { startBridge, startGhl, type BridgeWithGhl, type GhlWorld } from './harness.js';

let w: GhlWorld | undefined;
let b: BridgeWithGhl | TestBridge | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  b = w = undefined;
});

const JSON_ACCEPT = { accept: 'application/json' };
const BROWSER = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

describe('OAuth callback: HTML for a browser, the one JSON shape for a JSON client', () => {
  it('errors: cancelled, no code, malformed query, bad state', async () => {
    w = await startGhl();
    const bridge = await startBridge(w);
    b = bridge;
    const cases: Array<{ query: string; code: string; fields?: string[] }> = [
      { query: 'error=access_denied', code: 'install_cancelled' },
      { query: 'state=x', code: 'missing_code', fields: ['query.code'] },
      { query: `code=abc&state=${'%00'}`, code: 'Bad Request', fields: ['query.state'] },
      { query: `code=abc&state=${'s'.repeat(300)}`, code: 'Bad Request', fields: ['query.state'] },
      { query: 'code=abc&state=forged', code: 'invalid_state' },
    ];
    for (const c of cases) {
      const url = `${bridge.url}/oauth/callback?${c.query}`;
      const html = await fetch(url, { headers: BROWSER });
      expect({ q: c.query, status: html.status }).toEqual({ q: c.query, status: 400 });
      expect(html.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await html.text()).toMatch(/<h1>Install (failed|cancelled)<\/h1>/);
      // Node's fetch default (Accept: */*) is treated like a browser: HTML.
      expect((await fetch(url)).headers.get('content-type')).toMatch(/^text\/html/);

      const json = await fetch(url, { headers: JSON_ACCEPT });
      expect(json.status).toBe(400);
      expect(json.headers.get('content-type')).toMatch(/^application\/json/);
      const body = (await json.json()) as { details?: Array<{ path: string }> } & Record<string, unknown>;
      expect({ q: c.query, ...body }).toMatchObject({
        q: c.query,
        statusCode: 400,
        error: c.code,
        message: expect.any(String),
        requestId: json.headers.get('x-request-id'),
      });
      if (c.fields) expect((body.details ?? []).map((d) => d.path)).toEqual(c.fields);
    }
    expect(w.observed.codeGrants).toBe(0);
  });

  it('success: a JSON client gets the installation (no token), a browser the page', async () => {
    w = await startGhl();
    const bridge = await startBridge(w);
    b = bridge;
    const callbackFor = async (locationId: string) => {
      const r1 = await fetch(`${bridge.url}/oauth/install`, { redirect: 'manual' });
      const state = new URL(r1.headers.get('location')!).searchParams.get('state')!;
      const { code } = w!.emu.control.authorize({ clientId: w!.clientId, locationId, state });
      return `${bridge.url}/oauth/callback?code=${code}&state=${state}`;
    };
    const json = await fetch(await callbackFor(w.locationIds[0]!), { headers: JSON_ACCEPT });
    expect(json.status).toBe(200);
    const text = await json.text();
    expect(JSON.parse(text)).toEqual({
      installed: true,
      installation: {
        id: expect.any(String),
        kind: 'location',
        companyId: w.companyId,
        locationId: w.locationIds[0],
        isBulk: false,
      },
    });
    expect(text).not.toMatch(/token/i);
    const html = await fetch(await callbackFor(w.locationIds[1]!), { headers: BROWSER });
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await html.text()).toContain(`location ${w.locationIds[1]}`);
  });

  it('not configured (no GHL client): 503 page for a browser, 503 not_configured JSON otherwise', async () => {
    b = await startTestBridge({ modules: [installationsModule()] });
    const url = `${b.url}/oauth/callback?code=abc`;
    const html = await fetch(url);
    expect(html.status).toBe(503);
    expect(await html.text()).toContain('Not configured');
    const json = await fetch(url, { headers: JSON_ACCEPT });
    expect(json.status).toBe(503);
    expect(await json.json()).toMatchObject({ statusCode: 503, error: 'not_configured' });
  });
});
