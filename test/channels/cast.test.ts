import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ChannelConfigError,
  ChannelInputError,
  ChannelRetryableError,
  createChannel,
  type ChannelAdapter,
  type ChannelConfigInput,
  type InboundRequest,
  type OutboundMessage,
} from '../../src/capabilities/channels/index.js';
import { startFakeCast, type FakeCast, type FakeCastOptions } from '../fakes/cast-server.js';

const newKey = (): string => `cast_${randomBytes(32).toString('hex')}`;
const INBOUND_KEY = 'inbound-key-0123456789abcdef';
let seq = 0;

function sms(over: Partial<OutboundMessage> = {}): OutboundMessage {
  seq += 1;
  return {
    messageId: `ghlmsg${Date.now().toString(36)}${seq}`,
    locationId: 'loc1',
    contactId: 'contact1',
    channel: 'SMS',
    phone: '+639171234567',
    message: 'Hello from GHL',
    attachments: [],
    ...over,
  };
}

const servers: FakeCast[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(
  cfg: Partial<Extract<ChannelConfigInput, { kind: 'cast' }>> = {},
  fakeOpts: FakeCastOptions = {},
): Promise<{ fake: FakeCast; cast: ChannelAdapter; apiKey: string }> {
  const fake = await startFakeCast(fakeOpts);
  servers.push(fake);
  const apiKey = cfg.apiKey ?? newKey();
  const cast = createChannel({ kind: 'cast', baseUrl: fake.url, inboundApiKey: INBOUND_KEY, ...cfg, apiKey });
  return { fake, cast, apiKey };
}

async function retryable(p: Promise<unknown>): Promise<ChannelRetryableError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ChannelRetryableError);
  return err as ChannelRetryableError;
}

