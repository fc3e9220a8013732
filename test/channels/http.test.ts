import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ChannelInputError,
  ChannelRetryableError,
  createChannel,
  type ChannelAdapter,
  type InboundRequest,
  type OutboundMessage,
} from '../../src/capabilities/channels/index.js';
import { startFakeReceiver, type FakeReceiver } from '../fakes/http-receiver.js';

const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
let seq = 0;
function out(over: Partial<OutboundMessage> = {}): OutboundMessage {
  seq += 1;
  return {
    messageId: `ghlmsg${Date.now().toString(36)}${seq}`,
    locationId: 'loc1',
    contactId: 'contact1',
    channel: 'SMS',
    phone: '+15864603685',
    message: 'The text message to be sent to the contact',
    attachments: [],
    ...over,
  };
}

const receivers: FakeReceiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function setup(
  opts: { timeoutMs?: number; receiverSecret?: string } = {},
): Promise<{ rx: FakeReceiver; http: ChannelAdapter }> {
  const signingSecret = newSecret();
  const rx = await startFakeReceiver(opts.receiverSecret ?? signingSecret);
  receivers.push(rx);
  const http = createChannel({
    kind: 'http',
    url: rx.url,
    signingSecret,
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  });
  return { rx, http };
}

async function retryable(p: Promise<unknown>): Promise<ChannelRetryableError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ChannelRetryableError);
  return err as ChannelRetryableError;
}

