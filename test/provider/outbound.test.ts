import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeCast, type FakeCast } from '../fakes/cast-server.js';
import { startFakeReceiver, type FakeReceiver } from '../fakes/http-receiver.js';
import { waitFor } from '../helpers/store.js';
import { mergeStatus } from '../../src/capabilities/provider/index.js';
import { outboundTrace } from '../../src/capabilities/provider/trace.js';
import {
  adminPut,
  ADMIN,
  CAST_INBOUND_KEY,
  CAST_KEY,
  finalStatus,
  startBridge,
  startWorld,
  statusHistory,
  type ProviderBridge,
  type World,
} from './harness.js';

const SIGNING = `whsec_${Buffer.from('o'.repeat(32)).toString('base64')}`;
const INBOUND = `whsec_${Buffer.from('n'.repeat(32)).toString('base64')}`;

let w: World | undefined;
let b: ProviderBridge | undefined;
let rx: FakeReceiver | undefined;
let cast: FakeCast | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  await rx?.close();
  await cast?.close();
  b = w = rx = cast = undefined;
});

function signedPost(url: string, body: unknown): Promise<Response> {
  const payload = JSON.stringify(body);
  const id = `evt_${randomUUID()}`;
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
      'webhook-signature': new Webhook(INBOUND).sign(id, new Date(), payload),
    },
    body: payload,
  });
}

const row = (id: string) =>
  b!.ctx.db.selectFrom('provider_outbound').selectAll().where('message_id', '=', id).executeTakeFirstOrThrow();