describe('Cast send', () => {
  it('sends with local number, sender id and the GHL messageId as idempotency key → accepted with Cast id', async () => {
    const { fake, cast } = await setup({ senderId: 'MYBRAND' });
    const msg = sms();
    const r = await cast.send(msg);
    expect(r).toEqual({ outcome: 'accepted', channelMessageId: expect.stringMatching(/^CAST[0-9A-F]+$/) });
    expect(fake.sends).toHaveLength(1);
    expect(fake.sends[0]).toMatchObject({
      to: '09171234567',
      message: 'Hello from GHL',
      senderId: 'MYBRAND',
      idempotencyKey: msg.messageId,
      parts: 1,
      path: '/api/v1/sms/send',
    });
  });

  it('numberFormat e164 sends +63…', async () => {
    const { fake, cast } = await setup({ numberFormat: 'e164' });
    expect((await cast.send(sms())).outcome).toBe('accepted');
    expect(fake.sends[0]?.to).toBe('+639171234567');
  });

  it('sandbox key → SANDBOX_ id', async () => {
    const { cast } = await setup({ apiKey: `cast_test_${randomBytes(8).toString('hex')}` });
    expect(await cast.send(sms())).toEqual({
      outcome: 'accepted',
      channelMessageId: expect.stringMatching(/^SANDBOX_/),
    });
  });

  it('a repeated send of the same GHL message is an idempotent replay: one SMS, same Cast id', async () => {
    const { fake, cast } = await setup();
    const msg = sms();
    const first = await cast.send(msg);
    const second = await cast.send(msg);
    expect(second).toEqual(first);
    expect(fake.sends).toHaveLength(1);
    expect(fake.requests.map((r) => r.replay)).toEqual([false, true]);
  });

  it('timeout after Cast processed the send → retryable; the retry replays, so exactly one SMS', async () => {
    const { fake, cast } = await setup({ timeoutMs: 1000 });
    fake.injectFault('timeout', 1, { afterProcessing: true });
    const msg = sms();
    const err = await retryable(cast.send(msg));
    expect(err.reason).toBe('timeout');
    const r = await cast.send(msg);
    expect(r.outcome).toBe('accepted');
    expect(fake.sends).toHaveLength(1);
    expect(r).toEqual({ outcome: 'accepted', channelMessageId: fake.sends[0]?.messageId });
    expect(fake.requests.at(-1)?.replay).toBe(true);
  });

  it('timeout before processing → retryable, retry sends once', async () => {
    const { fake, cast } = await setup({ timeoutMs: 1000 });
    fake.injectFault('timeout');
    const msg = sms();
    expect((await retryable(cast.send(msg))).reason).toBe('timeout');
    expect(fake.sends).toHaveLength(0);
    expect((await cast.send(msg)).outcome).toBe('accepted');
    expect(fake.sends).toHaveLength(1);
  });

  it.each([500, 502, 503] as const)('HTTP %s → retryable, then the retry succeeds exactly once', async (status) => {
    const { fake, cast } = await setup();
    fake.injectFault(status);
    const msg = sms();
    const err = await retryable(cast.send(msg));
    expect(err.reason).toBe(`http_${status}`);
    expect(err.retryAfterMs).toBeUndefined();
    expect(err.message).toContain(String(status));
    expect((await cast.send(msg)).outcome).toBe('accepted');
    expect(fake.sends).toHaveLength(1);
  });

  it('429 → retryable with Retry-After in ms', async () => {
    const { fake, cast } = await setup({}, { retryAfterSeconds: 7 });
    fake.injectFault(429);
    const err = await retryable(cast.send(sms()));
    expect(err.reason).toBe('rate_limited');
    expect(err.retryAfterMs).toBe(7000);
  });

  it("without a client throttle, Cast's own rate limit answers 429 with Retry-After", async () => {
    const { fake, cast } = await setup({ ratePerSecond: 1000 }, { ratePerSecond: 3, retryAfterSeconds: 2 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => cast.send(sms())));
    const limited = results
      .filter((r) => r.status === 'rejected')
      .map((r) => (r as PromiseRejectedResult).reason as unknown);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    expect(limited).toHaveLength(3);
    for (const e of limited) {
      expect(e).toBeInstanceOf(ChannelRetryableError);
      expect(e).toMatchObject({ reason: 'rate_limited', retryAfterMs: 2000 });
    }
    expect(fake.sends).toHaveLength(3);
  });

  it('the client throttle keeps a burst under the account limit (shared by all locations on one Cast account)', async () => {
    const fake = await startFakeCast({ ratePerSecond: 12 });
    servers.push(fake);
    const apiKey = newKey();
    const cfg = { kind: 'cast', baseUrl: fake.url, apiKey, inboundApiKey: INBOUND_KEY, ratePerSecond: 10 } as const;
    const locA = createChannel(cfg);
    const locB = createChannel(cfg);
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 14 }, (_, i) => (i % 2 ? locA : locB).send(sms())));
    expect(results.every((r) => r.outcome === 'accepted')).toBe(true);
    expect(fake.sends).toHaveLength(14);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1200); // 13 gaps of 100 ms, minus timer slack
  });

  it('caller abort while throttled → retryable "aborted", nothing sent', async () => {
    const { fake, cast } = await setup({ ratePerSecond: 1 });
    expect((await cast.send(sms())).outcome).toBe('accepted');
    const ac = new AbortController();
    const p = cast.send(sms(), ac.signal);
    ac.abort();
    expect((await retryable(p)).reason).toBe('aborted');
    expect(fake.sends).toHaveLength(1);
  });

  it('network error (nothing listening) → retryable "network"', async () => {
    const fake = await startFakeCast();
    const url = fake.url;
    await fake.close();
    const cast = createChannel({ kind: 'cast', baseUrl: url, apiKey: newKey(), inboundApiKey: INBOUND_KEY });
    const err = await retryable(cast.send(sms()));
    expect(err.reason).toBe('network');
  });

  describe('permanent errors → failed with the Cast error_code', () => {
    it('VALIDATION_ERROR (Cast doc-A edition refuses E.164)', async () => {
      const { cast } = await setup({ numberFormat: 'e164' }, { toFormat: 'local' });
      expect(await cast.send(sms())).toEqual({
        outcome: 'failed',
        error: {
          code: 'VALIDATION_ERROR',
          type: 'validation',
          message: 'Cast rejected the SMS: Invalid phone number format',
        },
      });
    });

    it('VALIDATION_ERROR for an unapproved sender id', async () => {
      const { cast } = await setup({ senderId: 'OTHER' }, { senderIds: ['MYBRAND'] });
      const r = await cast.send(sms());
      expect(r).toMatchObject({ outcome: 'failed', error: { code: 'VALIDATION_ERROR', type: 'validation' } });
    });

    it('INVALID_API_KEY → account error, key never echoed', async () => {
      const { cast, apiKey } = await setup({}, { apiKeys: [newKey()] });
      const r = await cast.send(sms());
      expect(r).toMatchObject({ outcome: 'failed', error: { code: 'INVALID_API_KEY', type: 'account' } });
      expect(JSON.stringify(r)).not.toContain(apiKey);
    });

    it.each([
      [402, 'INSUFFICIENT_CREDITS'],
      [402, 'CREDIT_LIMIT_REACHED'],
      [403, 'API_KEY_REVOKED'],
      [403, 'API_KEY_EXPIRED'],
      [403, 'USER_INACTIVE'],
      [403, 'IP_NOT_WHITELISTED'],
      [403, 'CHANNEL_NOT_ALLOWED'],
    ])('%s %s → failed, type account', async (status, code) => {
      const apiKey = newKey();
      const { cast } = await setup(
        { apiKey },
        { keyErrors: { [apiKey]: { status, code, error: `refused for key ${apiKey}` } } },
      );
      const r = await cast.send(sms());
      expect(r).toMatchObject({ outcome: 'failed', error: { code, type: 'account' } });
      // Cast's error text is passed on, but any key in it is redacted.
      expect(JSON.stringify(r)).not.toContain(apiKey);
      expect(JSON.stringify(r)).toContain('cast_***');
    });

    it('INSUFFICIENT_CREDITS from the balance check', async () => {
      const { cast } = await setup({}, { credits: 1 });
      expect((await cast.send(sms())).outcome).toBe('accepted');
      expect(await cast.send(sms())).toMatchObject({
        outcome: 'failed',
        error: { code: 'INSUFFICIENT_CREDITS', type: 'account' },
      });
    });
  });

  describe('local rules → failed before any request', () => {
    it('over maxLength (default 450 characters) → MESSAGE_TOO_LONG', async () => {
      const { fake, cast } = await setup();
      const r = await cast.send(sms({ message: 'x'.repeat(451) }));
      expect(r).toEqual({
        outcome: 'failed',
        error: {
          code: 'MESSAGE_TOO_LONG',
          type: 'validation',
          message: 'SMS is 451 characters (3 parts, GSM-7); this channel allows at most 450 characters',
        },
      });
      expect(fake.requests).toHaveLength(0);
      expect((await cast.send(sms({ message: 'x'.repeat(450) }))).outcome).toBe('accepted');
      expect(fake.sends[0]?.parts).toBe(3);
    });

    it('maxLength is configurable and counts characters, not UTF-16 units', async () => {
      const { cast } = await setup({ maxLength: 10 });
      expect((await cast.send(sms({ message: '😀'.repeat(10) }))).outcome).toBe('accepted');
      expect(await cast.send(sms({ message: '😀'.repeat(11) }))).toMatchObject({
        outcome: 'failed',
        error: { code: 'MESSAGE_TOO_LONG' },
      });
    });

    it('maxParts caps billed parts (UCS-2 splits at 67)', async () => {
      const { cast } = await setup({ maxParts: 2 });
      expect((await cast.send(sms({ message: 'ç'.repeat(134) }))).outcome).toBe('accepted');
      const r = await cast.send(sms({ message: 'ç'.repeat(135) }));
      expect(r).toMatchObject({
        outcome: 'failed',
        error: { code: 'MESSAGE_TOO_LONG', message: expect.stringContaining('3 parts') },
      });
    });

    it.each([['+14155550132'], [undefined]])('non-PH or missing phone %s → INVALID_PHONE', async (phone) => {
      const { fake, cast } = await setup();
      const r = await cast.send(sms({ phone }));
      expect(r).toMatchObject({ outcome: 'failed', error: { code: 'INVALID_PHONE', type: 'validation' } });
      expect(fake.requests).toHaveLength(0);
    });

    it('Email → CHANNEL_UNSUPPORTED', async () => {
      const { cast } = await setup();
      expect(cast.validateOutbound?.(sms({ channel: 'Email', subject: 's', html: '<p>x</p>' }))).toMatchObject({
        ok: false,
        error: { code: 'CHANNEL_UNSUPPORTED' },
      });
    });

    it("attachments 'drop' (default) sends the text only", async () => {
      const { fake, cast } = await setup();
      expect((await cast.send(sms({ attachments: ['https://example.com/a.png'] }))).outcome).toBe('accepted');
      expect(fake.sends[0]?.message).toBe('Hello from GHL');
    });

    it("attachments 'drop' with no text → EMPTY_MESSAGE naming the reason", async () => {
      const { cast } = await setup();
      const r = await cast.send(sms({ message: '', attachments: ['https://example.com/a.png'] }));
      expect(r).toMatchObject({
        outcome: 'failed',
        error: { code: 'EMPTY_MESSAGE', message: expect.stringContaining('attachments') },
      });
    });

    it("attachments 'fail' → ATTACHMENTS_UNSUPPORTED", async () => {
      const { fake, cast } = await setup({ attachments: 'fail' });
      const r = await cast.send(sms({ attachments: ['https://example.com/a.png'] }));
      expect(r).toMatchObject({ outcome: 'failed', error: { code: 'ATTACHMENTS_UNSUPPORTED' } });
      expect(fake.requests).toHaveLength(0);
    });
  });
});

