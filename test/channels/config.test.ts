import { describe, expect, it } from 'vitest';
import {
  CHANNEL_SECRET_FIELDS,
  ChannelConfigError,
  castChannelConfigSchema,
  channelConfigSchema,
  createChannel,
  maskChannelConfig,
} from '../../src/capabilities/channels/index.js';

const castKey = `cast_${'ab'.repeat(32)}`;
const whsec = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

describe('channel config', () => {
  it('applies defaults', () => {
    expect(channelConfigSchema.parse({ kind: 'cast', apiKey: castKey, inboundApiKey: 'x'.repeat(16) })).toEqual({
      kind: 'cast',
      apiKey: castKey,
      inboundApiKey: 'x'.repeat(16),
      baseUrl: 'https://api.cast.ph',
      maxLength: 450,
      numberFormat: 'local',
      attachments: 'drop',
      ratePerSecond: 10,
      timeoutMs: 30_000,
    });
    expect(
      channelConfigSchema.parse({ kind: 'http', url: 'https://x.example/in', signingSecret: whsec }),
    ).toMatchObject({
      timeoutMs: 10_000,
      defaultInboundChannel: 'SMS',
    });
    expect(channelConfigSchema.parse({ kind: 'loopback' })).toEqual({
      kind: 'loopback',
      autoReply: false,
      receipt: 'delivered',
    });
  });

  it.each([
    [{ kind: 'http', url: 'ftp://x.example', signingSecret: whsec }, /url/],
    [
      { kind: 'http', url: 'https://x.example', signingSecret: 'not-a-secret' },
      /signingSecret: must be a Standard Webhooks secret/,
    ],
    [{ kind: 'http', url: 'https://x.example', signingSecret: 'whsec_AAAA' }, /at least 24 bytes/],
    [{ kind: 'cast', apiKey: 'sk_live_123456789', inboundApiKey: 'x'.repeat(16) }, /apiKey: must be a Cast API key/],
    [{ kind: 'cast', apiKey: castKey, inboundApiKey: 'short' }, /inboundApiKey: inboundApiKey must be at least 16/],
    [{ kind: 'cast', apiKey: castKey, inboundApiKey: 'x'.repeat(16), senderId: 'X'.repeat(21) }, /senderId/],
    [{ kind: 'loopback', receipt: 'read' }, /receipt/],
    [{ kind: 'smtp' }, /kind/],
  ])('createChannel rejects %o with a clear ChannelConfigError', (cfg, why) => {
    const call = (): unknown => createChannel(cfg as never);
    expect(call).toThrow(ChannelConfigError);
    expect(call).toThrow(why);
  });

  it('error messages never contain secret values', () => {
    const secret = 'whsec_definitely-not-base64!!';
    let message = '';
    try {
      createChannel({ kind: 'http', url: 'https://x.example', signingSecret: secret });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/signingSecret/);
    expect(message).not.toContain('definitely');
  });

  it('lists and masks secret fields', () => {
    expect(CHANNEL_SECRET_FIELDS).toEqual({
      http: ['signingSecret', 'inboundSecret'],
      cast: ['apiKey', 'inboundApiKey'],
      loopback: [],
    });
    const cfg = castChannelConfigSchema.parse({
      kind: 'cast',
      apiKey: castKey,
      inboundApiKey: 'inbound-key-123456789',
      senderId: 'BRAND',
    });
    const masked = maskChannelConfig(cfg);
    expect(masked).toMatchObject({ apiKey: `***${castKey.slice(-4)}`, inboundApiKey: '***6789', senderId: 'BRAND' });
    expect(JSON.stringify(masked)).not.toContain(castKey);
    expect(cfg.apiKey).toBe(castKey); // original untouched
    expect(maskChannelConfig({ kind: 'loopback', autoReply: true, receipt: 'delivered' } as const)).toEqual({
      kind: 'loopback',
      autoReply: true,
      receipt: 'delivered',
    });
  });
});
