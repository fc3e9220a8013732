import { afterEach, describe, expect, it } from 'vitest';
import { GhlApiError } from '../../src/platform/ghl/errors.js';
import { RateLimiter, GHL_LIMITS } from '../../src/platform/ghl/ratelimit.js';
import { versionFor } from '../../src/platform/ghl/versions.js';
import { createGhlClient } from '../../src/platform/ghl/client.js';
import { quietLog } from '../helpers/store.js';
import { install, startBridge, startGhl, type BridgeWithGhl, type GhlWorld } from '../installations/harness.js';

let w: GhlWorld | undefined;
let b: BridgeWithGhl | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  b = w = undefined;
});

async function setup(o: Parameters<typeof startGhl>[0] = {}, limits?: Parameters<typeof startBridge>[1]) {
  w = await startGhl(o);
  b = await startBridge(w, limits);
  const loc = w.locationIds[0]!;
  expect((await install(b, { locationId: loc })).status).toBe(200);
  return { w, b, loc, inst: { installation: { locationId: loc } } };
}

describe('GHL client against the emulator', () => {
  it('sends the per-endpoint Version header (docs/ghl-behaviour.md#api-versions)', async () => {
    expect(versionFor('/conversations/messages')).toBe('2021-04-15');
    expect(versionFor('/contacts/upsert')).toBe('2021-07-28');
    expect(versionFor('/oauth/locationToken')).toBe('2021-07-28');
    expect(versionFor('/oauth/token')).toBeNull();
    expect(versionFor('/locations/x/customFields')).toBe('2021-07-28');
    const { w, b, loc, inst } = await setup({ emulator: { versionCheck: 'strict' } });
    const contact = await b.s.ghl.contacts.upsert({ locationId: loc, email: 'v@example.com' }, inst);
    const contactId = (contact as { contact: { id: string } }).contact.id;
    const conv = await b.s.ghl.conversations.create({ locationId: loc, contactId }, inst);
    const conversationId = (conv as { conversation: { id: string } }).conversation.id;
    await b.s.ghl.conversations.get(conversationId, inst);
    await b.s.ghl.messages.list(conversationId, {}, inst);
    await b.s.ghl.customFields.list(loc, inst);
    await b.s.ghl.contacts.get(contactId, inst);
    expect(w.observed.calls.every((c) => c.status < 400)).toBe(true);
  });

  it('429 storm (fault injection): every call succeeds late, none lost, none duplicated', async () => {
    const { w, b, loc, inst } = await setup();
    w.emu.control.injectFault({ pathPattern: '/contacts/upsert', kind: '429', times: 15 });
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        b.s.ghl.contacts.upsert({ locationId: loc, email: `storm${i}@example.com` }, inst),
      ),
    );
    expect(results.every((r) => (r as { contact?: { id?: string } }).contact?.id)).toBe(true);
    expect(w.observed.api429).toBe(15);
    expect(
      w.emu.control
        .listContacts({ locationId: loc })
        .filter((c) => /^storm/.test(String((c as { email?: string }).email))),
    ).toHaveLength(20);
    // The emulator's 429 says Retry-After: 10 → the limiter held the location that long.
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
    expect(b.s.rateLimiter.stats.blocked429).toBeGreaterThan(0);
  });

  it('5xx: idempotent calls retry with backoff; a non-idempotent send is not repeated blindly', async () => {
    const { w, b, loc, inst } = await setup();
    w.emu.control.injectFault({ pathPattern: '/locations/*/customFields', kind: '500', times: 2 });
    await b.s.ghl.customFields.list(loc, inst);
    expect(w.observed.calls.filter((c) => c.path.endsWith('/customFields')).map((c) => c.status)).toEqual([
      500, 500, 200,
    ]);

    const contact = await b.s.ghl.contacts.upsert({ locationId: loc, email: 'send@example.com' }, inst);
    const contactId = (contact as { contact: { id: string } }).contact.id;
    w.emu.control.injectFault({ pathPattern: '/conversations/messages', method: 'POST', kind: '500', times: 1 });
    const err = await b.s.ghl.messages
      .send({ type: 'SMS', contactId, message: 'hi' } as never, inst)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GhlApiError);
    expect((err as GhlApiError).status).toBe(500);
    expect((err as GhlApiError).maybeApplied).toBe(true);
    expect(w.observed.calls.filter((c) => c.path === '/conversations/messages' && c.method === 'POST')).toHaveLength(1);

    // conversations.create looks first after an ambiguous failure (natural key: location + contact),
    // and only repeats the POST when it finds nothing: exactly one conversation exists afterwards.
    w.emu.control.injectFault({ pathPattern: '/conversations/', method: 'POST', kind: '500', times: 1 });
    await b.s.ghl.conversations.create({ locationId: loc, contactId }, inst);
    expect(w.emu.control.listConversations({ locationId: loc, contactId })).toHaveLength(1);
    expect(w.observed.calls.filter((c) => c.path === '/conversations/search')).toHaveLength(1);
  });

  it("typed errors carry status and GHL's message", async () => {
    const { b, loc, inst } = await setup();
    const e = await b.s.ghl.contacts.get('does-not-exist', inst).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GhlApiError);
    expect((e as GhlApiError).status).toBeGreaterThanOrEqual(400);
    expect((e as GhlApiError).message).toMatch(/contacts\.get: HTTP 4\d\d: /);
    const contact = await b.s.ghl.contacts.upsert({ locationId: loc, email: 'dup@example.com' }, inst);
    const contactId = (contact as { contact: { id: string } }).contact.id;
    await b.s.ghl.conversations.create({ locationId: loc, contactId }, inst);
    const dup = await b.s.ghl.conversations.create({ locationId: loc, contactId }, inst).catch((x: unknown) => x);
    expect(dup).toBeInstanceOf(GhlApiError);
    expect((dup as GhlApiError).status).toBe(400);
    expect((dup as GhlApiError).body).toMatchObject({ statusCode: 400 });
    expect((dup as GhlApiError).maybeApplied).toBe(false);
  });

  it("accepts the spec's flat GET …/messages shape as well as the wrapped one", async () => {
    const { w, b, loc, inst } = await setup({ emulator: { wrapMessagesResponse: false } });
    const c = w.emu.control.createContact({
      locationId: loc,
      email: 'flat@example.com',
      phone: '+15550009999',
    } as never);
    for (let i = 0; i < 3; i++)
      w.emu.control.sendMessageAsUser({ locationId: loc, contactId: c.id, message: `f${i}`, type: 'SMS' } as never);
    const conversationId = w.emu.control.listConversations({ locationId: loc, contactId: c.id })[0]!.id;
    const page = await b.s.ghl.messages.list(conversationId, { limit: 2 }, inst);
    expect(page.messages).toHaveLength(2);
    expect(page.nextPage).toBe(true);
    const all: string[] = [];
    for await (const m of b.s.ghl.messages.iterate(conversationId, { limit: 2 }, inst)) all.push(m.id);
    expect(all).toHaveLength(3);
  });

  it('pagination helpers walk contacts, conversations and messages', async () => {
    const { w, b, loc, inst } = await setup();
    for (let i = 0; i < 23; i++)
      w.emu.control.createContact({
        locationId: loc,
        email: `p${i}@example.com`,
        firstName: `P${i}`,
        phone: `+1555000${String(i).padStart(4, '0')}`,
      } as never);
    const seen = new Set<string>();
    for await (const c of b.s.ghl.contacts.iterate({ locationId: loc }, { ...inst, pageLimit: 10 })) seen.add(c.id);
    expect(seen.size).toBe(23);

    const contactId = [...seen][0]!;
    const conv = await b.s.ghl.conversations.create({ locationId: loc, contactId }, inst);
    const conversationId = (conv as { conversation: { id: string } }).conversation.id;
    for (let i = 0; i < 25; i++)
      w.emu.control.sendMessageAsUser({ locationId: loc, contactId, message: `u${i}`, type: 'SMS' } as never);
    const msgs: string[] = [];
    for await (const m of b.s.ghl.messages.iterate(conversationId, { limit: 10 }, inst)) msgs.push(m.id);
    expect(msgs.length).toBeGreaterThanOrEqual(25);
    expect(new Set(msgs).size).toBe(msgs.length);

    const others = [...seen].slice(1, 5);
    for (const c of others) await b.s.ghl.conversations.create({ locationId: loc, contactId: c }, inst);
    const convs: string[] = [];
    for await (const c of b.s.ghl.conversations.iterate({ locationId: loc, limit: 2 }, inst)) convs.push(c.id);
    expect(new Set(convs).size).toBe(5);
  });
});