describe('HTTP channel send', () => {
  it('POSTs a Standard-Webhooks-signed JSON body; webhook-id = GHL messageId; 2xx {} → accepted', async () => {
    const { rx, http } = await setup();
    const msg = out({ attachments: ['https://example.com/a.png'], userId: 'user1' });
    expect(await http.send(msg)).toEqual({ outcome: 'accepted' });
    expect(rx.received).toHaveLength(1);
    const got = rx.received[0];
    expect(got?.verified).toBe(true);
    expect(got?.webhookId).toBe(msg.messageId);
    expect(got?.headers['content-type']).toBe('application/json');
    expect(got?.body).toEqual({
      type: 'message.outbound',
      messageId: msg.messageId,
      locationId: 'loc1',
      contactId: 'contact1',
      channel: 'SMS',
      phone: '+15864603685',
      message: msg.message,
      attachments: ['https://example.com/a.png'],
      userId: 'user1',
    });
  });

  it('Email fields are relayed', async () => {
    const { rx, http } = await setup();
    const msg = out({
      channel: 'Email',
      phone: undefined,
      message: undefined,
      subject: 'Hi',
      html: '<p>x</p>',
      emailTo: ['a@b.c'],
      emailFrom: 'Me <me@x.y>',
      replyToAltId: 'alt-1',
    });
    expect((await http.send(msg)).outcome).toBe('accepted');
    expect(rx.received[0]?.body).toMatchObject({
      channel: 'Email',
      subject: 'Hi',
      html: '<p>x</p>',
      emailTo: ['a@b.c'],
      emailFrom: 'Me <me@x.y>',
      replyToAltId: 'alt-1',
    });
  });

  it('receiver answer {status:"delivered", id} → delivered with its id; {status:"accepted"} → accepted', async () => {
    const { rx, http } = await setup();
    rx.answer(
      { status: 200, body: { status: 'delivered', id: 'ext-1' } },
      { status: 202, body: { status: 'accepted', id: 'ext-2' } },
    );
    expect(await http.send(out())).toEqual({ outcome: 'delivered', channelMessageId: 'ext-1' });
    expect(await http.send(out())).toEqual({ outcome: 'accepted', channelMessageId: 'ext-2' });
  });

  it('retries of one message carry the same webhook-id, so the receiver can dedupe', async () => {
    const { rx, http } = await setup();
    rx.answer({ status: 503 });
    const msg = out();
    await retryable(http.send(msg));
    expect((await http.send(msg)).outcome).toBe('accepted');
    expect(rx.received).toHaveLength(2);
    expect(rx.received.every((r) => r.verified)).toBe(true);
    expect(rx.uniqueIds()).toEqual(new Set([msg.messageId]));
  });

  it.each([
    [
      400,
      { error: { code: 'UNKNOWN_CONTACT', message: 'no such contact' } },
      { code: 'UNKNOWN_CONTACT', type: 'provider', message: 'no such contact' },
    ],
    [
      422,
      { error: { code: 'BAD_NUMBER', type: 'validation', message: 'number blocked' } },
      { code: 'BAD_NUMBER', type: 'validation', message: 'number blocked' },
    ],
    [422, { message: 'text too long' }, { code: 'HTTP_422', type: 'provider', message: 'text too long' }],
    [
      403,
      { error: 'forbidden for this tenant' },
      { code: 'HTTP_403', type: 'account', message: 'forbidden for this tenant' },
    ],
    [404, 'no route here', { code: 'HTTP_404', type: 'provider', message: 'no route here' }],
    [410, undefined, { code: 'HTTP_410', type: 'provider', message: 'receiver rejected the message (HTTP 410)' }],
  ])('HTTP %s → failed with the receiver’s message', async (status, body, error) => {
    const { rx, http } = await setup();
    rx.answer({ status, body });
    expect(await http.send(out())).toEqual({ outcome: 'failed', error });
  });

  it('a receiver that cannot verify our signature (wrong secret) → failed, type account', async () => {
    const { rx, http } = await setup({ receiverSecret: newSecret() });
    const r = await http.send(out());
    expect(rx.received[0]?.verified).toBe(false);
    expect(r).toEqual({
      outcome: 'failed',
      error: { code: 'BAD_SIGNATURE', type: 'account', message: 'No matching signature found' },
    });
  });

  it('redirect → failed (configure the final URL), not followed', async () => {
    const { rx, http } = await setup();
    rx.answer({ status: 302, headers: { location: 'http://127.0.0.1:1/elsewhere' } });
    expect(await http.send(out())).toMatchObject({ outcome: 'failed', error: { code: 'HTTP_302', type: 'account' } });
  });

  it.each([
    [408, {}, 'http_408', undefined],
    [429, { 'retry-after': '3' }, 'rate_limited', 3000],
    [500, {}, 'http_500', undefined],
    [502, {}, 'http_502', undefined],
    [503, { 'retry-after': '120' }, 'http_503', 120_000],
  ])('HTTP %s → retryable (%o)', async (status, headers, reason, retryAfterMs) => {
    const { rx, http } = await setup();
    rx.answer({ status, headers, body: { error: 'busy' } });
    const err = await retryable(http.send(out()));
    expect(err.reason).toBe(reason);
    expect(err.retryAfterMs).toBe(retryAfterMs);
  });

  it('Retry-After as an HTTP date', async () => {
    const { rx, http } = await setup();
    rx.answer({ status: 429, headers: { 'retry-after': new Date(Date.now() + 30_000).toUTCString() } });
    const err = await retryable(http.send(out()));
    expect(err.retryAfterMs).toBeGreaterThan(27_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('timeout → retryable "timeout"', async () => {
    const { rx, http } = await setup({ timeoutMs: 1000 });
    rx.answer({ hang: true });
    const err = await retryable(http.send(out()));
    expect(err.reason).toBe('timeout');
  });

  it('caller abort → retryable "aborted"', async () => {
    const { rx, http } = await setup();
    rx.answer({ hang: true });
    const ac = new AbortController();
    const p = http.send(out(), ac.signal);
    ac.abort();
    expect((await retryable(p)).reason).toBe('aborted');
  });

  it('network error → retryable "network"', async () => {
    const { rx } = await setup();
    const url = rx.url;
    await rx.close();
    receivers.length = 0;
    const http = createChannel({ kind: 'http', url, signingSecret: newSecret() });
    expect((await retryable(http.send(out()))).reason).toBe('network');
  });

  it('nothing to deliver → EMPTY_MESSAGE without a request', async () => {
    const { rx, http } = await setup();
    expect(await http.send(out({ message: '' }))).toMatchObject({
      outcome: 'failed',
      error: { code: 'EMPTY_MESSAGE', type: 'validation' },
    });
    expect(rx.received).toHaveLength(0);
  });
});

describe('HTTP channel inbound', () => {
  const inboundSecret = newSecret();
  const http = createChannel({
    kind: 'http',
    url: 'https://cc.example.com/ghl',
    signingSecret: newSecret(),
    inboundSecret,
  });
  const external = new Webhook(inboundSecret);

  function signed(body: unknown, opts: { id?: string; at?: Date; secret?: string } = {}): InboundRequest {
    const raw = typeof body === 'string' ? body : JSON.stringify(body);
    const id = opts.id ?? `evt_${randomBytes(6).toString('hex')}`;
    const at = opts.at ?? new Date();
    const signer = opts.secret ? new Webhook(opts.secret) : external;
    return {
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': signer.sign(id, at, raw),
      },
      rawBody: Buffer.from(raw),
    };
  }

  it('valid signature → ok (also with multi-valued headers and several signatures)', () => {
    const req = signed({ type: 'message', id: 'm1', from: '+15551234567', text: 'hi' });
    expect(http.verifyInbound(req)).toEqual({ ok: true });
    const sig = req.headers['webhook-signature'] as string;
    const rotated = { ...req.headers, 'webhook-signature': [`v1,AAAA ${sig}`] };
    expect(http.verifyInbound({ ...req, headers: rotated })).toEqual({ ok: true });
  });

  it.each([
    [
      'tampered body',
      (r: InboundRequest): InboundRequest => ({ ...r, rawBody: Buffer.from(r.rawBody.toString().replace('hi', 'ho')) }),
      /No matching signature/,
    ],
    [
      'missing signature',
      (r: InboundRequest): InboundRequest => ({ ...r, headers: { ...r.headers, 'webhook-signature': undefined } }),
      /missing webhook-id, webhook-timestamp or webhook-signature/,
    ],
    [
      'missing id',
      (r: InboundRequest): InboundRequest => ({ ...r, headers: { ...r.headers, 'webhook-id': undefined } }),
      /missing/,
    ],
    [
      'other event id',
      (r: InboundRequest): InboundRequest => ({ ...r, headers: { ...r.headers, 'webhook-id': 'evt_other' } }),
      /No matching signature/,
    ],
  ])('%s → not ok', (_n, mutate, reason) => {
    const r = http.verifyInbound(mutate(signed({ type: 'message', id: 'm1', from: '+15551234567', text: 'hi' })));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('signed with the wrong key → not ok', () => {
    const r = http.verifyInbound(signed({ type: 'message', id: 'm1', from: 'x', text: 'hi' }, { secret: newSecret() }));
    expect(r).toEqual({ ok: false, reason: 'No matching signature found' });
  });

  it('stale timestamp (replay) → not ok', () => {
    const r = http.verifyInbound(
      signed({ type: 'message', id: 'm1', from: 'x', text: 'hi' }, { at: new Date(Date.now() - 10 * 60_000) }),
    );
    expect(r).toEqual({ ok: false, reason: 'Message timestamp too old' });
  });

  it('no inboundSecret configured → inbound refused', () => {
    const noInbound = createChannel({ kind: 'http', url: 'https://cc.example.com/ghl', signingSecret: newSecret() });
    expect(noInbound.verifyInbound(signed({ type: 'message' }))).toEqual({
      ok: false,
      reason: expect.stringMatching(/not configured/),
    });
  });

  it('parses a message event (channel defaults to SMS)', () => {
    const r = http.parseInbound(
      signed({
        type: 'message',
        id: 'chat-42',
        from: '+15551234567',
        to: 'support',
        text: 'Where is my order?',
        attachments: ['https://cdn.example.com/x.png'],
        timestamp: '2026-05-01T08:00:00+08:00',
        conversationRef: 'session-9',
        contactId: 'c-1',
      }),
    );
    expect(r).toEqual({
      receipts: [],
      messages: [
        {
          channelMessageId: 'chat-42',
          from: '+15551234567',
          to: 'support',
          text: 'Where is my order?',
          subject: undefined,
          html: undefined,
          attachments: ['https://cdn.example.com/x.png'],
          channel: 'SMS',
          receivedAt: '2026-05-01T08:00:00+08:00',
          conversationRef: 'session-9',
          contactId: 'c-1',
        },
      ],
    });
  });

  it('parses a batch of messages and receipts; defaultInboundChannel applies', () => {
    const custom = createChannel({
      kind: 'http',
      url: 'https://cc.example.com/ghl',
      signingSecret: newSecret(),
      inboundSecret,
      defaultInboundChannel: 'Custom',
    });
    const r = custom.parseInbound(
      signed({
        events: [
          { type: 'message', id: 'e1', from: 'a@b.c', html: '<p>hi</p>', subject: 'Re: x', channel: 'Email' },
          { type: 'message', id: 'e2', from: 'visitor-7', text: 'hello' },
          { type: 'receipt', messageId: 'ghl-1', status: 'delivered' },
          {
            type: 'receipt',
            channelMessageId: 'ext-9',
            status: 'failed',
            error: { code: 'UNREACHABLE', message: 'agent offline' },
          },
          { type: 'receipt', messageId: 'ghl-2', status: 'read' },
        ],
      }),
    );
    expect(r.messages.map((m) => [m.channelMessageId, m.channel])).toEqual([
      ['e1', 'Email'],
      ['e2', 'Custom'],
    ]);
    expect(r.receipts).toEqual([
      { ghlMessageId: 'ghl-1', channelMessageId: undefined, status: 'delivered', error: undefined },
      {
        ghlMessageId: undefined,
        channelMessageId: 'ext-9',
        status: 'failed',
        error: { code: 'UNREACHABLE', type: 'provider', message: 'agent offline' },
      },
      { ghlMessageId: 'ghl-2', channelMessageId: undefined, status: 'read', error: undefined },
    ]);
  });

  it.each([
    ['empty body', '', /inbound event: empty body/],
    ['bad JSON', '{"type":', /inbound event: body is not valid JSON/],
    ['array body', [], /inbound event: /],
    ['unknown type', { type: 'hello' }, /type: /],
    ['message without id', { type: 'message', from: 'x', text: 'hi' }, /^inbound event: id: /],
    ['message without content', { type: 'message', id: 'm', from: 'x' }, /a message needs text, html or attachments/],
    ['bad attachment URL', { type: 'message', id: 'm', from: 'x', attachments: ['ftp://x/y'] }, /attachments\[0\]/],
    ['bad timestamp', { type: 'message', id: 'm', from: 'x', text: 'hi', timestamp: 'yesterday' }, /timestamp/],
    [
      'receipt without ids',
      { type: 'receipt', status: 'delivered' },
      /a receipt needs messageId \(GHL id\) or channelMessageId/,
    ],
    ['receipt bad status', { type: 'receipt', messageId: 'g', status: 'sent' }, /status: /],
    [
      'receipt error missing message',
      { type: 'receipt', messageId: 'g', status: 'failed', error: { code: 'X' } },
      /error\.message/,
    ],
    ['empty batch', { events: [] }, /events: /],
    [
      'bad batch item',
      {
        events: [
          { type: 'message', id: 'm', from: 'x', text: 'ok' },
          { type: 'message', id: 'n', text: 'no sender' },
        ],
      },
      /events\[1\]\.from: /,
    ],
  ])('%s → ChannelInputError with a precise message', (_name, body, why) => {
    const call = (): unknown => http.parseInbound(signed(body));
    expect(call).toThrow(ChannelInputError);
    expect(call).toThrow(why);
  });

  it('end to end: an external system POSTs a signed event to a Fastify route that verifies the raw body', async () => {
    const app = Fastify({ logger: false });
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    app.post('/inbound', async (req, reply) => {
      const inbound = { headers: req.headers, rawBody: req.body as Buffer };
      const v = http.verifyInbound(inbound);
      if (!v.ok) return reply.code(401).send({ error: v.reason });
      try {
        return reply.send(http.parseInbound(inbound));
      } catch (e) {
        if (e instanceof ChannelInputError) return reply.code(400).send({ error: e.message });
        throw e;
      }
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/inbound`;
      const post = (req: InboundRequest): Promise<Response> =>
        fetch(url, {
          method: 'POST',
          headers: req.headers as Record<string, string>,
          body: new Uint8Array(req.rawBody),
          signal: AbortSignal.timeout(5000),
        });

      const ok = await post(signed({ type: 'message', id: 'm1', from: '+15551234567', text: 'hi' }));
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { messages: unknown[] }).messages).toHaveLength(1);

      const forged = await post(
        signed({ type: 'message', id: 'm1', from: '+15551234567', text: 'hi' }, { secret: newSecret() }),
      );
      expect(forged.status).toBe(401);

      const bad = await post(signed({ type: 'receipt', status: 'delivered' }));
      expect(bad.status).toBe(400);
      expect(await bad.json()).toEqual({
        error: 'inbound event: a receipt needs messageId (GHL id) or channelMessageId',
      });
    } finally {
      await app.close();
    }
  });
});
