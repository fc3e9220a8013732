import { afterEach, describe, expect, it } from 'vitest';
import { captureLog, waitFor } from '../helpers/store.js';
import { ADMIN, startBridge, startWorld, type ProviderBridge, type World } from '../provider/harness.js';
import { events, makeSigner, post } from './helpers.js';

const s = makeSigner();
let w: World | undefined;
let b: ProviderBridge | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  b = w = undefined;
});

async function start() {
  const cap = captureLog('info');
  w = await startWorld();
  b = await startBridge(w, {
    log: () => cap.log,
    env: { WEBHOOK_EXTRA_ED25519_KEYS: s.edPublicPem.replace(/\n/g, '\\n') },
  });
  return { cap, b, w };
}

const nested = (depth: number) => `{"type":"ContactCreate","a":${'['.repeat(depth)}${']'.repeat(depth)}}`;

describe('hostile input gets a 4xx, never a 500 or an error-level log line', () => {
  it('deeply nested JSON: unsigned or mis-signed → 401 (nothing re-serialised); signed → stored dead; shallow nesting still works', async () => {
    const { cap, b } = await start();
    const deep = nested(50_000);
    for (const url of [`${b.url}/webhooks/ghl`, `${b.url}/webhooks/ghl/provider`]) {
      expect((await post(url, deep)).status).toBe(401);
      expect((await post(url, deep, { 'x-ghl-signature': s.ed('something else') })).status).toBe(401);
      expect((await post(url, deep, { 'x-wh-signature': s.rsa('something else') })).status).toBe(401);
    }
    // Signed by a trusted key: kept (dead, with the reason), like any other signed but unusable body.
    const r = await post(`${b.url}/webhooks/ghl`, deep, { 'x-ghl-signature': s.ed(deep) });
    expect(r.status).toBe(200);
    const row = await waitFor(async () => (await events(b.ctx.db)).find((e) => e.status === 'dead'), {
      what: 'dead event',
    });
    expect(row.reason).toMatch(/nested deeper than 64 levels/);
    // 60 levels is within the bound and goes through normally.
    const ok = nested(60);
    expect((await post(`${b.url}/webhooks/ghl`, ok, { 'x-ghl-signature': s.ed(ok) })).status).toBe(200);
    expect(cap.errors()).toEqual([]);
  });

  it('NUL, control characters, odd bytes and over-long ids in path parameters → 400 naming the parameter, before any work', async () => {
    const { cap, b } = await start();
    const bad = ['%00', 'a%00b', '%0a', '%ff', 'x'.repeat(65), 'a%20b', "a'b", '%E2%80%AE', 'a.b'];
    for (const id of bad) {
      const r = await fetch(`${b.url}/channels/${id}/inbound`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(r.status, id).toBe(400);
      // The one error shape, naming the parameter (or Fastify's own refusal of an undecodable path).
      const text = await r.text();
      expect(text, id).toMatch(/"path":"params\.locationId"|is not a valid url component/);
      const a = await fetch(`${b.url}/admin/channels/${id}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect(a.status, `admin ${id}`).toBe(400);
    }
    const cb = await fetch(`${b.url}/oauth/callback?code=abc&state=%00`);
    expect(cb.status).toBe(400);
    expect(cap.errors()).toEqual([]);
  });
});
