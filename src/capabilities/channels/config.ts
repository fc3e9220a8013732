import { z } from 'zod';

/**
 * Per-location channel configuration. The caller stores it (secrets encrypted) and passes the parsed object to
 * `createChannel()`. Fields listed in `CHANNEL_SECRET_FIELDS` must be encrypted at rest and masked in any output.
 */

const whsec = z
  .string()
  .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be a Standard Webhooks secret: "whsec_" followed by base64')
  .refine((s) => Buffer.from(s.slice(6), 'base64').length >= 24, 'secret must decode to at least 24 bytes');

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

export const httpChannelConfigSchema = z.object({
  kind: z.literal('http'),
  /** Where outbound messages are POSTed. */
  url: httpUrl,
  /** Signs outbound requests (Standard Webhooks). Secret. */
  signingSecret: whsec,
  /** Verifies inbound requests from the external system. Secret. Absent → inbound is refused. */
  inboundSecret: whsec.optional(),
  timeoutMs: z.number().int().min(1000).max(60_000).default(10_000),
  /** GHL inbound `type` when an inbound event does not say (contract field `channel`). */
  defaultInboundChannel: z.enum(['SMS', 'Email', 'Custom']).default('SMS'),
});

export const castChannelConfigSchema = z.object({
  kind: z.literal('cast'),
  /** `cast_` + 64 hex (live) or `cast_test_…` (sandbox). Sandbox length is undocumented, so only the prefix is checked. Secret. */
  apiKey: z.string().regex(/^cast_[A-Za-z0-9_]{8,}$/, 'must be a Cast API key ("cast_…" or "cast_test_…")'),
  baseUrl: httpUrl.default('https://api.cast.ph'),
  /** Pre-approved Cast sender ID (≤11 chars per doc A, ≤20 per doc N; we allow 20). Absent → Cast's default sender. */
  senderId: z.string().min(1).max(20).optional(),
  /** Shared key the SIM gateway presents on inbound POSTs (Bearer or X-API-Key). Secret. */
  inboundApiKey: z.string().min(16, 'inboundApiKey must be at least 16 characters'),
  /** Longest message we send, in characters (doc A hard limit 450; doc N 10,000 — UNCONFIRMED, so 450 by default). */
  maxLength: z.number().int().min(1).max(10_000).default(450),
  /** Optional cap on billed parts (GSM-7 153 / UCS-2 67 chars per part when split). */
  maxParts: z.number().int().min(1).max(100).optional(),
  /** Format of `to`: doc A accepts only local `09…`; doc N also E.164. Default local (works with both). */
  numberFormat: z.enum(['local', 'e164']).default('local'),
  /** Cast has no MMS: `drop` sends the text and logs the dropped URLs; `fail` fails the message. */
  attachments: z.enum(['drop', 'fail']).default('drop'),
  /** Client-side throttle per Cast account (Cast default limit: 10 sends/s). */
  ratePerSecond: z.number().positive().max(1000).default(10),
  timeoutMs: z.number().int().min(1000).max(60_000).default(30_000),
});

export const loopbackChannelConfigSchema = z.object({
  kind: z.literal('loopback'),
  /** `true` → reply `Auto-reply: got "<text>"`; a string → reply with that text; false/absent → no reply. */
  autoReply: z.union([z.boolean(), z.string().min(1)]).default(false),
  /** What `send()` reports: delivered (sync), pending (accepted; first `pollStatus` → delivered) or failed. */
  receipt: z.enum(['delivered', 'pending', 'failed']).default('delivered'),
});

export const channelConfigSchema = z.discriminatedUnion('kind', [
  httpChannelConfigSchema,
  castChannelConfigSchema,
  loopbackChannelConfigSchema,
]);

export type HttpChannelConfig = z.infer<typeof httpChannelConfigSchema>;
export type CastChannelConfig = z.infer<typeof castChannelConfigSchema>;
export type LoopbackChannelConfig = z.infer<typeof loopbackChannelConfigSchema>;
/** Parsed (defaults applied) config. */
export type ChannelConfig = z.infer<typeof channelConfigSchema>;
/** What an admin submits (defaults optional). */
export type ChannelConfigInput = z.input<typeof channelConfigSchema>;
export type ChannelKind = ChannelConfig['kind'];

/** Secret fields per kind: encrypt at rest, never log, mask in API output. */
export const CHANNEL_SECRET_FIELDS = {
  http: ['signingSecret', 'inboundSecret'],
  cast: ['apiKey', 'inboundApiKey'],
  loopback: [],
} as const satisfies { [K in ChannelKind]: readonly (keyof Extract<ChannelConfig, { kind: K }>)[] };

/** Copy of `cfg` with every secret replaced by `"***"` plus its last 4 characters (enough to tell keys apart). */
export function maskChannelConfig<T extends { kind: ChannelKind }>(cfg: T): T {
  const out: Record<string, unknown> = { ...cfg };
  for (const field of CHANNEL_SECRET_FIELDS[cfg.kind] as readonly string[]) {
    const v = out[field];
    if (typeof v === 'string') out[field] = v.length > 12 ? `***${v.slice(-4)}` : '***';
  }
  return out as T;
}
