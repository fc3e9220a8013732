import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { LoopbackRecord } from '../../src/capabilities/channels/index.js';
import type { Delivery } from '../../src/emulator/index.js';
import { dashboardModule } from '../../src/console/index.js';
import { createLogger } from '../../src/infra/log/logger.js';
import type { ConfirmationSettings } from '../../src/capabilities/provider/index.js';
import { waitFor } from '../helpers/store.js';
import { adminPut, ADMIN, finalStatus, startBridge, startWorld, type ProviderBridge, type World } from './harness.js';

/**
 * Issue 10: GHL calls the Delivery URL unsigned (observed #224). The emulator does the same by default here. A
 * delivery with the right URL token is stored unconfirmed and sent only once the signed OutboundMessage event or a
 * read of the message from GHL confirms it.
 */

let w: World | undefined;
let b: ProviderBridge | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  b = w = undefined;
});

const DEAD_URL = 'http://127.0.0.1:9/unreachable';
const GET_MESSAGE = '^/conversations/messages/(?!export$)[^/]+$';

interface Setup {
  w: World;
  b: ProviderBridge;
  token: string;
  tokenUrl: string;
  sends: LoopbackRecord[];
}

/**
 * Emulator (unsigned Delivery-URL calls) + bridge with a loopback channel on every location. `events`: whether the app
 * webhook URL (OutboundMessage) points at the bridge; `delivery`: whether the Delivery URL does (else a dead URL, and
 * the test posts the captured call itself, to order the two).
 */
async function setup(
  o: {
    locations?: number;
    events?: boolean;
    delivery?: boolean;
    env?: Record<string, string>;
    confirmation?: Partial<ConfirmationSettings>;
    logLines?: string[];
  } = {},
): Promise<Setup> {
  w = await startWorld({ locations: o.locations ?? 1, emulator: { signProviderDeliveries: false } });
  const lines = o.logLines;
  const sink = lines
    ? new Writable({
        write(chunk, _e, cb) {
          lines.push(String(chunk));
          cb();
        },
      })
    : undefined;
  b = await startBridge(w, {
    env: { PROVIDER_CONFIRMATION_WAIT_MS: '60000', ...o.env, ...(lines ? { LOG_LEVEL: 'debug' } : {}) },
    confirmation: { notFoundGraceMs: 0, ...o.confirmation },
    modules: [dashboardModule()],
    ...(sink
      ? { log: (config) => createLogger({ level: 'debug', secrets: config.secretValues, destination: sink }) }
      : {}),
  });
  const token = await b.provider.tokens.current();
  const tokenUrl = `${b.url}/webhooks/ghl/provider/${token}`;
  w.emu.control.updateApp(w.clientId, {
    providerDeliveryUrl: o.delivery === false ? DEAD_URL : tokenUrl,
    webhookUrl: o.events === false ? DEAD_URL : `${b.url}/webhooks/ghl`,
  });
  for (const l of w.locationIds)
    expect((await adminPut(b.url, l, { config: { kind: 'loopback', autoReply: false } })).status).toBe(200);
  const sends: LoopbackRecord[] = [];
  b.inbox.on('message', (r: LoopbackRecord) => sends.push(r));
  return { w, b, token, tokenUrl, sends };
}

const row = (s: Setup, id: string) =>
  s.b.ctx.db.selectFrom('provider_outbound').selectAll().where('message_id', '=', id).executeTakeFirst();