describe('outbound and the http channel', () => {
  it('Email over http (default Email provider): 503 and 429 are retried with the same webhook-id → delivered; receipts are forward-only; inbound e-mail reaches the contact', async () => {
    rx = await startFakeReceiver(SIGNING);
    w = await startWorld({ provider: { type: 'Email', isCustom: false } });
    b = await startBridge(w);
    const loc = w.locationIds[0]!;
    const put = await adminPut(b.url, loc, {
      config: {
        kind: 'http',
        url: rx.url,
        signingSecret: SIGNING,
        inboundSecret: INBOUND,
        defaultInboundChannel: 'Email',
      },
    });
    expect(put.status).toBe(200);
    const view = (await put.json()) as { config: Record<string, string>; inboundUrl: string };
    expect(view.config.signingSecret).toMatch(/^\*\*\*/);
    expect(JSON.stringify(view)).not.toContain(SIGNING);
    const stored = await b.ctx.db.selectFrom('provider_channels').select('config').executeTakeFirstOrThrow();
    expect(JSON.stringify(stored.config)).not.toContain(SIGNING.slice(6));
    expect((await fetch(`${b.url}/admin/channels/${loc}`)).status).toBe(401);
    expect(
      (
        (await (await fetch(`${b.url}/admin/channels`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as {
          channels: unknown[];
        }
      ).channels,
    ).toHaveLength(1);

    const contact = w.emu.control.createContact({ locationId: loc, firstName: 'Eve', email: 'eve@example.com' });
    rx.answer(
      { status: 503 },
      { status: 429, headers: { 'retry-after': '0' } },
      { status: 200, body: { status: 'delivered', id: 'ext-1' } },
    );
    const m = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: contact.id,
      type: 'Email',
      subject: 'Hi',
      html: '<p>Hello</p>',
      attachments: ['https://cdn.example.com/f.pdf'],
    });
    await waitFor(() => finalStatus(w!.emu, m.id) === 'delivered', { what: 'delivered' });
    expect(rx.received).toHaveLength(3);
    expect(rx.uniqueIds()).toEqual(new Set([m.id]));
    expect(rx.received[2]!.body).toMatchObject({
      channel: 'Email',
      subject: 'Hi',
      html: '<p>Hello</p>',
      emailTo: ['eve@example.com'],
      attachments: ['https://cdn.example.com/f.pdf'],
    });
    await waitFor(async () => (await row(m.id)).state === 'done', { what: 'row done' });
    expect(await row(m.id)).toMatchObject({ state: 'done', attempts: 3, channel_message_id: 'ext-1' });
    // Every attempt is stored with the message (the console's trace reads it on any replica, after restarts too).
    const trace = await outboundTrace(b.ctx.db, m.id);
    expect(trace!.steps.filter((st) => st.step === 'attempt').map((st) => st.detail)).toEqual([
      'channel send attempt 1: retry (http_503)',
      'channel send attempt 2: retry (rate_limited)',
      'channel send attempt 3: delivered',
    ]);

    // Accepted → pending; a receipt by our id → delivered; a late "pending" receipt does not go back.
    rx.answer({ status: 202, body: { status: 'accepted', id: 'ext-2' } });
    const m2 = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: contact.id,
      type: 'Email',
      subject: 'Two',
      html: '<p>2</p>',
    });
    await waitFor(async () => (await row(m2.id)).ghl_status === 'pending', { what: 'pending' });
    const r = await signedPost(view.inboundUrl.replace('http://bridge.test', b.url), {
      events: [{ type: 'receipt', channelMessageId: 'ext-2', status: 'delivered' }],
    });
    expect(await r.json()).toMatchObject({ receipts: 1 });
    await waitFor(() => finalStatus(w!.emu, m2.id) === 'delivered', { what: 'receipt applied' });
    await signedPost(`${b.url}/channels/${loc}/inbound`, { type: 'receipt', messageId: m2.id, status: 'pending' });
    await signedPost(`${b.url}/channels/${loc}/inbound`, {
      type: 'receipt',
      messageId: m2.id,
      status: 'failed',
      error: { code: 'X', message: 'late' },
    });
    await waitFor(async () => (await row(m2.id)).ghl_status === 'delivered', { what: 'row delivered' });
    expect(await row(m2.id)).toMatchObject({ status_target: 'delivered', ghl_status: 'delivered' });
    expect(statusHistory(w.emu, m2.id)).toEqual(['pending', 'pending', 'delivered']);

    // Inbound e-mail from the contact.
    const ir = await signedPost(`${b.url}/channels/${loc}/inbound`, {
      type: 'message',
      id: 'mail-1',
      from: 'Eve@Example.com',
      subject: 'Re: Hi',
      html: '<p>Thanks</p>',
    });
    expect(ir.status).toBe(202);
    const got = await waitFor(
      () => w!.emu.control.listMessages({ contactId: contact.id }).find((x) => x.direction === 'inbound'),
      { what: 'inbound e-mail' },
    );
    expect(got).toMatchObject({
      subject: 'Re: Hi',
      html: '<p>Thanks</p>',
      conversationId: m.conversationId,
      messageType: expect.stringContaining('EMAIL'),
    });
    expect(w.emu.control.listContacts({ locationId: loc })).toHaveLength(1);
  });

  it("SMS over http: a 4xx becomes failed with the receiver's error; timeouts exhaust the attempts → failed with the reason", async () => {
    rx = await startFakeReceiver(SIGNING);
    w = await startWorld();
    b = await startBridge(w, { settings: { sendMaxAttempts: 2 } });
    const loc = w.locationIds[0]!;
    await b.provider.configureChannel(loc, { kind: 'http', url: rx.url, signingSecret: SIGNING, timeoutMs: 1000 });
    const contact = w.emu.control.createContact({ locationId: loc, firstName: 'Bo', phone: '+12133734000' });
    rx.answer({
      status: 422,
      body: { error: { code: 'BAD_RECIPIENT', message: 'number blocked', type: 'validation' } },
    });
    const m = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: contact.id,
      type: 'SMS',
      message: 'one',
      conversationProviderId: w.providerId,
    });
    await waitFor(() => finalStatus(w!.emu, m.id) === 'failed', { what: 'failed' });
    expect(w.emu.control.getMessage(m.id)!.error).toEqual({
      code: 'BAD_RECIPIENT',
      type: 'validation',
      message: 'number blocked',
    });

    rx.answer({ hang: true }, { hang: true });
    const m2 = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: contact.id,
      type: 'SMS',
      message: 'two',
      conversationProviderId: w.providerId,
    });
    await waitFor(() => finalStatus(w!.emu, m2.id) === 'failed', { what: 'failed after timeouts', timeoutMs: 30_000 });
    const err = w.emu.control.getMessage(m2.id)!.error!;
    expect(err).toMatchObject({ code: 'CHANNEL_TIMEOUT', type: 'provider' });
    expect(err.message).toMatch(/2 attempts/);
    expect(rx.uniqueIds()).toEqual(new Set([m.id, m2.id]));
  });

  it('Cast: 5xx and 429 are retried (one SMS); a too-long message fails clearly without reaching Cast; GHL status refusal in the first seconds is waited out', async () => {
    cast = await startFakeCast();
    w = await startWorld({ emulator: { statusRefusalWindowMs: 3500 } });
    b = await startBridge(w);
    const loc = w.locationIds[0]!;
    await b.provider.configureChannel(
      loc,
      { kind: 'cast', apiKey: CAST_KEY, baseUrl: cast.url, inboundApiKey: CAST_INBOUND_KEY, maxLength: 160 },
      { defaultRegion: 'PH' },
    );
    const contact = w.emu.control.createContact({ locationId: loc, firstName: 'Lia', phone: '+639171230000' });
    cast.injectFault(503, 1);
    cast.injectFault(429, 1);
    const m = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: contact.id,
      type: 'SMS',
      message: 'retry me',
      conversationProviderId: w.providerId,
    });
    await waitFor(() => cast!.sends.length === 1, { what: 'send after retries' });
    cast.setStatus(cast.sends[0]!.messageId, 'delivered');
    await waitFor(() => finalStatus(w!.emu, m.id) === 'delivered', { what: 'delivered' });
    await waitFor(async () => (await row(m.id)).ghl_status === 'delivered', { what: 'row delivered' });
    const r = await row(m.id);
    expect(r.attempts).toBe(3);
    expect(r.status_attempts).toBeGreaterThan(0); // refused at first, then set
    expect(cast.requests.filter((x) => x.path.includes('/sms/send')).map((x) => x.status)).toEqual([503, 429, 200]);

    const long = w.emu.control.sendMessageAsUser({
      locationId: loc,
      contactId: contact.id,
      type: 'SMS',
      message: 'x'.repeat(161),
      conversationProviderId: w.providerId,
    });
    await waitFor(() => finalStatus(w!.emu, long.id) === 'failed', { what: 'too long → failed' });
    expect(w.emu.control.getMessage(long.id)!.error).toMatchObject({ code: 'MESSAGE_TOO_LONG', type: 'validation' });
    expect(cast.sends).toHaveLength(1);
  });

  it('forward-only status merge', () => {
    expect(mergeStatus(null, 'pending')).toBe('pending');
    expect(mergeStatus('pending', 'delivered')).toBe('delivered');
    expect(mergeStatus('delivered', 'pending')).toBeNull();
    expect(mergeStatus('delivered', 'read')).toBe('read');
    expect(mergeStatus('delivered', 'failed')).toBeNull();
    expect(mergeStatus('pending', 'failed')).toBe('failed');
    expect(mergeStatus('failed', 'delivered')).toBeNull();
  });
});