describe('Cast pollStatus', () => {
  it.each([
    ['sent', {}, { status: 'pending' }],
    ['pending', { dlr_status: 'ACCEPTD' }, { status: 'pending' }],
    ['delivered', {}, { status: 'delivered' }],
    [
      'undelivered',
      { dlr_status: 'REJECTD', error_message: 'Rejected by carrier' },
      {
        status: 'failed',
        error: {
          code: 'REJECTD',
          type: 'provider',
          message: 'carrier could not deliver the SMS (REJECTD): Rejected by carrier',
        },
      },
    ],
    [
      'failed',
      { error_message: 'SMPP bind lost' },
      {
        status: 'failed',
        error: {
          code: 'FAILED',
          type: 'provider',
          message: 'Cast could not submit the SMS to the carrier: SMPP bind lost',
        },
      },
    ],
  ] as const)('Cast %s → %o', async (castStatus, extra, expected) => {
    const { fake, cast } = await setup();
    const sent = await cast.send(sms());
    const id = sent.outcome === 'accepted' ? sent.channelMessageId : undefined;
    expect(id).toBeDefined();
    if (castStatus !== 'sent') fake.setStatus(id as string, castStatus, extra);
    expect(await cast.pollStatus?.(id as string)).toEqual({ channelMessageId: id, ...expected });
  });

  it('unknown id, or an id of another Cast account → null (stop polling)', async () => {
    const { fake, cast } = await setup();
    expect(await cast.pollStatus?.('CASTDOESNOTEXIST')).toBeNull();
    const other = createChannel({ kind: 'cast', baseUrl: fake.url, apiKey: newKey(), inboundApiKey: INBOUND_KEY });
    const sent = await other.send(sms());
    expect(sent.outcome).toBe('accepted');
    expect(await cast.pollStatus?.((sent as { channelMessageId: string }).channelMessageId)).toBeNull();
  });

  it('rejected credentials → ChannelConfigError (no key in the message)', async () => {
    const { cast, apiKey } = await setup({}, { apiKeys: [newKey()] });
    const err = await cast.pollStatus?.('CAST1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChannelConfigError);
    expect(String((err as Error).message)).toMatch(/INVALID_API_KEY/);
    expect(String((err as Error).message)).not.toContain(apiKey);
  });

  it('network failure → retryable', async () => {
    const fake = await startFakeCast();
    await fake.close();
    const cast = createChannel({ kind: 'cast', baseUrl: fake.url, apiKey: newKey(), inboundApiKey: INBOUND_KEY });
    expect((await retryable(cast.pollStatus?.('CAST1') ?? Promise.resolve())).reason).toBe('network');
  });
});

describe('Cast inbound (our SIM-gateway contract)', () => {
  const cast = createChannel({ kind: 'cast', apiKey: newKey(), inboundApiKey: INBOUND_KEY });
  const json = (body: unknown, headers: Record<string, string> = {}): InboundRequest => ({
    headers: { 'content-type': 'application/json', ...headers },
    rawBody: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
  });

  it.each([
    [{ authorization: `Bearer ${INBOUND_KEY}` }, { ok: true }],
    [{ authorization: `bearer ${INBOUND_KEY}` }, { ok: true }],
    [{ 'x-api-key': INBOUND_KEY }, { ok: true }],
    [{}, { ok: false, reason: expect.stringMatching(/missing credentials/) }],
    [{ authorization: 'Bearer wrong-key-0123456789abcdef' }, { ok: false, reason: 'invalid inbound API key' }],
    [{ 'x-api-key': `${INBOUND_KEY}x` }, { ok: false, reason: 'invalid inbound API key' }],
    [{ authorization: `Basic ${INBOUND_KEY}` }, { ok: false, reason: expect.stringMatching(/missing credentials/) }],
  ])('verifyInbound %o', (headers, expected) => {
    expect(cast.verifyInbound(json({}, headers))).toEqual(expected);
  });

  it('parses one JSON message and converts the sender to E.164', () => {
    const r = cast.parseInbound(
      json({
        from: '09171234567',
        to: '09181234567',
        message: 'Yes please',
        message_id: 'gw-1',
        received_at: '2026-05-01T08:00:00Z',
      }),
    );
    expect(r).toEqual({
      receipts: [],
      messages: [
        {
          channelMessageId: 'gw-1',
          from: '+639171234567',
          to: '09181234567',
          text: 'Yes please',
          attachments: [],
          channel: 'SMS',
          receivedAt: '2026-05-01T08:00:00Z',
        },
      ],
    });
  });

  it('parses a batch, aliases and form-encoded bodies', () => {
    const batch = cast.parseInbound(
      json({
        messages: [
          { sender: '639171234567', text: 'a', id: 'x1' },
          { msisdn: '9171234567', message: 'b', id: 'x2' },
        ],
      }),
    );
    expect(batch.messages.map((m) => [m.channelMessageId, m.from, m.text])).toEqual([
      ['x1', '+639171234567', 'a'],
      ['x2', '+639171234567', 'b'],
    ]);
    const form = cast.parseInbound({
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      rawBody: Buffer.from('from=%2B639171234567&message=Hi+there&received_at=1777622400'),
    });
    expect(form.messages[0]).toMatchObject({
      from: '+639171234567',
      text: 'Hi there',
      receivedAt: '2026-05-01T08:00:00.000Z',
    });
  });

  it('non-PH senders are normalised with PH as home region', () => {
    expect(cast.parseInbound(json({ from: '+1 415 555 0132', message: 'hi' })).messages[0]?.from).toBe('+14155550132');
  });

  it('without a gateway id: deterministic id when a timestamp is present, unique otherwise', () => {
    const body = { from: '09171234567', message: 'yes', received_at: '2026-05-01T08:00:00Z' };
    const a = cast.parseInbound(json(body)).messages[0]?.channelMessageId;
    expect(a).toMatch(/^cast-in-[0-9a-f]{32}$/);
    expect(cast.parseInbound(json(body)).messages[0]?.channelMessageId).toBe(a);
    const noTs = { from: '09171234567', message: 'yes' };
    expect(cast.parseInbound(json(noTs)).messages[0]?.channelMessageId).not.toBe(
      cast.parseInbound(json(noTs)).messages[0]?.channelMessageId,
    );
  });

  it.each([
    ['empty body', '', /empty body/],
    ['bad JSON', '{"from":', /not valid JSON/],
    ['missing sender', { message: 'hi' }, /from: required \(sender phone number\)/],
    ['missing text', { from: '09171234567' }, /message: required/],
    ['unparsable sender', { from: 'GLOBE', message: 'hi' }, /from: not a phone number: "GLOBE"/],
    ['bad timestamp', { from: '09171234567', message: 'hi', received_at: 'yesterday' }, /received_at/],
    ['empty batch', { messages: [] }, /messages/],
    [
      'bad batch item',
      {
        messages: [
          { from: '09171234567', message: 'ok' },
          { from: 'x', message: 'hi' },
        ],
      },
      /messages\[1\]\.from: not a phone number/,
    ],
  ])('%s → ChannelInputError', (_name, body, why) => {
    const call = (): unknown => cast.parseInbound(json(body));
    expect(call).toThrow(ChannelInputError);
    expect(call).toThrow(why);
  });

  it('unsupported content type → ChannelInputError', () => {
    expect(() => cast.parseInbound({ headers: { 'content-type': 'text/plain' }, rawBody: Buffer.from('hi') })).toThrow(
      /unsupported content-type/,
    );
  });
});
