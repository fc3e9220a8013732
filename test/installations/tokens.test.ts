import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { generateKeySpec, parseKeyRing, decrypt } from '../../src/infra/crypto/aes.js';
import { createGhlClient } from '../../src/platform/ghl/client.js';
import { RateLimiter } from '../../src/platform/ghl/ratelimit.js';
import { TokenVault } from '../../src/platform/installations/vault.js';
import { getJob, enqueue } from '../../src/infra/queue/index.js';
import { STORE, waitFor, quietLog } from '../helpers/store.js';
import { install, startBridge, startGhl, type BridgeWithGhl, type GhlWorld } from './harness.js';

let w: GhlWorld | undefined;
let b: BridgeWithGhl | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  b = w = undefined;
});

const DAY = 24 * 3600_000;

async function locationInstalled(locations = 2): Promise<{ w: GhlWorld; b: BridgeWithGhl; loc: string }> {
  w = await startGhl({ locations });
  b = await startBridge(w);
  const loc = w.locationIds[0]!;
  expect((await install(b, { locationId: loc })).status).toBe(200);
  return { w, b, loc };
}

describe('token vault', () => {
  it('refreshes proactively when the (shared) clock passes expiry: GHL never sees the expired token', async () => {
    const { w, b, loc } = await locationInstalled();
    await b.s.ghl.customFields.list(loc, { installation: { locationId: loc } });
    const before = (await b.s.installations.getRow(`loc:${loc}`))!;
    w.emu.clock.advance(DAY - 60_000); // inside the 5-minute refresh-ahead window
    await b.s.ghl.customFields.list(loc, { installation: { locationId: loc } });
    expect(w.observed.refreshGrants).toBe(1);
    expect(w.observed.api401).toBe(0);
    const after = (await b.s.installations.getRow(`loc:${loc}`))!;
    expect(after.refresh_count).toBe(before.refresh_count + 1);
    expect(after.expires_at!.getTime()).toBeGreaterThan(w.emu.clock.now() + DAY - 120_000);
    // The rotated refresh token was committed: a second rotation works (no invalid_grant).
    w.emu.clock.advance(DAY);
    await b.s.ghl.customFields.list(loc, { installation: { locationId: loc } });
    expect(w.observed.refreshGrants).toBe(2);
    expect(w.observed.invalidGrants).toBe(0);
  });

  it('renews an idle installation so its refresh token (a year unless used) never lapses', async () => {
    const { w, b, loc } = await locationInstalled(1);
    expect(await b.s.installations.renewIdle(30 * DAY)).toEqual({ renewed: 0, failed: 0 }); // just installed
    w.emu.clock.advance(200 * DAY); // no traffic at all
    await b.runMaintenance(); // the bridge's own task (GHL_RENEW_IDLE_TOKENS_DAYS, default 30)
    expect(w.observed.refreshGrants).toBe(1);
    // 400 days after the install its original refresh token has lapsed; the renewed one has not.
    w.emu.clock.advance(200 * DAY);
    await b.runMaintenance();
    expect(w.observed.refreshGrants).toBe(2);
    expect(w.observed.invalidGrants).toBe(0);
    expect((await b.s.installations.getRow(`loc:${loc}`))!.status).toBe('active');
    await b.s.ghl.customFields.list(loc, { installation: { locationId: loc } });
    expect(w.observed.api401).toBe(0);
  });

  it('renews at most `max` idle installations per run, longest idle first, and stops when aborted', async () => {
    w = await startGhl({ locations: 3 });
    b = await startBridge(w, { env: { GHL_RENEW_IDLE_TOKENS_DAYS: '0' } });
    for (const loc of w.locationIds) expect((await install(b, { locationId: loc })).status).toBe(200);
    const [a, bb, c] = w.locationIds.map((l) => `loc:${l}`) as [string, string, string];
    // Idle for different times: c longest, then a, then bb.
    const ago = (id: string, days: number) =>
      b!.ctx.db
        .updateTable('ghl_installations')
        .set({ refreshed_at: new Date(w!.emu.clock.now() - days * DAY) })
        .where('id', '=', id)
        .execute();
    await ago(a, 50);
    await ago(bb, 40);
    await ago(c, 60);
    const counts = async () =>
      Promise.all([a, bb, c].map(async (id) => (await b!.s.installations.getRow(id))!.refresh_count));
    const before = await counts();
    expect(await b.s.installations.renewIdle(30 * DAY, { signal: AbortSignal.abort() })).toEqual({
      renewed: 0,
      failed: 0,
    });
    expect(await b.s.installations.renewIdle(30 * DAY, { max: 2 })).toEqual({ renewed: 2, failed: 0 });
    expect((await counts()).map((n, i) => n - before[i]!)).toEqual([1, 0, 1]);
    expect(await b.s.installations.renewIdle(30 * DAY, { max: 2 })).toEqual({ renewed: 1, failed: 0 });
    expect(await b.s.installations.renewIdle(30 * DAY, { max: 2 })).toEqual({ renewed: 0, failed: 0 });
    expect(w.observed.invalidGrants).toBe(0);
  });

  it('an idle installation is lost after a year without renewal (GHL_RENEW_IDLE_TOKENS_DAYS=0)', async () => {
    w = await startGhl({ locations: 1 });
    b = await startBridge(w, { env: { GHL_RENEW_IDLE_TOKENS_DAYS: '0' } });
    const loc = w.locationIds[0]!;
    expect((await install(b, { locationId: loc })).status).toBe(200);
    w.emu.clock.advance(400 * DAY);
    await b.runMaintenance();
    expect(w.observed.refreshGrants).toBe(0);
    await expect(b.s.ghl.customFields.list(loc, { installation: { locationId: loc } })).rejects.toThrow();
    expect(w.observed.invalidGrants).toBe(1);
    expect((await b.s.installations.getRow(`loc:${loc}`))!.status).toBe('reauth_required');
  });

  it('reactive refresh once on 401 (token revoked at GHL before its expiry)', async () => {
    const { w, b, loc } = await locationInstalled();
    const row = (await b.s.installations.getRow(`loc:${loc}`))!;
    w.emu.control.revokeToken(b.s.tokenVault.open(row.id, 'access', row.access_token_enc)!);
    await b.s.ghl.customFields.list(loc, { installation: { locationId: loc } });
    expect(w.observed.api401).toBe(1);
    expect(w.observed.refreshGrants).toBe(1);
  });

  it('invalid_grant → reauth_required, jobs paused (not failed, not retried); a new install resumes them', async () => {
    const { w, b, loc } = await locationInstalled();
    let runs = 0;
    b.ctx.queue.register('test.ghl_call', async () => {
      runs++;
      await b.s.ghl.customFields.list(loc, { installation: { locationId: loc } });
    });
    const row = (await b.s.installations.getRow(`loc:${loc}`))!;
    w.emu.control.revokeToken(b.s.tokenVault.open(row.id, 'refresh', row.refresh_token_enc)!);
    w.emu.control.revokeToken(b.s.tokenVault.open(row.id, 'access', row.access_token_enc)!);
    const waiting = (
      await enqueue(b.ctx.db, {
        kind: 'test.ghl_call',
        payload: {},
        scope: `loc:${loc}`,
        runAt: new Date(Date.now() + 3600_000),
      })
    )[0]!;
    const [jobId] = await enqueue(b.ctx.db, { kind: 'test.ghl_call', payload: {}, scope: `loc:${loc}` });
    await waitFor(async () => (await getJob(b.ctx.db, jobId!))?.state === 'paused', { what: 'job paused' });
    expect((await getJob(b.ctx.db, waiting))!.state).toBe('paused');
    const inst = await b.s.installations.get(loc);
    expect(inst!.status).toBe('reauth_required');
    expect(inst!.statusReason).toMatch(/invalid_grant|refresh/i);
    expect(w.observed.invalidGrants).toBe(1);
    expect(runs).toBe(1);
    const metrics = await b.ctx.metrics.registry.metrics();
    expect(metrics).toMatch(/ghl_bridge_installation_reauth_total 1/);
    expect(metrics).toMatch(/ghl_bridge_installations\{status="reauth_required"\} 1/);
    // Further calls fail fast without hitting GHL again.
    await expect(b.s.ghl.customFields.list(loc, { installation: { locationId: loc } })).rejects.toThrow(
      /re-authorization/,
    );
    expect(w.observed.invalidGrants).toBe(1);
    // Re-install: active again, the paused job runs.
    expect((await install(b, { locationId: loc })).status).toBe(200);
    // Completed jobs are deleted (or 'done' on older queues): wait for the second run to finish.
    const open = async (id: number) =>
      ['ready', 'running', 'paused'].includes((await getJob(b.ctx.db, id))?.state ?? 'gone');
    await waitFor(async () => runs === 3 && !(await open(jobId!)) && !(await open(waiting)), {
      what: 'both jobs resumed and finished',
    });
    expect((await getJob(b.ctx.db, jobId!))?.state ?? 'gone').not.toBe('dead');
    expect((await getJob(b.ctx.db, waiting))?.state ?? 'gone').not.toBe('dead');
    expect((await b.s.installations.get(loc))!.status).toBe('active');
  });

  it('tokens are unreadable in the database without the key (and bound to their row)', async () => {
    const { b, loc } = await locationInstalled();
    const row = (await b.s.installations.getRow(`loc:${loc}`))!;
    const access = b.s.tokenVault.open(row.id, 'access', row.access_token_enc)!;
    const refresh = b.s.tokenVault.open(row.id, 'refresh', row.refresh_token_enc)!;
    const dump = JSON.stringify((await sql`select * from ghl_installations`.execute(b.ctx.db)).rows);
    expect(dump).not.toContain(access);
    expect(dump).not.toContain(refresh);
    expect(dump).not.toContain(access.slice(10, 40));
    expect(row.key_id).toBe('k1');
    expect(() =>
      decrypt(parseKeyRing(generateKeySpec('k1')), row.access_token_enc!, `ghl_installations:${row.id}:access`),
    ).toThrow(/authenticate/);
    expect(() => b.s.tokenVault.open('loc:other', 'access', row.access_token_enc)).toThrow(/authenticate/);
  });

  it("a call for location A never carries location B's token", async () => {
    w = await startGhl({ locations: 4 });
    b = await startBridge(w);
    for (const loc of w.locationIds) expect((await install(b, { locationId: loc })).status).toBe(200);
    const tokenOf = new Map<string, string>();
    for (const loc of w.locationIds) {
      const r = (await b.s.installations.getRow(`loc:${loc}`))!;
      tokenOf.set(loc, `Bearer ${b.s.tokenVault.open(r.id, 'access', r.access_token_enc)}`);
    }
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const loc = w!.locationIds[i % 4]!;
        return b!.s.ghl.customFields.list(loc, { installation: { locationId: loc } });
      }),
    );
    const calls = w.observed.calls.filter((c) => c.path.includes('/customFields'));
    expect(calls).toHaveLength(60);
    for (const c of calls) {
      const loc = /\/locations\/([^/]+)\//.exec(c.path)![1]!;
      expect(c.auth).toBe(tokenOf.get(loc));
      expect(c.status).toBe(200);
    }
  });

  it('two client stacks on one store, same expired installation → exactly one refresh', async () => {
    const { w, b, loc } = await locationInstalled();
    // A second, independent vault + limiter + client on the same database (as a second replica would have).
    const vault2 = new TokenVault({
      db: b.ctx.db,
      kind: b.ctx.store.kind,
      ring: b.s.tokenVault.ring,
      log: quietLog,
      apiBase: w.emu.baseUrl,
      clientId: w.clientId,
      clientSecret: w.clientSecret,
      now: () => w.emu.clock.now(),
    });
    const limiter2 = new RateLimiter(b.ctx.db, w.clientId);
    const client2 = createGhlClient({ apiBase: w.emu.baseUrl, tokens: vault2, limiter: limiter2, log: quietLog });
    w.emu.clock.advance(2 * DAY);
    const calls = [b.s.ghl, client2].flatMap((c) =>
      Array.from({ length: 15 }, () => c.customFields.list(loc, { installation: { locationId: loc } })),
    );
    await Promise.all(calls);
    await limiter2.close();
    expect(w.observed.refreshGrants).toBe(1);
    expect(w.observed.invalidGrants).toBe(0);
    expect(w.observed.api401).toBe(0);
  });

  if (STORE === 'postgres') {
    it('two bridge processes on one PostgreSQL hammering the same expired installation → one refresh, zero invalid_grant', async () => {
      const { w, b, loc } = await locationInstalled();
      w.emu.clock.advance(2 * DAY);
      const offset = w.emu.clock.now() - Date.now();
      const env = {
        ...process.env,
        ...w.env,
        DATABASE_URL: b.ctx.config.DATABASE_URL!,
        DATABASE_SCHEMA: b.ctx.config.DATABASE_SCHEMA,
        CLOCK_OFFSET_MS: String(offset),
        RACE_LOCATION_ID: loc,
        RACE_CALLS: '25',
      };
      const children = [0, 1].map(() =>
        spawn(process.execPath, ['--import', 'tsx', 'test/installations/race-child.ts'], {
          env,
          stdio: ['pipe', 'pipe', 'inherit'],
        }),
      );
      const outputs = children.map((c) => {
        const lines = createInterface({ input: c.stdout! });
        const ready = new Promise<void>((r) => lines.once('line', () => r()));
        const result = new Promise<string>((r) => lines.on('line', (l) => l.startsWith('{') && r(l)));
        const exited = new Promise<number | null>((r) => c.on('exit', r));
        return { ready, result, exited };
      });
      await Promise.all(outputs.map((o) => o.ready));
      for (const c of children) c.stdin!.write('go\n');
      const results = (await Promise.all(outputs.map((o) => o.result))).map(
        (l) => JSON.parse(l) as { ok: number; failed: string[] },
      );
      expect(await Promise.all(outputs.map((o) => o.exited))).toEqual([0, 0]);
      expect(results.map((r) => r.failed)).toEqual([[], []]);
      expect(results.map((r) => r.ok)).toEqual([25, 25]);
      expect(w.observed.refreshGrants).toBe(1);
      expect(w.observed.invalidGrants).toBe(0);
      expect(w.observed.api401).toBe(0);
    });
  }
});