describe('rate limiter (shared state in the database)', () => {
  it('two limiters (two replicas) on one store never exceed the burst: 0 × 429 at a saturating load', async () => {
    const limit = { burst: 10, intervalMs: 1000, daily: 200_000 };
    const { w, b, loc } = await setup({ emulator: { rateLimit: limit } }, { limits: limit });
    const limiter2 = new RateLimiter(b.ctx.db, w.clientId, { ...GHL_LIMITS, ...limit });
    const client2 = createGhlClient({
      apiBase: w.emu.baseUrl,
      tokens: b.s.tokenVault,
      limiter: limiter2,
      log: quietLog,
    });
    const started = Date.now();
    const calls = [b.s.ghl, client2].flatMap((c) =>
      Array.from({ length: 25 }, () => c.customFields.list(loc, { installation: { locationId: loc }, lane: 'bulk' })),
    );
    await Promise.all(calls);
    await limiter2.close();
    expect(w.observed.api429).toBe(0);
    // 50 calls at 10 per second (after the first window) take at least 4 s.
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_900);
  });

  it('large bursts (each slot standing for several requests) are still never exceeded', async () => {
    const limit = { burst: 300, intervalMs: 1000, daily: 200_000 };
    const { w, b, loc } = await setup({ emulator: { rateLimit: limit } }, { limits: limit });
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 900 }, () =>
        b.s.ghl.customFields.list(loc, { installation: { locationId: loc }, lane: 'bulk' }),
      ),
    );
    expect(w.observed.api429).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
  });

  it('a live call is served quickly while the bulk lane is saturated', async () => {
    const limit = { burst: 10, intervalMs: 2000, daily: 200_000 };
    const { w, b, loc } = await setup({ emulator: { rateLimit: limit } }, { limits: limit });
    const stop = new AbortController();
    const bulk = Array.from({ length: 8 }, async () => {
      while (!stop.signal.aborted)
        await b.s.ghl.customFields
          .list(loc, { installation: { locationId: loc }, lane: 'bulk', signal: stop.signal })
          .catch(() => undefined);
    });
    // Let bulk fill the window first.
    await new Promise((r) => setTimeout(r, 2500));
    const t = Date.now();
    await b.s.ghl.customFields.list(loc, { installation: { locationId: loc }, lane: 'live' });
    const liveMs = Date.now() - t;
    stop.abort();
    await Promise.all(bulk);
    expect(liveMs).toBeLessThan(limit.intervalMs);
    expect(w.observed.api429).toBe(0);
  });

  it('adapts when GHL reports fewer remaining than we think (quota used by someone else)', async () => {
    const limit = { burst: 10, intervalMs: 1500, daily: 200_000 };
    const { w, b, loc } = await setup({ emulator: { rateLimit: limit } }, { limits: limit });
    const row = (await b.s.installations.getRow(`loc:${loc}`))!;
    const token = b.s.tokenVault.open(row.id, 'access', row.access_token_enc)!;
    // Another client of the same app spends 7 of the 10 in GHL's window.
    for (let i = 0; i < 7; i++) {
      await fetch(`${w.emu.baseUrl}/locations/${loc}/customFields`, {
        headers: { Authorization: `Bearer ${token}`, Version: '2021-07-28' },
      });
    }
    await Promise.all(
      Array.from({ length: 8 }, () =>
        b!.s.ghl.customFields.list(loc, { installation: { locationId: loc }, lane: 'bulk' }),
      ),
    );
    expect(b.s.rateLimiter.stats.adjustments + b.s.rateLimiter.stats.blocked429).toBeGreaterThan(0);
    // At most the calls sent before the first answer came back can be refused.
    expect(w.observed.api429).toBeLessThanOrEqual(5);
  });

  it('daily budget: bulk stops at its share, live still gets the rest, nothing goes over', async () => {
    const limit = { burst: 100, intervalMs: 10_000, daily: 20 };
    const { w, b, loc } = await setup({ emulator: { rateLimit: limit } }, { limits: limit });
    const bulk = (signal?: AbortSignal) =>
      b.s.ghl.customFields.list(loc, {
        installation: { locationId: loc },
        lane: 'bulk',
        ...(signal ? { signal } : {}),
      });
    // The install itself used none of the location's budget; 18 = 90 % of 20 for bulk.
    for (let i = 0; i < 18; i++) await bulk();
    await expect(bulk(AbortSignal.timeout(1500))).rejects.toThrow();
    await b.s.ghl.customFields.list(loc, { installation: { locationId: loc }, lane: 'live' });
    await b.s.ghl.customFields.list(loc, { installation: { locationId: loc }, lane: 'live' });
    await expect(
      b.s.ghl.customFields.list(loc, {
        installation: { locationId: loc },
        lane: 'live',
        signal: AbortSignal.timeout(1500),
      }),
    ).rejects.toThrow();
    expect(w.observed.calls.filter((c) => c.path.endsWith('/customFields'))).toHaveLength(20);
    expect(w.observed.api429).toBe(0);
  });
});
