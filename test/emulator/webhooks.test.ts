import { createVerify, verify } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { api, closeWorld, tokenFor, world, type Received, type World } from './helpers.js';

let w: World;
afterEach(async () => closeWorld(w));

function verifyBoth(w: World, r: Received): void {
  const ed = String(r.headers['x-ghl-signature']);
  const rsa = String(r.headers['x-wh-signature']);
  expect(verify(null, r.raw, w.emu.keys.ed25519PublicKeyPem, Buffer.from(ed, 'base64'))).toBe(true);
  const v = createVerify('SHA256');
  v.update(r.raw);
  v.end();
  expect(v.verify(w.emu.keys.rsaPublicKeyPem, rsa, 'base64')).toBe(true);
  // Bytes are exactly JSON.stringify(obj) of what was parsed.
  expect(r.raw.toString('utf8')).toBe(JSON.stringify(JSON.parse(r.raw.toString('utf8'))));
}

describe('webhooks', () => {
  it('INSTALL is signed with Ed25519 and RSA over the raw bytes; keys are published', async () => {
    w = await world();
    w.emu.control.authorize({ clientId: w.app.clientId, locationId: w.locationId });
    await w.receiver.waitFor(1);
    const r = w.receiver.received[0]!;
    expect(r.path).toBe('/webhooks');
    expect(r.json).toMatchObject({
      type: 'INSTALL',
      appId: w.app.appId,
      locationId: w.locationId,
      companyId: w.companyId,
    });
    expect(typeof r.json.webhookId).toBe('string');
    expect(typeof r.json.timestamp).toBe('string');
    verifyBoth(w, r);
    const keys = (await (await fetch(`${w.base}/_emulator/keys`)).json()) as Record<string, string>;
    expect(keys.ed25519PublicKeyPem).toBe(w.emu.keys.ed25519PublicKeyPem);
    expect(keys.rsaPublicKeyPem).toContain('BEGIN PUBLIC KEY');
    // Tampered bytes fail.
    const tampered = Buffer.from(r.raw.toString('utf8').replace('INSTALL', 'INSTALX'));
    expect(
      verify(
        null,
        tampered,
        w.emu.keys.ed25519PublicKeyPem,
        Buffer.from(String(r.headers['x-ghl-signature']), 'base64'),
      ),
    ).toBe(false);
  });

  it('RSA header can be switched off', async () => {
    w = await world({ signWithRsa: false });
    w.emu.control.authorize({ clientId: w.app.clientId, locationId: w.locationId });
    await w.receiver.waitFor(1);
    expect(w.receiver.received[0]!.headers['x-wh-signature']).toBeUndefined();
    expect(w.receiver.received[0]!.headers['x-ghl-signature']).toBeDefined();
  });

  it('send-message on a custom-provider location produces an unsigned ProviderOutboundMessage (as GHL: observed #224) and a signed OutboundMessage', async () => {
    w = await world();
    const t = await tokenFor(w, { locationId: w.locationId });
    const contact = w.emu.control.createContact({ locationId: w.locationId, firstName: 'Ann', phone: '+15551234567' });
    const res = await api(w, String(t.access_token), 'POST', '/conversations/messages', {
      type: 'SMS',
      contactId: contact.id,
      message: 'hello',
    });
    await w.emu.idle();
    const p = w.receiver.received.find((r) => r.path === '/provider')!;
    expect(p.json).toMatchObject({ type: 'SMS', messageId: res.body.messageId, message: 'hello' });
    expect(p.headers['x-ghl-signature']).toBeUndefined();
    expect(p.headers['x-wh-signature']).toBeUndefined();
    const ev = w.receiver.received.find((r) => r.path === '/webhooks' && r.json.type === 'OutboundMessage')!;
    // The fields of webhook-events/OutboundMessage.md (a default provider's message: short type name).
    expect(ev.json).toMatchObject({
      type: 'OutboundMessage',
      locationId: w.locationId,
      contactId: contact.id,
      messageId: res.body.messageId,
      body: 'hello',
      direction: 'outbound',
      messageType: 'SMS',
      status: 'pending',
      source: 'api',
      contentType: 'text/plain',
      conversationProviderId: w.app.conversationProviderId,
      attachments: [],
    });
    expect(typeof ev.json.conversationId).toBe('string');
    expect(typeof ev.json.dateAdded).toBe('string');
    verifyBoth(w, ev);
  });

  it('send-message with signProviderDeliveries produces a signed ProviderOutboundMessage', async () => {
    w = await world({ signProviderDeliveries: true });
    const t = await tokenFor(w, { locationId: w.locationId });
    const contact = w.emu.control.createContact({ locationId: w.locationId, firstName: 'Ann', phone: '+15551234567' });
    const res = await api(w, String(t.access_token), 'POST', '/conversations/messages', {
      type: 'SMS',
      contactId: contact.id,
      message: 'hello',
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'pending' });
    await w.emu.idle();
    const prov = w.receiver.received.filter((r) => r.path === '/provider');
    expect(prov).toHaveLength(1);
    const p = prov[0]!;
    expect(p.json).toMatchObject({
      type: 'SMS',
      contactId: contact.id,
      locationId: w.locationId,
      messageId: res.body.messageId,
      phone: '+15551234567',
      message: 'hello',
      attachments: [],
    });
    expect(typeof p.json.webhookId).toBe('string');
    verifyBoth(w, p);
    const d = w.emu.control.listDeliveries({ kind: 'provider' });
    expect(d[0]).toMatchObject({ state: 'delivered', eventType: 'ProviderOutboundMessage' });
    expect(d[0]!.attempts[0]!.status).toBe(200);
    // OutboundMessage went to the default webhook URL too.
    expect(w.receiver.received.some((r) => r.path === '/webhooks' && r.json.type === 'OutboundMessage')).toBe(true);
  });

  it('UI send (sendMessageAsUser) of an Email via a custom Email provider', async () => {
    w = await world({ signProviderDeliveries: true }, { type: 'Email', isCustom: true });
    await tokenFor(w, { locationId: w.locationId });
    const contact = w.emu.control.createContact({ locationId: w.locationId, email: 'ann@example.com' });
    const m = w.emu.control.sendMessageAsUser({
      locationId: w.locationId,
      contactId: contact.id,
      type: 'Email',
      subject: 'Hi',
      html: '<p>x</p>',
      conversationProviderId: w.app.conversationProviderId!,
    });
    await w.emu.idle();
    const p = w.receiver.received.find((r) => r.path === '/provider')!;
    expect(p.json).toMatchObject({
      type: 'Email',
      emailTo: ['ann@example.com'],
      subject: 'Hi',
      html: '<p>x</p>',
      messageId: m.id,
      emailMessageId: m.id,
    });
    expect(m.messageType).toBe('TYPE_CUSTOM_PROVIDER_EMAIL');
    verifyBoth(w, p);
    // A custom provider's message carries the full type name in OutboundMessage (observed #224).
    const ev = w.receiver.received.find((r) => r.path === '/webhooks' && r.json.type === 'OutboundMessage');
    expect(ev?.json).toMatchObject({
      messageId: m.id,
      messageType: 'TYPE_CUSTOM_PROVIDER_EMAIL',
      direction: 'outbound',
    });
  });

  it('provider envelope fields can be switched off', async () => {
    w = await world({ providerWebhookEnvelope: false });
    await tokenFor(w, { locationId: w.locationId });
    const c = w.emu.control.createContact({ locationId: w.locationId, phone: '+15551234567' });
    w.emu.control.sendMessageAsUser({ locationId: w.locationId, contactId: c.id, type: 'SMS', message: 'x' });
    await w.emu.idle();
    const p = w.receiver.received.find((r) => r.path === '/provider')!;
    expect(p.json.webhookId).toBeUndefined();
    expect(p.json.timestamp).toBeUndefined();
  });

  it('retries only on 429, up to 6 times, with the same signed bytes', async () => {
    w = await world({ webhookRetryIntervalMs: 5, webhookRetryJitterMs: 5 });
    w.receiver.respond = () => 429;
    w.emu.control.authorize({ clientId: w.app.clientId, locationId: w.locationId });
    await w.emu.idle();
    expect(w.receiver.received).toHaveLength(7);
    expect(new Set(w.receiver.received.map((r) => r.raw.toString()))).toHaveLength(1);
    const d = w.emu.control.listDeliveries()[0]!;
    expect(d.state).toBe('failed');
    expect(d.attempts).toHaveLength(7);
  });

  it('a 429 then 200 is delivered on the retry', async () => {
    w = await world({ webhookRetryIntervalMs: 1 });
    w.receiver.respond = (_r, i) => (i === 0 ? 429 : 200);
    w.emu.control.authorize({ clientId: w.app.clientId, locationId: w.locationId });
    await w.emu.idle();
    expect(w.receiver.received).toHaveLength(2);
    expect(w.emu.control.listDeliveries()[0]!.state).toBe('delivered');
  });

  it('5xx and other 4xx are final (no retry)', async () => {
    w = await world({ webhookRetryIntervalMs: 1 });
    w.receiver.respond = () => 503;
    w.emu.control.authorize({ clientId: w.app.clientId, locationId: w.locationId });
    await w.emu.idle();
    expect(w.receiver.received).toHaveLength(1);
    expect(w.emu.control.listDeliveries()[0]!.state).toBe('failed');
  });

  it('timeouts are final and recorded', async () => {
    w = await world({ webhookTimeoutMs: 50 });
    // A URL that accepts the connection but never answers: the emulator itself with a timeout fault.
    w.emu.control.injectFault({ pathPattern: '/hang', times: 1, kind: 'timeout' });
    w.emu.control.updateApp(w.app.clientId, { webhookUrl: `${w.base}/hang` });
    w.emu.control.authorize({ clientId: w.app.clientId, locationId: w.locationId });
    await w.emu.idle();
    const d = w.emu.control.listDeliveries()[0]!;
    expect(d.state).toBe('failed');
    expect(d.attempts[0]!.error).toBe('timeout');
  });

  it('drop and delay webhooks', async () => {
    w = await world();
    w.emu.control.dropWebhooks(1);
    w.emu.control.authorize({ clientId: w.app.clientId, locationId: w.locationId });
    await w.emu.idle();
    expect(w.receiver.received).toHaveLength(0);
    expect(w.emu.control.listDeliveries()[0]!.state).toBe('dropped');
    w.emu.control.delayWebhooks(30);
    const c = w.emu.control.createContact({ locationId: w.locationId, firstName: 'Bo' });
    expect(w.receiver.received).toHaveLength(0);
    await w.emu.idle();
    expect(w.receiver.received.map((r) => r.json.type)).toEqual(['ContactCreate']);
    expect(w.receiver.received[0]!.json.id).toBe(c.id);
  });
});
