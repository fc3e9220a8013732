import { afterEach, describe, expect, it } from 'vitest';
import type { BridgeModule } from '../../src/app.js';
import { bridgeModules } from '../../src/modules.js';
import { dashboardModule } from '../../src/console/index.js';
import { maskSecrets, MASK } from '../../src/console/mask.js';
import { AdminSessions } from '../../src/infra/http/admin-auth.js';
import { enqueue, getJob, PermanentJobError } from '../../src/infra/queue/index.js';
import { createBridge } from '../../src/app.js';
import {
  quietLog,
  startTestBridge,
  STORE,
  tempDataDir,
  testConfig,
  waitFor,
  type TestBridge,
} from '../helpers/store.js';

const KEY = 'console-test-key-0123456789abcdef';
let bridge: TestBridge | undefined;
afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
});

async function start(env: Record<string, string> = {}, extra: BridgeModule[] = []) {
  const cfg = testConfig({ ADMIN_API_KEY: KEY, ...env });
  const mods = (await bridgeModules(cfg)).map((m) =>
    m.name === 'dashboard' ? dashboardModule({ loginPerMinute: 5 }) : m,
  );
  bridge = await startTestBridge({ config: cfg, modules: [...mods, ...extra] });
  return bridge;
}

const login = (url: string, key: string) =>
  fetch(`${url}/admin/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
  });
const cookieOf = (r: Response) => r.headers.get('set-cookie')!.split(';')[0]!;

describe(`console session on ${STORE}`, () => {
  it('logs in with the admin key (cookie attributes), guards mutations with CSRF, keeps bearer, logs out', async () => {
    let broken = true;
    const b = await start({}, [
      {
        name: 'flaky',
        init: (ctx) => {
          ctx.queue.register('test.flaky', async () => {
            if (broken) throw new PermanentJobError('upstream said no');
          });
        },
      },
    ]);
    const page = await fetch(`${b.url}/admin`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await page.text();
    expect(html).not.toMatch(/<script>(?!<\/script>)|<script(?![^>]*\bsrc=)[^>]*>/);
    const asset = /src="(\/admin\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const js = await fetch(`${b.url}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('javascript');

    expect((await login(b.url, 'wrong-key-wrong-key')).status).toBe(401);
    const ok = await login(b.url, KEY);
    expect(ok.status).toBe(200);
    const setCookie = ok.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).toMatch(/Expires=/i);
    expect(setCookie).not.toMatch(/Secure/i); // PUBLIC_URL is http here
    expect(setCookie).not.toContain(KEY);
    const { csrfToken } = (await ok.json()) as { csrfToken: string };
    const cookie = cookieOf(ok);

    const s = await fetch(`${b.url}/admin/api/session`, { headers: { cookie } });
    expect(await s.json()).toMatchObject({ authenticatedBy: 'session', csrfToken });

    const [id] = await enqueue(b.ctx.db, { kind: 'test.flaky', payload: { token: 'very-secret-value', n: 1 } });
    b.ctx.queue.notify();
    await waitFor(async () => (await getJob(b.ctx.db, id!))?.state === 'dead');
    const dead = (await (await fetch(`${b.url}/admin/api/jobs?state=dead`, { headers: { cookie } })).json()) as {
      jobs: Array<{ id: number }>;
    };
    expect(dead.jobs.map((j) => j.id)).toEqual([id]);
    const detail = (await (await fetch(`${b.url}/admin/api/jobs/${id}`, { headers: { cookie } })).json()) as {
      payload: Record<string, unknown>;
    };
    expect(detail.payload).toEqual({ token: MASK, n: 1 });

    const retry = (headers: Record<string, string>) =>
      fetch(`${b.url}/admin/api/jobs/retry`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ ids: [id] }),
      });
    expect((await retry({ cookie })).status).toBe(403);
    expect((await retry({ cookie, 'x-csrf-token': 'forged' })).status).toBe(403);
    broken = false;
    expect(await (await retry({ cookie, 'x-csrf-token': csrfToken })).json()).toEqual({ retried: 1 });
    await waitFor(async () => (await getJob(b.ctx.db, id!)) === undefined, { what: 'retried job done' });
    // The bearer key still works (CLI, scripts) and needs no CSRF token.
    expect((await retry({ authorization: `Bearer ${KEY}` })).status).toBe(200);
    // A cookie with a wrong signature is refused.
    expect(
      (await fetch(`${b.url}/admin/api/session`, { headers: { cookie: cookie.slice(0, -2) + 'xx' } })).status,
    ).toBe(401);

    expect((await fetch(`${b.url}/admin/logout`, { method: 'POST', headers: { cookie } })).status).toBe(403);
    const out = await fetch(`${b.url}/admin/logout`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': csrfToken },
    });
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toMatch(/ghlb_session=;/);
    expect((await fetch(`${b.url}/admin/api/session`, { headers: { cookie } })).status).toBe(401);
  });

  it('a log-out holds on every replica and after a restart (kept in the store, not in one process)', async () => {
    const dataDir = STORE === 'pglite' ? tempDataDir() : undefined;
    const cfg = testConfig({ ADMIN_API_KEY: KEY });
    // Replica A: a plain bridge (its close leaves the store alone); B: a test bridge, which drops the schema at close.
    const a = await createBridge(cfg, {
      log: quietLog,
      modules: await bridgeModules(cfg),
      dataDir: dataDir ?? 'memory://',
    });
    const aUrl = await a.listen(0);
    let aOpen = true;
    const openB = async () =>
      (bridge = await startTestBridge({
        config: cfg,
        modules: await bridgeModules(cfg),
        ...(dataDir ? { dataDir } : {}),
      }));
    try {
      const res = await login(aUrl, KEY);
      const cookie = cookieOf(res);
      const { csrfToken } = (await res.json()) as { csrfToken: string };
      const asCookie = (url: string) => fetch(`${url}/admin/api/overview`, { headers: { cookie } });
      // PostgreSQL: a second replica on the same schema, both running. PGlite (one process per store): a restart.
      const b = STORE === 'postgres' ? await openB() : undefined;
      if (b) expect((await asCookie(b.url)).status).toBe(200);
      expect((await asCookie(aUrl)).status).toBe(200);
      const out = await fetch(`${aUrl}/admin/logout`, {
        method: 'POST',
        headers: { cookie, 'x-csrf-token': csrfToken },
      });
      expect(out.status).toBe(200);
      expect((await asCookie(aUrl)).status).toBe(401);
      let other = b;
      if (!other) {
        await a.close();
        aOpen = false;
        other = await openB();
      }
      expect((await asCookie(other.url)).status).toBe(401);
      // A new log-in still works there.
      expect((await login(other.url, KEY)).status).toBe(200);
    } finally {
      if (aOpen) await a.close();
    }
  });

  it('rate-limits log-in attempts, the right key included', async () => {
    const b = await start({ PUBLIC_URL: 'https://bridge.example.test' });
    const codes: number[] = [];
    // A forged X-Forwarded-For does not buy a fresh budget.
    for (let i = 0; i < 6; i++)
      codes.push(
        (
          await fetch(`${b.url}/admin/login`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-forwarded-for': `203.0.113.${i}` },
            body: JSON.stringify({ key: 'wrong-key-' + i }),
          })
        ).status,
      );
    expect(codes).toEqual([401, 401, 401, 401, 401, 429]);
    // Even the right key waits out the window.
    expect((await login(b.url, KEY)).status).toBe(429);
  });

  it('sets Secure on the cookie when PUBLIC_URL is https', async () => {
    const b = await start({ PUBLIC_URL: 'https://bridge.example.test' });
    const r = await login(b.url, KEY);
    expect(r.headers.get('set-cookie')).toMatch(/; Secure/i);
  });
});

