import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createBridge, type Bridge } from '../../src/app.js';
import { LoopbackInbox, type LoopbackRecord } from '../../src/capabilities/channels/index.js';
import {
  EXPIRED_CODE,
  providerModule,
  type CatchupSettings,
  type ProviderService,
} from '../../src/capabilities/provider/index.js';
import type { Config } from '../../src/infra/config/index.js';
import { installationsModule } from '../../src/platform/installations/index.js';
import { webhooksModule } from '../../src/platform/webhooks/index.js';
import { dashboardModule } from '../../src/console/index.js';
import { dropSchema, quietLog, STORE, tempDataDir, testConfig, waitFor } from '../helpers/store.js';
import {
  adminPut,
  ADMIN,
  finalStatus,
  install,
  startBridge,
  startWorld,
  type ProviderBridge,
  type World,
} from './harness.js';

/**
 * Issue 12: GHL does not retry a Delivery-URL call that met a closed port, a reset or a 5xx (only 429s). Catch-up
 * reads the location's messages (GET /conversations/messages/export) and relays this provider's pending messages the
 * bridge never received — once, through the same state machine — or reports them failed when too old.
 */
let w: World | undefined;
let b: ProviderBridge | undefined;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await b?.close();
  for (const c of cleanups.splice(0).reverse()) await c();
  await w?.emu.close();
  b = w = undefined;
});

const DEAD_URL = 'http://127.0.0.1:9/unreachable';
const EXPORT = '^/conversations/messages/export';
const FAST: Partial<CatchupSettings> = { settleMs: 0 };

/** Counts channel sends per GHL messageId (the loopback inbox emits every send, even a repeated one). */
function countSends(inbox: LoopbackInbox): Map<string, number> {
  const n = new Map<string, number>();
  inbox.on('message', (r: LoopbackRecord) => n.set(r.message.messageId, (n.get(r.message.messageId) ?? 0) + 1));
  return n;
}

const providerDeliveries = (w: World, messageId: string) =>
  w.emu.control.listDeliveries({ kind: 'provider' }).filter((d) => d.payload.messageId === messageId);

/** A bridge on a store that outlives it (restarts): PGlite on disk, or a PostgreSQL schema dropped at the end. */
async function openBridge(
  world: World,
  config: Config,
  dataDir: string | undefined,
  inbox: LoopbackInbox,
  catchup: Partial<CatchupSettings>,
): Promise<{ bridge: Bridge; url: string; provider: ProviderService }> {
  const bridge = await createBridge(config, {
    log: quietLog,
    modules: [
      webhooksModule({
        extraEd25519Keys: [world.emu.keys.ed25519PublicKeyPem],
        extraRsaKeys: [world.emu.keys.rsaPublicKeyPem],
      }),
      installationsModule({ now: () => world.emu.clock.now() }),
      providerModule({ loopbackInbox: inbox, settings: { retryBaseMs: 20 }, catchup }),
    ],
    ...(dataDir ? { dataDir } : {}),
  });
  const url = await bridge.listen(0);
  world.emu.control.updateApp(world.clientId, { providerDeliveryUrl: `${url}/webhooks/ghl/provider` });
  return { bridge, url, provider: bridge.ctx.services.get('provider') };
}

