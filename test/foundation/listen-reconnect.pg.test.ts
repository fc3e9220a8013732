import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { notifyChannel } from '../../src/infra/queue/jobs.js';
import { PG_URL, startTestBridge, waitFor, type TestBridge } from '../helpers/store.js';
import { TcpProxy } from '../webhooks/tcp-proxy.js';

let b: TestBridge | undefined;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await b?.close();
  b = undefined;
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Ready {
  detail: { listen: { used: boolean; listening: boolean; reconnects: number; lastError: string | null } };
}
const readyz = async (url: string) => (await (await fetch(`${url}/readyz`)).json()) as Ready;
const metric = async (bridge: TestBridge, name: string) =>
  (await bridge.ctx.metrics.registry.getSingleMetric(name)?.get())?.values[0]?.value;

describe('the LISTEN connection comes back after it is lost', () => {
  it('a killed LISTEN backend, then a database outage across several reconnect attempts: LISTEN is restored each time', async () => {
    const u = new URL(PG_URL);
    const proxy = new TcpProxy(u.hostname, Number(u.port || 5432));
    u.port = String(await proxy.start());
    cleanups.push(() => proxy.stop());
    b = await startTestBridge({ env: { DATABASE_URL: u.toString() } });
    const channel = await notifyChannel(b.ctx.db);
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    cleanups.push(() => admin.end());
    const listeners = async () =>
      (
        await admin.query<{ pid: number }>(
          `select pid from pg_stat_activity where query = $1 and pid <> pg_backend_pid()`,
          [`listen "${channel}"`],
        )
      ).rows.map((r) => r.pid);

    const first = await waitFor(async () => (await listeners()).length === 1 && (await listeners())[0], {
      what: 'LISTEN backend',
    });
    expect((await readyz(b.url)).detail.listen).toMatchObject({ used: true, listening: true, reconnects: 0 });
    expect(await metric(b, 'ghl_bridge_listen_connected')).toBe(1);

    // 1. Kill the LISTEN backend (what a failover or an administrator does).
    await admin.query('select pg_terminate_backend($1)', [first]);
    await waitFor(async () => (await readyz(b!.url)).detail.listen.reconnects === 1, { what: 'reconnect after kill' });
    const second = await waitFor(async () => (await listeners()).find((p) => p !== first), {
      what: 'new LISTEN backend',
    });
    expect(await listeners()).toEqual([second]);

    // 2. An outage: the database refuses connections for ~4 s, so several reconnect attempts fail in a row.
    await proxy.stop();
    await waitFor(async () => (await readyz(b!.url)).detail.listen.listening === false, { what: 'LISTEN down' });
    expect(await metric(b, 'ghl_bridge_listen_connected')).toBe(0);
    expect((await readyz(b.url)).detail.listen.lastError).toBeTruthy();
    const downSince = Date.now();
    await waitFor(() => Date.now() - downSince > 4000, { what: 'outage', timeoutMs: 10_000, intervalMs: 250 });
    await proxy.start();
    await waitFor(async () => (await readyz(b!.url)).detail.listen.listening === true, {
      what: 'LISTEN back after the outage',
      timeoutMs: 40_000,
    });
    expect((await readyz(b.url)).detail.listen).toMatchObject({ listening: true, reconnects: 2, lastError: null });
    expect(await listeners()).toHaveLength(1);
    expect(await metric(b, 'ghl_bridge_listen_reconnects')).toBe(2);
  }, 60_000);
});
