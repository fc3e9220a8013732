import { afterEach, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { Receiver } from './helpers.js';

let emu: Emulator;
let rx: Receiver;
afterEach(async () => {
  await emu.close();
  await rx.close();
});

async function post(base: string, path: string, body: unknown) {
  const r = await fetch(`${base}/_emulator${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

describe('control API over HTTP', () => {
  it('seeds, installs, simulates a UI send, lists deliveries, resets', async () => {
    emu = await createEmulator({ seed: 5 });
    const base = await emu.listen();
    rx = new Receiver();
    const rurl = await rx.start();
    const ag = await post(base, '/agencies', { name: 'A' });
    expect(ag.status).toBe(201);
    const loc = await post(base, '/locations', { companyId: ag.body.id, name: 'L' });
    const app = await post(base, '/apps', {
      name: 'P',
      redirectUri: 'http://127.0.0.1:1/cb',
      scopes: 'conversations/message.write contacts.readonly',
      conversationProvider: { type: 'SMS' },
    });
    expect(String(app.body.clientId)).toMatch(/^[0-9a-f]{24}-/);
    const upd = await fetch(`${base}/_emulator/apps/${String(app.body.clientId)}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ providerDeliveryUrl: `${rurl}/deliver`, webhookUrl: `${rurl}/hooks` }),
    });
    expect(upd.status).toBe(200);
    const auth = await post(base, '/authorize', { clientId: app.body.clientId, locationId: loc.body.id, state: 'abc' });
    expect(String(auth.body.redirectUrl)).toContain('state=abc');
    const contact = await post(base, '/contacts', { locationId: loc.body.id, phone: '+15550001234' });
    const sent = await post(base, '/send-message', {
      locationId: loc.body.id,
      contactId: contact.body.id,
      type: 'SMS',
      message: 'yo',
    });
    expect(sent.status).toBe(201);
    expect(sent.body.status).toBe('pending');
    await fetch(`${base}/_emulator/idle`);
    const deliveries = (await (await fetch(`${base}/_emulator/deliveries?kind=provider`)).json()) as {
      state: string;
      payload: { message: string };
    }[];
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ state: 'delivered', payload: { message: 'yo' } });
    expect(rx.received.map((r) => r.json.type ?? r.path).sort()).toEqual([
      'ContactCreate',
      'INSTALL',
      'OutboundMessage',
      'SMS',
    ]);
    const bad = await post(base, '/locations', { companyId: 'nope', name: 'x' });
    expect(bad).toMatchObject({ status: 400, body: { statusCode: 400 } });
    const clock = await post(base, '/clock/advance', { ms: 1000 });
    expect(typeof clock.body.now).toBe('number');
    await post(base, '/reset', {});
    const state = (await (await fetch(`${base}/_emulator/state`)).json()) as Record<string, unknown[]>;
    expect(state.agencies).toEqual([]);
    expect(state.messages).toEqual([]);
  });
});