const lookups = (s: Setup) => s.w.emu.control.listApiCalls({ method: 'GET', pathPattern: GET_MESSAGE });
const eventCount = async (s: Setup) =>
  Number(
    (
      await s.b.ctx.db
        .selectFrom('webhook_events')
        .select(s.b.ctx.db.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

function contact(s: Setup, i = 0) {
  return s.w.emu.control.createContact({
    locationId: s.w.locationIds[i]!,
    firstName: `C${i}`,
    phone: `+1555010${String(1000 + i)}`,
  });
}

/** The captured emulator call (body + headers) of a message, posted by the test to `url`. */
function capture(s: Setup, messageId: string, eventType: 'ProviderOutboundMessage' | 'OutboundMessage'): Delivery {
  const d = s.w.emu.control
    .listDeliveries({ eventType })
    .find((x) => (x.payload as { messageId?: string }).messageId === messageId);
  if (!d) throw new Error(`no ${eventType} captured for ${messageId}`);
  return d;
}
const repost = (url: string, d: Delivery) => fetch(url, { method: 'POST', headers: d.headers, body: d.body });

async function sentOnce(s: Setup, messageId: string): Promise<void> {
  await waitFor(() => finalStatus(s.w.emu, messageId) === 'delivered', { what: `${messageId} delivered in GHL` });
  expect(s.sends.filter((r) => r.message.messageId === messageId)).toHaveLength(1);
}

async function metric(s: Setup, name: string): Promise<string> {
  const text = await (await fetch(`${s.b.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .join('\n');
}

describe('unsigned deliveries with the URL token', () => {
  it('event path: sent exactly once after the signed OutboundMessage event, without any GHL lookup', async () => {
    const s = await setup();
    const c = contact(s);
    const m = s.w.emu.control.sendMessageAsUser({
      locationId: s.w.locationIds[0]!,
      contactId: c.id,
      type: 'SMS',
      message: 'hello',
      conversationProviderId: s.w.providerId,
    });
    await sentOnce(s, m.id);
    const d = capture(s, m.id, 'ProviderOutboundMessage');
    expect(d.headers['x-ghl-signature']).toBeUndefined();
    await waitFor(async () => (await row(s, m.id))?.state === 'done', { what: 'row done' });
    expect(await row(s, m.id)).toMatchObject({ confirmed_by: 'event', confirm_lookups: 0 });
    expect(lookups(s)).toHaveLength(0);
    // The event went through the webhook registry and is stored durably.
    const ev = await s.b.ctx.db
      .selectFrom('webhook_events')
      .select(['type', 'status', 'signature'])
      .where('type', '=', 'OutboundMessage')
      .execute();
    expect(ev).toEqual([expect.objectContaining({ type: 'OutboundMessage', status: 'dispatched' })]);
    expect(await metric(s, 'ghl_bridge_provider_confirmed_total')).toContain('by="event"} 1');
  });

  it('lookup path (the event never comes): sent exactly once after GET /conversations/messages/{id}', async () => {
    const s = await setup({ events: false, env: { PROVIDER_CONFIRMATION_WAIT_MS: '300' } });
    const c = contact(s);
    const m = s.w.emu.control.sendMessageAsUser({
      locationId: s.w.locationIds[0]!,
      contactId: c.id,
      type: 'SMS',
      message: 'via lookup',
      conversationProviderId: s.w.providerId,
    });
    await sentOnce(s, m.id);
    expect(await row(s, m.id)).toMatchObject({ confirmed_by: 'lookup', confirm_lookups: 1 });
    expect(lookups(s).map((x) => x.path)).toEqual([`/conversations/messages/${m.id}`]);
  });

  it('the event before the delivery, the delivery before the event, and both at once: each message sent once', async () => {
    const s = await setup({ events: false, delivery: false });
    const loc = s.w.locationIds[0]!;
    const c = contact(s);
    const send = (text: string) =>
      s.w.emu.control.sendMessageAsUser({
        locationId: loc,
        contactId: c.id,
        type: 'SMS',
        message: text,
        conversationProviderId: s.w.providerId,
      });
    const a = send('event first');
    const bMsg = send('delivery first');
    const races = [send('race 1'), send('race 2'), send('race 3')];
    await s.w.emu.idle();
    const appUrl = `${s.b.url}/webhooks/ghl`;

    expect((await repost(appUrl, capture(s, a.id, 'OutboundMessage'))).status).toBe(200);
    await waitFor(
      () =>
        s.b.ctx.db
          .selectFrom('provider_confirmations')
          .select('message_id')
          .where('message_id', '=', a.id)
          .executeTakeFirst(),
      { what: 'event stored' },
    );
    expect((await repost(s.tokenUrl, capture(s, a.id, 'ProviderOutboundMessage'))).status).toBe(200);
    await sentOnce(s, a.id);

    expect((await repost(s.tokenUrl, capture(s, bMsg.id, 'ProviderOutboundMessage'))).status).toBe(200);
    await waitFor(async () => (await row(s, bMsg.id))?.state === 'awaiting_confirmation', { what: 'awaiting' });
    expect(s.sends.filter((r) => r.message.messageId === bMsg.id)).toHaveLength(0);
    expect((await repost(appUrl, capture(s, bMsg.id, 'OutboundMessage'))).status).toBe(200);
    await sentOnce(s, bMsg.id);

    await Promise.all(
      races.flatMap((m) => [
        repost(appUrl, capture(s, m.id, 'OutboundMessage')),
        repost(s.tokenUrl, capture(s, m.id, 'ProviderOutboundMessage')),
      ]),
    );
    for (const m of races) await sentOnce(s, m.id);
    for (const m of [a, bMsg, ...races]) expect((await row(s, m.id))?.confirmed_by).toBe('event');
    expect(lookups(s)).toHaveLength(0);
  });

  it('forged deliveries (right token): unknown messageId, another location, another body → not sent, rejected with the reason, counted and on the dashboard', async () => {
    const s = await setup({ locations: 2, events: false, env: { PROVIDER_CONFIRMATION: 'lookup' } });
    const [locA, locB] = s.w.locationIds as [string, string];
    const ca = contact(s, 0);
    const cb = contact(s, 1);
    // Real messages whose genuine deliveries go nowhere (so only the forged copies reach the bridge).
    s.w.emu.control.updateApp(s.w.clientId, { providerDeliveryUrl: DEAD_URL });
    const inB = s.w.emu.control.sendMessageAsUser({
      locationId: locB,
      contactId: cb.id,
      type: 'SMS',
      message: 'B',
      conversationProviderId: s.w.providerId,
    });
    const inA = s.w.emu.control.sendMessageAsUser({
      locationId: locA,
      contactId: ca.id,
      type: 'SMS',
      message: 'the real text',
      conversationProviderId: s.w.providerId,
    });
    await s.w.emu.idle();
    const forge = (messageId: string, message: string) =>
      fetch(s.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          contactId: ca.id,
          locationId: locA,
          messageId,
          type: 'SMS',
          phone: ca.phone,
          message,
          attachments: [],
        }),
      });
    expect((await forge('unknownMessageId0001', 'hi')).status).toBe(200);
    expect((await forge(inB.id, 'B')).status).toBe(200);
    expect((await forge(inA.id, 'a different text')).status).toBe(200);
    const expected: Record<string, string> = {
      unknownMessageId0001: 'not_in_ghl',
      [inB.id]: 'other_location',
      [inA.id]: 'body_mismatch',
    };
    for (const [id, reason] of Object.entries(expected)) {
      const r = await waitFor(async () => ((await row(s, id))?.state === 'rejected' ? row(s, id) : undefined), {
        what: `${id} rejected`,
      });
      expect(r!.rejected_reason).toMatch(new RegExp(`^${reason}:`));
    }
    expect(s.sends).toHaveLength(0);
    expect(finalStatus(s.w.emu, inA.id)).toBe('pending');
    const m = await metric(s, 'ghl_bridge_provider_rejected_total');
    for (const reason of Object.values(expected)) expect(m).toContain(`reason="${reason}"} 1`);
    const o = (await (
      await fetch(`${s.b.url}/admin/api/overview`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).json()) as {
      provider: { deliveryUrl: string; mode: string; rejected: Array<{ messageId: string; reason: string }> };
    };
    expect(o.provider.mode).toBe('lookup');
    expect(o.provider.rejected.map((r) => r.messageId).sort()).toEqual(Object.keys(expected).sort());
    expect(JSON.stringify(o)).not.toContain(s.token);
    expect(o.provider.deliveryUrl).toMatch(/\/webhooks\/ghl\/provider\/.{4}…/);
  });

  it('no token or a wrong token → 401 and nothing stored; rotation: old and new both work, then the old one is refused', async () => {
    const s = await setup({ events: false, delivery: false });
    const body = JSON.stringify({
      contactId: 'c1',
      locationId: s.w.locationIds[0],
      messageId: 'forgedMessage000001',
      type: 'SMS',
      phone: '+15550101000',
      message: 'x',
      attachments: [],
    });
    const post = (url: string, b2 = body) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b2 });
    const none = await post(`${s.b.url}/webhooks/ghl/provider`);
    expect(none.status).toBe(401);
    const wrong = await post(`${s.b.url}/webhooks/ghl/provider/${'x'.repeat(43)}`);
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({
      statusCode: 401,
      error: 'invalid_token',
      requestId: expect.any(String),
    });
    const almost = await post(
      `${s.b.url}/webhooks/ghl/provider/${s.token.slice(0, -1)}${s.token.endsWith('A') ? 'B' : 'A'}`,
    );
    expect(almost.status).toBe(401);
    expect(await eventCount(s)).toBe(0);

    const old = s.token;
    const fresh = await s.b.provider.tokens.rotate({ overlapHours: 0 });
    expect(fresh).not.toBe(old);
    expect(await s.b.provider.deliveryUrl()).toBe(`http://bridge.test/webhooks/ghl/provider/${fresh}`);
    const msg = (n: number) => body.replace('forgedMessage000001', `rotationMessage0000${n}`);
    expect((await post(`${s.b.url}/webhooks/ghl/provider/${old}`, msg(1))).status).toBe(200);
    expect((await post(`${s.b.url}/webhooks/ghl/provider/${fresh}`, msg(2))).status).toBe(200);
    expect(await s.b.provider.tokens.retirePrevious()).toBe(1);
    expect((await post(`${s.b.url}/webhooks/ghl/provider/${old}`, msg(3))).status).toBe(401);
    expect((await post(`${s.b.url}/webhooks/ghl/provider/${fresh}`, msg(4))).status).toBe(200);
    expect(await eventCount(s)).toBe(3);
    // Stored encrypted: the token is not in the table.
    const stored = await s.b.ctx.db.selectFrom('provider_delivery_tokens').select('token_enc').execute();
    for (const r of stored) expect(r.token_enc).not.toContain(fresh);
  });

  it('rotation with an overlap period: the previous token works until its retire_at, then it is refused', async () => {
    const s = await setup({ events: false, delivery: false });
    const post = (t: string, id: string) =>
      fetch(`${s.b.url}/webhooks/ghl/provider/${t}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          contactId: 'c1',
          locationId: s.w.locationIds[0],
          messageId: id,
          type: 'SMS',
          phone: '+1',
          message: 'x',
          attachments: [],
        }),
      });
    const old = s.token;
    const fresh = await s.b.provider.tokens.rotate({ overlapHours: 72 });
    const rows = await s.b.ctx.db
      .selectFrom('provider_delivery_tokens')
      .select(['generation', 'retire_at'])
      .orderBy('generation')
      .execute();
    expect(rows).toHaveLength(2);
    const hours = (rows[0]!.retire_at!.getTime() - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(71.9);
    expect(hours).toBeLessThanOrEqual(72);
    expect(rows[1]!.retire_at).toBeNull();
    expect((await post(old, 'overlapMessage000001')).status).toBe(200);
    // The overlap period ends (moved into the past rather than waiting 72 h).
    await s.b.ctx.db
      .updateTable('provider_delivery_tokens')
      .set({ retire_at: new Date(Date.now() - 1000) })
      .where('generation', '=', rows[0]!.generation)
      .execute();
    s.b.provider.tokens.invalidate();
    expect((await post(old, 'overlapMessage000002')).status).toBe(401);
    expect((await post(fresh, 'overlapMessage000003')).status).toBe(200);
  });

  it('PROVIDER_DELIVERY_TOKENS overrides the stored token and accepts each listed token', async () => {
    const t1 = 'A'.repeat(22) + 'first-token';
    const t2 = 'B'.repeat(22) + 'second-token';
    const s = await setup({ events: false, delivery: false, env: { PROVIDER_DELIVERY_TOKENS: `${t1},${t2}` } });
    expect(s.token).toBe(t1);
    const body = (id: string) =>
      JSON.stringify({
        contactId: 'c1',
        locationId: s.w.locationIds[0],
        messageId: id,
        type: 'SMS',
        phone: '+1',
        message: 'x',
        attachments: [],
      });
    for (const [t, status] of [
      [t1, 200],
      [t2, 200],
      ['C'.repeat(30), 401],
    ] as const) {
      const r = await fetch(`${s.b.url}/webhooks/ghl/provider/${t}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body(`envToken${t.slice(0, 1)}000000000`),
      });
      expect(r.status).toBe(status);
    }
  });

  it('event mode: no event within PROVIDER_CONFIRMATION_TIMEOUT_MS → rejected (not_confirmed), never looked up, never sent', async () => {
    const s = await setup({
      events: false,
      env: { PROVIDER_CONFIRMATION: 'event', PROVIDER_CONFIRMATION_TIMEOUT_MS: '1000' },
    });
    const c = contact(s);
    const m = s.w.emu.control.sendMessageAsUser({
      locationId: s.w.locationIds[0]!,
      contactId: c.id,
      type: 'SMS',
      message: 'never confirmed',
      conversationProviderId: s.w.providerId,
    });
    const r = await waitFor(async () => ((await row(s, m.id))?.state === 'rejected' ? row(s, m.id) : undefined), {
      what: 'rejected',
    });
    expect(r!.rejected_reason).toMatch(/^not_confirmed:/);
    expect(lookups(s)).toHaveLength(0);
    expect(s.sends).toHaveLength(0);
  });

  it('a signed delivery needs no confirmation: no lookup call is made', async () => {
    w = await startWorld({ emulator: { signProviderDeliveries: true } });
    b = await startBridge(w, { env: { PROVIDER_CONFIRMATION: 'lookup' } });
    const loc = w.locationIds[0]!;
    expect((await adminPut(b.url, loc, { config: { kind: 'loopback', autoReply: false } })).status).toBe(200);
    const c = w.emu.control.createContact({ locationId: loc, phone: '+15550109999' });
    const m = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: c.id,
      type: 'SMS',
      message: 'signed',
      conversationProviderId: w.providerId,
    });
    await waitFor(() => finalStatus(w!.emu, m.id) === 'delivered', { what: 'delivered' });
    expect(
      await b.ctx.db
        .selectFrom('provider_outbound')
        .select('confirmed_by')
        .where('message_id', '=', m.id)
        .executeTakeFirst(),
    ).toEqual({ confirmed_by: 'signature' });
    expect(w.emu.control.listApiCalls({ method: 'GET', pathPattern: GET_MESSAGE })).toHaveLength(0);
  });

  it('lookup answered 429 and 5xx → retried (never a rejection), then sent', async () => {
    const s = await setup({ events: false, env: { PROVIDER_CONFIRMATION: 'lookup' } });
    s.w.emu.control.injectFault({
      pathPattern: '^/conversations/messages/(?!export$)[^/]+$',
      method: 'GET',
      times: 1,
      kind: '429',
    });
    s.w.emu.control.injectFault({
      pathPattern: '^/conversations/messages/(?!export$)[^/]+$',
      method: 'GET',
      times: 6,
      kind: '500',
    });
    const c = contact(s);
    const m = s.w.emu.control.sendMessageAsUser({
      locationId: s.w.locationIds[0]!,
      contactId: c.id,
      type: 'SMS',
      message: 'flaky',
      conversationProviderId: s.w.providerId,
    });
    await waitFor(() => finalStatus(s.w.emu, m.id) === 'delivered', {
      what: 'delivered after retries',
      timeoutMs: 60_000,
    });
    expect(s.sends.filter((r) => r.message.messageId === m.id)).toHaveLength(1);
    const statuses = lookups(s).map((x) => x.status);
    expect(statuses.slice(0, 7)).toEqual([429, 500, 500, 500, 500, 500, 500]);
    expect(statuses.at(-1)).toBe(200);
    expect(await row(s, m.id)).toMatchObject({ confirmed_by: 'lookup', rejected_reason: null });
    expect(await metric(s, 'ghl_bridge_provider_rejected_total')).not.toMatch(/} [1-9]/);
  }, 90_000);

  it('the token appears in no log line (debug level), metric label, error body or dashboard', async () => {
    const lines: string[] = [];
    const s = await setup({ logLines: lines });
    const c = contact(s);
    const m = s.w.emu.control.sendMessageAsUser({
      locationId: s.w.locationIds[0]!,
      contactId: c.id,
      type: 'SMS',
      message: 'log me',
      conversationProviderId: s.w.providerId,
    });
    await sentOnce(s, m.id);
    const bodies = [
      await (await fetch(`${s.b.url}/webhooks/ghl/provider/${s.token}/extra`, { method: 'POST', body: '{}' })).text(),
      await (
        await fetch(`${s.b.url}/webhooks/ghl/provider/${s.token}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"timestamp":"not a date"}',
        })
      ).text(),
      await (await fetch(`${s.b.url}/webhooks/ghl/provider/${s.token}x`, { method: 'POST', body: '{}' })).text(),
      await (await fetch(`${s.b.url}/metrics`)).text(),
      await (await fetch(`${s.b.url}/admin/api/overview`, { headers: { authorization: `Bearer ${ADMIN}` } })).text(),
    ];
    expect(bodies[0]).toContain('no route');
    expect(await metric(s, 'ghl_bridge_http_requests_total')).toContain('route="/webhooks/ghl/provider/:token"');
    const all = lines.join('');
    expect(all).toMatch(/\/webhooks\/ghl\/provider\/\[REDACTED\]/); // the request lines are there…
    expect(all).toContain('incoming request'); // …with every request line (logger at debug)…
    for (const text of [all, ...bodies]) expect(text).not.toContain(s.token); // …without the token
    expect(all).not.toContain(s.token.slice(0, 20));
  });
});