describe('catch-up on provider messages GHL never delivered', () => {
  it('bridge stopped, 50 messages sent, bridge started: all 50 relayed once and delivered, no GHL retry', async () => {
    w = await startWorld({ locations: 2 });
    const config = testConfig({ JOB_POLL_MS: '50', ...w.env, PROVIDER_CATCHUP_INTERVAL_MS: '0' });
    const dataDir = STORE === 'pglite' ? tempDataDir() : undefined;
    if (config.DATABASE_URL) cleanups.push(() => dropSchema(config.DATABASE_SCHEMA));
    const inbox1 = new LoopbackInbox(10_000);
    const first = await openBridge(w, config, dataDir, inbox1, FAST);
    for (const l of w.locationIds) {
      await install(first.url, l);
      expect((await adminPut(first.url, l, { config: { kind: 'loopback', autoReply: false } })).status).toBe(200);
    }
    const c0 = w.emu.control.createContact({ locationId: w.locationIds[0]!, phone: '+15550100000' });
    const live = w.emu.control.sendMessageAsUser({
      locationId: w.locationIds[0]!,
      contactId: c0.id,
      type: 'SMS',
      message: 'before the stop',
      conversationProviderId: w!.providerId,
    });
    await waitFor(() => finalStatus(w!.emu, live.id) === 'delivered', { what: 'live message delivered' });
    const stoppedUrl = first.url;
    await first.bridge.close();

    // While the bridge is down GHL's delivery meets a closed port: one attempt, no retry.
    w.emu.control.updateApp(w.clientId, { providerDeliveryUrl: `${stoppedUrl}/webhooks/ghl/provider` });
    const contacts = w.locationIds.flatMap((l, i) =>
      [0, 1, 2].map((k) => w!.emu.control.createContact({ locationId: l, phone: `+1555020${i}${k}00` })),
    );
    const sent: string[] = [];
    for (let i = 0; i < 50; i++) {
      const c = contacts[i % contacts.length]!;
      sent.push(
        w.emu.control.sendMessageAsUser({
          locationId: c.locationId,
          contactId: c.id,
          type: 'SMS',
          message: `missed ${i}`,
          conversationProviderId: w!.providerId,
        }).id,
      );
    }
    await waitFor(() => sent.every((id) => providerDeliveries(w!, id)[0]?.state === 'failed'), {
      what: 'GHL gave up on the deliveries',
    });
    expect(sent.every((id) => finalStatus(w!.emu, id) === 'pending')).toBe(true);

    const inbox2 = new LoopbackInbox(10_000);
    const sends = countSends(inbox2);
    const second = await openBridge(w, config, dataDir, inbox2, FAST);
    cleanups.push(() => second.bridge.close());
    // The start-up run covers the downtime: nobody asks for it.
    await waitFor(() => sent.every((id) => finalStatus(w!.emu, id) === 'delivered'), {
      what: 'all 50 delivered',
      timeoutMs: 60_000,
    });
    expect(sent.every((id) => sends.get(id) === 1)).toBe(true);
    expect(sends.get(live.id)).toBeUndefined();
    for (const id of sent) expect(providerDeliveries(w, id).map((d) => d.attempts.length)).toEqual([1]);
    const rows = await second.bridge.ctx.db
      .selectFrom('provider_outbound')
      .select(['message_id', 'state', 'confirmed_by'])
      .where('message_id', 'in', sent)
      .execute();
    expect(rows).toHaveLength(50);
    expect(rows.every((r) => r.confirmed_by === 'catchup')).toBe(true);
    await waitFor(
      async () =>
        (
          await second.bridge.ctx.db
            .selectFrom('provider_outbound')
            .select('state')
            .where('message_id', 'in', sent)
            .execute()
        ).every((r) => r.state === 'done'),
      { what: 'rows done' },
    );
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    const caught = [
      ...metrics.matchAll(/ghl_bridge_provider_catchup_messages_total\{location="[^"]+",outcome="caught_up"\} (\d+)/g),
    ].reduce((s, m) => s + Number(m[1]), 0);
    expect(caught).toBe(50);
    expect(metrics).toMatch(/ghl_bridge_provider_catchup_lag_seconds\{location="/);
    // Another run finds nothing new.
    const again = await second.provider.catchUp();
    expect(again.map((r) => r.caughtUp + r.expired + r.confirmed)).toEqual([0, 0]);
  });

  it('messages missed in the last PROVIDER_CATCHUP_SETTLE_MS before the restart are caught up by the start-up run, not left to the next periodic run', async () => {
    w = await startWorld({ locations: 1 });
    // Interval 0: only the start-up run. These messages are well inside the settle window when the bridge starts.
    const config = testConfig({ JOB_POLL_MS: '50', ...w.env, PROVIDER_CATCHUP_INTERVAL_MS: '0' });
    const dataDir = STORE === 'pglite' ? tempDataDir() : undefined;
    if (config.DATABASE_URL) cleanups.push(() => dropSchema(config.DATABASE_SCHEMA));
    const settle = { settleMs: 600_000 };
    const first = await openBridge(w, config, dataDir, new LoopbackInbox(100), settle);
    const loc = w.locationIds[0]!;
    await install(first.url, loc);
    expect((await adminPut(first.url, loc, { config: { kind: 'loopback', autoReply: false } })).status).toBe(200);
    const stoppedUrl = first.url;
    await first.bridge.close();
    w.emu.control.updateApp(w.clientId, { providerDeliveryUrl: `${stoppedUrl}/webhooks/ghl/provider` });
    const ct = w.emu.control.createContact({ locationId: loc, phone: '+15550300000' });
    const sent = [0, 1, 2, 3, 4].map(
      (i) =>
        w!.emu.control.sendMessageAsUser({
          locationId: loc,
          contactId: ct.id,
          type: 'SMS',
          message: `just before the restart ${i}`,
          conversationProviderId: w!.providerId,
        }).id,
    );
    await waitFor(() => sent.every((id) => providerDeliveries(w!, id)[0]?.state === 'failed'), {
      what: 'GHL gave up on the deliveries',
    });
    const inbox = new LoopbackInbox(100);
    const sends = countSends(inbox);
    const second = await openBridge(w, config, dataDir, inbox, settle);
    cleanups.push(() => second.bridge.close());
    await waitFor(() => sent.every((id) => finalStatus(w!.emu, id) === 'delivered'), {
      what: 'the messages of the last settle window delivered by the start-up run',
      timeoutMs: 20_000,
    });
    expect(sent.map((id) => sends.get(id))).toEqual([1, 1, 1, 1, 1]);
  });

  it('a catch-up racing live deliveries (signed, and unsigned awaiting confirmation) of the same messages → one send each', async () => {
    w = await startWorld({ locations: 1 });
    b = await startBridge(w, {
      env: { PROVIDER_CATCHUP_INTERVAL_MS: '0', PROVIDER_CONFIRMATION_WAIT_MS: '600000' },
      catchup: FAST,
    });
    const loc = w.locationIds[0]!;
    expect((await adminPut(b.url, loc, { config: { kind: 'loopback', autoReply: false } })).status).toBe(200);
    const sends = countSends(b.inbox);
    const contacts = [0, 1, 2, 3].map((k) =>
      w!.emu.control.createContact({ locationId: loc, phone: `+155503000${k}` }),
    );
    const ids: string[] = [];
    // Signed deliveries, held back a little so catch-up runs find the messages while their deliveries are in flight.
    w.emu.control.delayWebhooks(1000);
    const runs: Promise<Array<{ caughtUp: number }>>[] = [];
    for (let i = 0; i < 20; i++) {
      const c = contacts[i % 4]!;
      ids.push(
        w.emu.control.sendMessageAsUser({
          locationId: loc,
          contactId: c.id,
          type: 'SMS',
          message: `race ${i}`,
          conversationProviderId: w!.providerId,
        }).id,
      );
      if (i % 5 === 4) runs.push(b.provider.catchUp({ locationId: loc }));
    }
    runs.push(b.provider.catchUp({ locationId: loc }));
    const caught = (await Promise.all(runs)).flat().reduce((n, r) => n + r.caughtUp, 0);
    expect(caught).toBeGreaterThan(0); // catch-up got there first for some: their deliveries then met an existing row
    await waitFor(() => ids.every((id) => finalStatus(w!.emu, id) === 'delivered'), {
      what: 'signed race delivered',
      timeoutMs: 30_000,
    });
    await waitFor(() => ids.every((id) => providerDeliveries(w!, id)[0]?.state === 'delivered'), {
      what: 'every live delivery answered 2xx',
    });

    // Unsigned deliveries: stored awaiting confirmation (the event is not subscribed here); the catch-up read confirms them.
    w.emu.control.delayWebhooks(0);
    w.emu.control.setSignProviderDeliveries(false);
    const token = await b.provider.tokens.current();
    w.emu.control.updateApp(w.clientId, { providerDeliveryUrl: `${b.url}/webhooks/ghl/provider/${token}` });
    const unsigned: string[] = [];
    for (let i = 0; i < 10; i++)
      unsigned.push(
        w.emu.control.sendMessageAsUser({
          locationId: loc,
          contactId: contacts[i % 4]!.id,
          type: 'SMS',
          message: `unsigned ${i}`,
          conversationProviderId: w!.providerId,
        }).id,
      );
    await waitFor(
      async () =>
        (
          await b!.ctx.db.selectFrom('provider_outbound').select('state').where('message_id', 'in', unsigned).execute()
        ).filter((r) => r.state === 'awaiting_confirmation').length === 10,
      {
        what: 'unsigned deliveries awaiting confirmation',
      },
    );
    const [r1, r2] = await Promise.all([
      b.provider.catchUp({ locationId: loc }),
      b.provider.catchUp({ locationId: loc }),
    ]);
    expect(r1![0]!.confirmed + r2![0]!.confirmed).toBe(10);
    expect(r1![0]!.caughtUp + r2![0]!.caughtUp).toBe(0);
    await waitFor(() => unsigned.every((id) => finalStatus(w!.emu, id) === 'delivered'), {
      what: 'unsigned delivered',
      timeoutMs: 30_000,
    });
    for (const id of [...ids, ...unsigned]) expect(sends.get(id), id).toBe(1);
    const by = await b.ctx.db
      .selectFrom('provider_outbound')
      .select('confirmed_by')
      .where('message_id', 'in', unsigned)
      .execute();
    expect(by.every((r) => r.confirmed_by === 'catchup')).toBe(true);
  });

  it("a missed message older than the age limit is reported failed with the reason and never sent; another provider's messages are never touched", async () => {
    w = await startWorld({ locations: 1 });
    b = await startBridge(w, {
      env: { PROVIDER_CATCHUP_INTERVAL_MS: '0' },
      catchup: { settleMs: 0, maxAgeMs: 1 },
      modules: [dashboardModule()],
    });
    const loc = w.locationIds[0]!;
    expect((await adminPut(b.url, loc, { config: { kind: 'loopback', autoReply: false } })).status).toBe(200);
    const sends = countSends(b.inbox);
    // Another custom SMS provider installed on the same location, and its pending message.
    const other = w.emu.control.createApp({
      name: 'other provider',
      redirectUri: 'http://127.0.0.1:1/cb',
      scopes: 'conversations/message.write',
      conversationProvider: { type: 'SMS', isCustom: true },
      providerDeliveryUrl: DEAD_URL,
    });
    w.emu.control.install({ clientId: other.clientId, locationId: loc });
    w.emu.control.updateApp(w.clientId, { providerDeliveryUrl: DEAD_URL });
    const c = w.emu.control.createContact({ locationId: loc, phone: '+15550400000' });
    const since = new Date(Date.now() - 60_000);
    const ours = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: c.id,
      type: 'SMS',
      message: 'too late',
      conversationProviderId: w!.providerId,
    });
    const theirs = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: c.id,
      type: 'SMS',
      message: 'not ours',
      conversationProviderId: other.conversationProviderId!,
    });
    await waitFor(() => providerDeliveries(w!, ours.id)[0]?.state === 'failed', { what: 'delivery lost' });
    await waitFor(() => Date.now() > ours.dateAdded + 1, { what: 'the message is older than the 1 ms limit' });

    const [r] = await b.provider.catchUp({ locationId: loc, since });
    expect(r).toMatchObject({ locationId: loc, caughtUp: 0, expired: 1, confirmed: 0 });
    await waitFor(() => finalStatus(w!.emu, ours.id) === 'failed', { what: 'reported failed' });
    expect(w.emu.control.getMessage(ours.id)!.error).toMatchObject({
      code: EXPIRED_CODE,
      message: expect.stringContaining('not delivered to the provider in time'),
    });
    expect(sends.get(ours.id)).toBeUndefined();
    expect(finalStatus(w.emu, theirs.id)).toBe('pending');
    expect(
      await b.ctx.db
        .selectFrom('provider_outbound')
        .select('message_id')
        .where('message_id', '=', theirs.id)
        .executeTakeFirst(),
    ).toBeUndefined();
    expect(w.emu.control.listApiCalls({ pathPattern: theirs.id })).toEqual([]);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(`ghl_bridge_provider_catchup_messages_total\\{location="${loc}",outcome="expired"\\} 1`),
    );

    // The console's location list shows the last catch-up.
    const o = (await (
      await fetch(`${b.url}/admin/api/overview`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).json()) as { channels: Array<{ locationId: string; catchup: { expired: number; lastRunAt: string } | null }> };
    expect(o.channels.find((x) => x.locationId === loc)!.catchup).toMatchObject({
      expired: 1,
      lastRunAt: expect.any(String),
    });
    // The admin API: the last run per stream, and an on-demand run (which finds nothing new).
    const view = (await (
      await fetch(`${b.url}/admin/provider/catch-up`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).json()) as { locations: Array<{ locationId: string; expiredTotal: number }> };
    expect(view.locations.filter((l) => l.locationId === loc).reduce((s, l) => s + l.expiredTotal, 0)).toBe(1);
    const post = await fetch(`${b.url}/admin/provider/catch-up`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ locationId: loc }),
    });
    expect(post.status).toBe(200);
    expect(((await post.json()) as { results: Array<{ expired: number }> }).results[0]!.expired).toBe(0);
    const bad = await fetch(`${b.url}/admin/provider/catch-up`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ since: 'yesterday' }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('since');
    expect((await fetch(`${b.url}/admin/provider/catch-up`, { method: 'POST' })).status).toBe(401);
  });

  it('reconcile cost: API calls per location per hour stay below the documented budget (2 % of 200,000 a day)', async () => {
    w = await startWorld({ locations: 1 });
    b = await startBridge(w, { env: { PROVIDER_CATCHUP_INTERVAL_MS: '0' }, catchup: FAST });
    const loc = w.locationIds[0]!;
    expect((await adminPut(b.url, loc, { config: { kind: 'loopback', autoReply: false } })).status).toBe(200);
    // Steady state: deliveries arrive; the runs read the new messages once.
    const c = w.emu.control.createContact({ locationId: loc, phone: '+15550500000' });
    const ids = Array.from(
      { length: 30 },
      (_, i) =>
        w!.emu.control.sendMessageAsUser({
          locationId: loc,
          contactId: c.id,
          type: 'SMS',
          message: `m${i}`,
          conversationProviderId: w!.providerId,
        }).id,
    );
    await waitFor(() => ids.every((id) => finalStatus(w!.emu, id) === 'delivered'), { what: 'delivered' });
    const before = w.emu.control.listApiCalls({ pathPattern: EXPORT }).length;
    const runs = 5;
    for (let i = 0; i < runs; i++) await b.provider.catchUp({ locationId: loc });
    const perRun = (w.emu.control.listApiCalls({ pathPattern: EXPORT }).length - before) / runs;
    expect(perRun).toBe(2); // one export page per stream (non-email types, Email)
    const perHour = perRun * (3_600_000 / testConfig().PROVIDER_CATCHUP_INTERVAL_MS);
    expect(perHour).toBeLessThan((200_000 * 0.02) / 24);
  });

  it('ghl-bridge provider catch-up --location --since (CLI): finds the missed message, the next start sends it', async () => {
    w = await startWorld({ locations: 1 });
    const dataDir = STORE === 'pglite' ? tempDataDir() : undefined;
    const env = {
      JOB_POLL_MS: '50',
      ...w.env,
      PROVIDER_CATCHUP_INTERVAL_MS: '0',
      PROVIDER_CATCHUP_SETTLE_MS: '0',
      ...(dataDir ? { DATA_DIR: dataDir } : {}),
    };
    const config = testConfig(env);
    if (config.DATABASE_URL) cleanups.push(() => dropSchema(config.DATABASE_SCHEMA));
    const loc = w.locationIds[0]!;
    const first = await openBridge(w, config, dataDir, new LoopbackInbox(), FAST);
    await install(first.url, loc);
    expect((await adminPut(first.url, loc, { config: { kind: 'loopback', autoReply: false } })).status).toBe(200);
    await first.bridge.close();
    w.emu.control.updateApp(w.clientId, { providerDeliveryUrl: DEAD_URL });
    const c = w.emu.control.createContact({ locationId: loc, phone: '+15550600000' });
    const since = new Date(Date.now() - 1000).toISOString();
    const m = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: c.id,
      type: 'SMS',
      message: 'via the CLI',
      conversationProviderId: w.providerId,
    });
    await waitFor(() => providerDeliveries(w!, m.id)[0]?.state === 'failed', { what: 'delivery lost' });

    const run = promisify(execFile);
    const cliEnv = {
      ...process.env,
      ...env,
      LOG_LEVEL: 'silent',
      DATABASE_SCHEMA: config.DATABASE_SCHEMA,
      ...(config.DATABASE_URL ? { DATABASE_URL: config.DATABASE_URL } : {}),
    };
    const cli = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: cliEnv });
    const bad = await cli('provider', 'catch-up', '--since', 'yesterday').then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since');
    const out = await cli('provider', 'catch-up', '--location', loc, '--since', since);
    expect(out.stdout).toContain(`${loc}: caught up 1, confirmed 0, expired (reported failed) 0`);
    expect(finalStatus(w.emu, m.id)).toBe('pending'); // queued, not sent by the CLI

    const inbox = new LoopbackInbox();
    const sends = countSends(inbox);
    const second = await openBridge(w, config, dataDir, inbox, FAST);
    cleanups.push(() => second.bridge.close());
    await waitFor(() => finalStatus(w!.emu, m.id) === 'delivered', { what: 'sent by the next start' });
    expect(sends.get(m.id)).toBe(1);
  });
});
