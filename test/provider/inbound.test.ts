import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/store.js';
import { senderAddress } from '../../src/capabilities/provider/index.js';
import { startBridge, startWorld, type ProviderBridge, type World } from './harness.js';

const SIGNING = `whsec_${Buffer.from('s'.repeat(32)).toString('base64')}`;
const INBOUND = `whsec_${Buffer.from('i'.repeat(32)).toString('base64')}`;

let w: World | undefined;
let b: ProviderBridge | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  b = w = undefined;
});

function signedPost(url: string, body: unknown, secret = INBOUND): Promise<Response> {
  const payload = JSON.stringify(body);
  const id = `evt_${randomUUID()}`;
  const headers = new Webhook(secret).sign(id, new Date(), payload);
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
      'webhook-signature': headers,
    },
    body: payload,
  });
}

const httpChannel = {
  kind: 'http' as const,
  url: 'http://127.0.0.1:9/unused',
  signingSecret: SIGNING,
  inboundSecret: INBOUND,
};

describe('inbound (channel → GHL)', () => {
  it('20 concurrent messages from an unknown number create one contact and one conversation; each is added once', async () => {
    w = await startWorld();
    b = await startBridge(w);
    const loc = w.locationIds[0]!;
    await b.provider.configureChannel(loc, httpChannel);
    const url = `${b.url}/channels/${loc}/inbound`;
    const res = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        signedPost(url, {
          type: 'message',
          id: `m-${i}`,
          from: '+1 (213) 373-4253',
          text: `msg ${i}`,
          attachments: i === 0 ? ['https://cdn.example.com/p.png'] : [],
        }),
      ),
    );
    expect(res.map((r) => r.status)).toEqual(Array(20).fill(202));
    await waitFor(
      () => w!.emu.control.listMessages({ locationId: loc }).filter((m) => m.direction === 'inbound').length === 20,
      { what: '20 inbound messages' },
    );
    const contacts = w.emu.control.listContacts({ locationId: loc });
    expect(contacts).toHaveLength(1);
    expect(contacts[0]!.phone).toBe('+12133734253');
    expect(w.emu.control.listConversations({ locationId: loc })).toHaveLength(1);
    const msgs = w.emu.control.listMessages({ locationId: loc });
    expect(msgs.every((m) => m.conversationProviderId === w!.providerId && m.contactId === contacts[0]!.id)).toBe(true);
    expect(msgs.find((m) => m.body === 'msg 0')!.attachments).toEqual(['https://cdn.example.com/p.png']);
    // Dedupe on the channel's id: the same 20 again add nothing.
    const again = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        signedPost(url, { type: 'message', id: `m-${i}`, from: '+12133734253', text: `msg ${i}` }),
      ),
    );
    for (const r of again) expect(await r.json()).toMatchObject({ accepted: 0, duplicates: 1 });
    const rows = await b.ctx.db
      .selectFrom('provider_inbound')
      .select(['state', 'channel_message_id'])
      .orderBy('id')
      .execute();
    expect(rows).toHaveLength(20);
    // Each one added exactly once (concurrent requests have no defined order among themselves).
    const ghlIds = w.emu.control
      .listMessages({ locationId: loc })
      .filter((m) => m.direction === 'inbound')
      .map((m) => `m-${m.body!.slice(4)}`);
    expect([...ghlIds].sort()).toEqual(rows.map((r) => r.channel_message_id).sort());
    expect(rows.every((r) => r.state === 'done')).toBe(true);
  });

  it('refuses inbound for a location without installation (503, nothing stored) ; an unknown location and a bad signature get the same 401', async () => {
    w = await startWorld({ locations: 2 });
    b = await startBridge(w, { install: false });
    const [installed, notInstalled] = w.locationIds as [string, string];
    const { install } = await import('./harness.js');
    await install(b.url, installed);
    await b.provider.configureChannel(notInstalled, httpChannel);
    const r1 = await signedPost(`${b.url}/channels/${notInstalled}/inbound`, {
      type: 'message',
      id: 'x1',
      from: '+12133734299',
      text: 'hi',
    });
    expect(r1.status).toBe(503);
    expect(r1.headers.get('retry-after')).toBe('300');
    // Errors are in the bridge's one shape, with the stable code in `error`.
    expect(await r1.json()).toMatchObject({
      statusCode: 503,
      requestId: r1.headers.get('x-request-id'),
      error: 'location_not_installed',
      message: expect.stringContaining('nothing was stored'),
    });
    // An unknown location answers exactly like bad credentials (it must not reveal which locations have a channel).
    const r2 = await signedPost(`${b.url}/channels/nope-location/inbound`, {
      type: 'message',
      id: 'x1',
      from: '+12133734299',
      text: 'hi',
    });
    const r3 = await signedPost(
      `${b.url}/channels/${notInstalled}/inbound`,
      { type: 'message', id: 'x1', from: '+12133734299', text: 'hi' },
      SIGNING,
    );
    expect(r2.status).toBe(401);
    expect(r3.status).toBe(401);
    // Same answer but for the request id (each request has its own).
    const withoutId = async (r: Response) => {
      const { requestId, ...rest } = (await r.json()) as Record<string, unknown>;
      expect(requestId).toBe(r.headers.get('x-request-id'));
      return rest;
    };
    const unknownLocation = await withoutId(r2);
    expect(unknownLocation).toEqual(await withoutId(r3));
    expect(unknownLocation).toEqual({ statusCode: 401, error: 'unauthorized', message: expect.any(String) });
    expect(await b.ctx.db.selectFrom('provider_inbound').selectAll().execute()).toHaveLength(0);
    // Once installed, the sender's retry goes through.
    await install(b.url, notInstalled);
    const r4 = await signedPost(`${b.url}/channels/${notInstalled}/inbound`, {
      type: 'message',
      id: 'x1',
      from: '+12133734299',
      text: 'hi',
    });
    expect(r4.status).toBe(202);
    await waitFor(
      () =>
        w!.emu.control
          .listMessages({ locationId: notInstalled })
          .some((m) => m.body === 'hi' && m.direction === 'inbound'),
      { what: 'message after install' },
    );
  });

  it("normalizes national numbers with each location's default region", async () => {
    const cases: Array<[string, string, string]> = [
      ['US', '(415) 555-2671', '+14155552671'],
      ['PH', '0917 123 4567', '+639171234567'],
      ['GB', '020 7946 0018', '+442079460018'],
      ['DE', '030 901820', '+4930901820'],
    ];
    w = await startWorld({ locations: cases.length });
    b = await startBridge(w);
    for (const [i, [region, from]] of cases.entries()) {
      const loc = w.locationIds[i]!;
      await b.provider.configureChannel(loc, httpChannel, { defaultRegion: region });
      const r = await signedPost(`${b.url}/channels/${loc}/inbound`, {
        type: 'message',
        id: `r-${region}`,
        from,
        text: region,
      });
      expect(r.status, region).toBe(202);
    }
    // An international number keeps its own country whatever the region.
    const r = await signedPost(`${b.url}/channels/${w.locationIds[0]}/inbound`, {
      type: 'message',
      id: 'intl',
      from: '+63 917 765 4321',
      text: 'intl',
    });
    expect(r.status).toBe(202);
    const bad = await signedPost(`${b.url}/channels/${w.locationIds[0]}/inbound`, {
      type: 'message',
      id: 'bad',
      from: '12',
      text: 'x',
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'invalid_body', message: expect.stringContaining('from:') });
    await waitFor(
      () => w!.emu.control.listMessages({}).filter((m) => m.direction === 'inbound').length === cases.length + 1,
      { what: 'all inbound' },
    );
    for (const [i, [, , e164]] of cases.entries())
      expect(w.emu.control.listContacts({ locationId: w.locationIds[i]! }).map((c) => c.phone)).toContain(e164);
    expect(
      w.emu.control
        .listContacts({ locationId: w.locationIds[0]! })
        .map((c) => c.phone)
        .sort(),
    ).toEqual(['+14155552671', '+639177654321']);
    expect(
      senderAddress({ channelMessageId: 'a', from: ' Ann@Example.COM ', attachments: [], channel: 'Email' }, 'US'),
    ).toBe('ann@example.com');
  });
});
