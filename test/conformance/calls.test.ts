import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeWorld, tokenFor, world, type World } from '../emulator/helpers.js';
import { call, spec } from './spec.js';

/** Call messages, recordings and transcripts (issue 15) against conversations.json. */
let w: World;
let t: string;
let contactId = '';
const control = async (path: string, body: unknown) => {
  const r = await fetch(`${w.base}/_emulator${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(r.status, await r.clone().text()).toBeLessThan(300);
  return (await r.json()) as Record<string, unknown>;
};
beforeAll(async () => {
  w = await world();
  t = String((await tokenFor(w, { locationId: w.locationId })).access_token);
  contactId = w.emu.control.createContact({ locationId: w.locationId, firstName: 'Cal', phone: '+15557654321' }).id;
});
afterAll(async () => closeWorld(w));

describe('conversations.json: calls', () => {
  it('get-message of a call carries meta.callDuration (a string in the spec) and meta.callStatus', async () => {
    const c = await control('/calls', { locationId: w.locationId, contactId, status: 'completed', duration: 42 });
    const r = await call(w.base, 'get-message', { token: t, pathParams: { id: String(c.messageId) } });
    expect(r.body.messageType).toBe('TYPE_CALL');
    expect(r.body.meta).toMatchObject({ callDuration: '42', callStatus: 'completed' });
  });

  it('get-message-recording serves binary audio; a message without one is refused', async () => {
    const c = await control('/calls', { locationId: w.locationId, contactId, status: 'completed' });
    const o = spec.op('get-message-recording');
    const path = o.path.replace('{messageId}', String(c.messageId)).replace('{locationId}', w.locationId);
    const res = await fetch(`${w.base}${path}`, { headers: { authorization: `Bearer ${t}`, version: '2021-04-15' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/x-wav');
    const buf = Buffer.from(await res.arrayBuffer());
    expect(buf.subarray(0, 4).toString()).toBe('RIFF');
    const none = await control('/calls', { locationId: w.locationId, contactId, status: 'no-answer' });
    await call(
      w.base,
      'get-message-recording',
      { token: t, pathParams: { messageId: String(none.messageId), locationId: w.locationId } },
      'invalid',
    );
    await call(
      w.base,
      'get-message-recording',
      { pathParams: { messageId: String(c.messageId), locationId: w.locationId } },
      'invalid',
    );
  });

  it('get-message-transcription: 404 until the delay has passed, then the sentences', async () => {
    const c = await control('/calls', {
      locationId: w.locationId,
      contactId,
      status: 'completed',
      transcript: ['Hi there.', 'Bye.'],
      transcriptDelayMs: 60_000,
    });
    const pathParams = { locationId: w.locationId, messageId: String(c.messageId) };
    await call(w.base, 'get-message-transcription', { token: t, pathParams }, 'invalid');
    w.emu.clock.advance(60_001);
    // The spec describes one sentence; GHL answers a list of them: each is checked against the sentence schema.
    const r = await call(w.base, 'get-message-transcription', {
      token: t,
      pathParams,
      unwrap: (b) => (b as unknown as unknown[])[0],
    });
    const list = r.body as unknown as Array<{ transcript: string }>;
    expect(list.map((s) => s.transcript)).toEqual(['Hi there.', 'Bye.']);
    for (const s of list) expect(spec.responseErrors('get-message-transcription', 200, s)).toEqual([]);
  });

  it('download-message-transcription serves the text', async () => {
    const c = await control('/calls', { locationId: w.locationId, contactId, transcript: ['One.', 'Two.'] });
    const o = spec.op('download-message-transcription');
    const path = o.path.replace('{messageId}', String(c.messageId)).replace('{locationId}', w.locationId);
    const res = await fetch(`${w.base}${path}`, { headers: { authorization: `Bearer ${t}`, version: '2021-04-15' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('One.\nTwo.');
    const never = await control('/calls', {
      locationId: w.locationId,
      contactId,
      transcript: ['x'],
      transcriptDelayMs: null,
    });
    await call(
      w.base,
      'download-message-transcription',
      { token: t, pathParams: { locationId: w.locationId, messageId: String(never.messageId) } },
      'invalid',
    );
  });

  it('add-an-outbound-message: the external call log is listed with the call object', async () => {
    const conv = await control('/calls', { locationId: w.locationId, contactId });
    await call(w.base, 'add-an-outbound-message', {
      token: t,
      body: {
        type: 'Call',
        conversationId: String(conv.conversationId),
        conversationProviderId: w.app.conversationProviderId,
        altId: 'ext-1',
        call: { to: '+15557654321', from: '+15550000001', status: 'completed' },
      },
    });
    const list = (await (await fetch(`${w.base}/_emulator/calls?locationId=${w.locationId}`)).json()) as {
      calls: Array<{ altId?: string; call: { status: string } | null; direction: string }>;
    };
    expect(list.calls.find((c) => c.altId === 'ext-1')).toMatchObject({
      direction: 'outbound',
      call: { status: 'completed' },
    });
  });

  it('workflow webhook control action posts the standard payload', async () => {
    const r = await control('/workflow-webhook', {
      url: `${w.receiver.url}/wf`,
      locationId: w.locationId,
      contactId,
      customData: { callStatus: 'completed' },
    });
    expect(r.status).toBe(200);
    const got = w.receiver.received.find((x) => x.path === '/wf')!;
    expect(got.json).toMatchObject({
      contact_id: contactId,
      location: { id: w.locationId },
      customData: { callStatus: 'completed' },
    });
  });
});
