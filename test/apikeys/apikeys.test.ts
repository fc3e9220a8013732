import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { BridgeModule } from '../../src/app.js';
import { bridgeModules } from '../../src/modules.js';
import { ApiKeyService } from '../../src/platform/apikeys/index.js';
import { openDatabase } from '../../src/infra/db/index.js';
import { openTestStore, PG_URL, startTestBridge, STORE, testConfig, type TestBridge } from '../helpers/store.js';

const run = promisify(execFile);
const ADMIN = 'apikeys-test-admin-key-0123456789abcdef';
let bridge: TestBridge | undefined;
afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
});

/** A /v1 route guarded like the capability modules guard theirs (the location in the path). */
const probe: BridgeModule = {
  name: 'probe',
  routes(app, ctx) {
    const keys = ctx.services.get('apiKeys');
    app.get(
      '/v1/locations/:locationId/probe',
      {
        preValidation: keys.requireLocation((req: FastifyRequest) => (req.params as { locationId: string }).locationId),
      },
      async (req) => ({ keyId: req.apiPrincipal?.keyId ?? null }),
    );
  },
};

describe('API keys of the /v1 API', () => {
  it('a key is shown once, stored hashed, scoped to its locations, and refused once revoked; the admin key passes', async () => {
    const cfg = testConfig({ ADMIN_API_KEY: ADMIN });
    bridge = await startTestBridge({ config: cfg, modules: [...(await bridgeModules(cfg)), probe] });
    const admin = (path: string, init: RequestInit = {}) =>
      fetch(bridge!.url + path, {
        ...init,
        headers: {
          authorization: `Bearer ${ADMIN}`,
          ...(init.body ? { 'content-type': 'application/json' } : {}),
        },
      });

    const created = await admin('/admin/api-keys', {
      method: 'POST',
      body: JSON.stringify({ name: 'vcx', locationIds: ['LOC1', 'LOC2'] }),
    });
    expect(created.status).toBe(201);
    const { id, key } = (await created.json()) as { id: string; key: string };
    expect(key).toMatch(/^gbk_[A-Za-z0-9_-]{43}$/);

    const listed = await (await admin('/admin/api-keys')).text();
    expect(listed).toContain(id);
    expect(listed).toContain(key.slice(0, 12));
    expect(listed).not.toContain(key);
    // Only the hash is kept: no column holds the key.
    const rows = await bridge.ctx.db.selectFrom('api_keys').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(key);

    const probeAs = (loc: string, auth?: string) =>
      fetch(`${bridge!.url}/v1/locations/${loc}/probe`, { headers: auth ? { authorization: auth } : {} });
    const ok = await probeAs('LOC2', `Bearer ${key}`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ keyId: id });

    const other = await probeAs('LOC3', `Bearer ${key}`);
    expect(other.status).toBe(403);
    const otherBody = (await other.json()) as { message: string; requestId: string };
    expect(otherBody.message).toContain('LOC3');
    expect(JSON.stringify(otherBody)).not.toContain(key);

    for (const auth of [undefined, 'Bearer gbk_wrong', `Bearer ${key}x`, `Basic ${key}`]) {
      const res = await probeAs('LOC1', auth);
      expect({ auth, status: res.status }).toEqual({ auth, status: 401 });
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(await res.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
    }
    expect((await probeAs('ANY', `Bearer ${ADMIN}`)).status).toBe(200);
    // A real /v1 route checks the key before the body: an unauthenticated caller learns nothing of its schema.
    const unauth = await fetch(`${bridge.url}/v1/locations/LOC1/chat/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer gbk_wrong' },
      body: '{}',
    });
    expect(unauth.status).toBe(401);
    const wrongLoc = await fetch(`${bridge.url}/v1/locations/LOC3/chat/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: '{}',
    });
    expect(wrongLoc.status).toBe(403);

    // Bad input names the field; nothing is stored.
    const bad = await admin('/admin/api-keys', {
      method: 'POST',
      body: JSON.stringify({ name: 'x', locationIds: [] }),
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('locationIds');
    expect(await bridge.ctx.db.selectFrom('api_keys').select('id').execute()).toHaveLength(1);

    expect((await admin(`/admin/api-keys/${id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await probeAs('LOC1', `Bearer ${key}`)).status).toBe(401);
    expect((await admin(`/admin/api-keys/${id}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('ghl-bridge api-keys create | list | revoke (the CLI process) on the same store the bridge reads', async () => {
    const store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close(); // the CLI process takes the embedded store
    const env = { ...process.env, ...store.env, SANDBOX: 'true', LOG_LEVEL: 'silent' };
    const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env });
    const failed = (p: Promise<unknown>) =>
      p.then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
    try {
      const created = await cli('api-keys', 'create', '--name', 'vcx', '--location', 'LOC1', '--location', 'LOC2');
      const key = created.stdout.trim();
      expect(key).toMatch(/^gbk_/);
      const id = /created API key (key_[0-9a-f]+)/.exec(created.stderr)![1]!;
      const list = (await cli('api-keys', 'list')).stdout;
      expect(list).toContain(id);
      expect(list).toContain('LOC1,LOC2');
      expect(list).not.toContain(key);

      const bad = await failed(cli('api-keys', 'create', '--name', 'x', '--location', 'not a location'));
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/--location/);

      // The key the CLI printed authenticates against the store it wrote (the process has exited: PGlite is free).
      const h = await openDatabase(
        STORE === 'postgres'
          ? { url: PG_URL, schema: store.env.DATABASE_SCHEMA! }
          : { dataDir: store.env.DATA_DIR!, schema: store.env.DATABASE_SCHEMA! },
      );
      try {
        expect(await new ApiKeyService(h.db, undefined).authenticate(`Bearer ${key}`)).toEqual({
          keyId: id,
          locationIds: ['LOC1', 'LOC2'],
        });
      } finally {
        await h.close();
      }
      expect((await cli('api-keys', 'revoke', id)).stdout).toContain(`revoked ${id}`);
      expect((await cli('api-keys', 'list')).stdout).toMatch(new RegExp(`${id} .* revoked`));
      expect((await failed(cli('api-keys', 'revoke', id))).code).toBe(1);
    } finally {
      if (STORE === 'postgres') await store.close();
    }
  }, 90_000);

  it('the service refuses keys of other shapes without a store read, and the admin key only when configured', async () => {
    const store = await openTestStore();
    try {
      const none = new ApiKeyService(store.db, undefined);
      expect(await none.authenticate(`Bearer ${ADMIN}`)).toBeNull();
      const withAdmin = new ApiKeyService(store.db, ADMIN);
      expect(await withAdmin.authenticate(`Bearer ${ADMIN}`)).toEqual({ keyId: null, locationIds: '*' });
      const { key, id } = await withAdmin.create({ name: 'a', locationIds: ['L1', 'L1'] });
      expect(await withAdmin.authenticate(`Bearer ${key}`)).toEqual({ keyId: id, locationIds: ['L1'] });
      expect(await withAdmin.authenticate(undefined)).toBeNull();
    } finally {
      await store.close();
    }
  });
});