describe(`console time series on ${STORE}`, () => {
  it('streams samples over server-sent events and ends the stream when the bridge closes', async () => {
    const cfg = testConfig({ ADMIN_API_KEY: KEY });
    const mods = (await bridgeModules(cfg)).map((m) =>
      m.name === 'dashboard' ? dashboardModule({ sampleMs: 100 }) : m,
    );
    const b = (bridge = await startTestBridge({ config: cfg, modules: mods }));
    const auth = { authorization: `Bearer ${KEY}` };
    const h = (await (await fetch(`${b.url}/admin/api/history`, { headers: auth })).json()) as {
      intervalMs: number;
      samples: Array<{ queue: Record<string, number> }>;
    };
    expect(h.intervalMs).toBe(100);
    expect(h.samples.length).toBeGreaterThanOrEqual(1);
    expect(h.samples[0]!.queue).toHaveProperty('dead');
    expect((await fetch(`${b.url}/admin/api/stream`)).status).toBe(401);
    const res = await fetch(`${b.url}/admin/api/stream`, { headers: auth });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!/event: sample\ndata: \{.*\}\n\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    const sample = JSON.parse(/data: (\{.*\})/.exec(text)![1]!) as { t: number; relayedPerMin: number };
    expect(sample.relayedPerMin).toBe(0);
    // Closing the bridge ends the open stream (it does not hold shutdown up).
    await b.close();
    bridge = undefined;
    for (;;) if ((await reader.read()).done) break;
  });
});

describe('console sessions and masking (units)', () => {
  it('expires sessions and rejects forged ones', () => {
    let now = 1_000_000;
    const s = new AdminSessions('k'.repeat(32), 60_000, () => now);
    const { cookie, session } = s.issue();
    expect(s.verify(cookie)?.csrf).toBe(session.csrf);
    expect(new AdminSessions('other-key'.repeat(4), 60_000, () => now).verify(cookie)).toBeUndefined();
    const [sid, , mac] = cookie.split('.');
    expect(s.verify(`${sid}.${now + 10_000_000}.${mac}`)).toBeUndefined();
    now += 60_001;
    expect(s.verify(cookie)).toBeUndefined();
  });

  it('masks secrets by key and by shape', () => {
    expect(
      maskSecrets({
        phone: '+15550100',
        config: { apiKey: 'abc', webhookSecret: 'xyz', url: 'https://x' },
        list: ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig', 'v1.k1.QUJDREVGR0hJSktMTU5PUFFSU1Q='],
        auth: 'Bearer abc',
      }),
    ).toEqual({
      phone: '+15550100',
      config: { apiKey: MASK, webhookSecret: MASK, url: 'https://x' },
      list: [MASK, MASK],
      auth: MASK,
    });
  });
});
