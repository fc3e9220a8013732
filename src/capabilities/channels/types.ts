/**
 * Channel adapter layer: the contract between the send/receive orchestrator and one external channel
 * (a generic signed-HTTP system, the Cast.ph SMS gateway, or the in-process loopback used by the sandbox).
 *
 * Caller contract (summary):
 * - `send()` never throws for a *permanent* problem: it resolves `{ outcome: 'failed', error }`, which maps 1:1 onto
 *   GHL `PUT /conversations/messages/{id}/status` `{ status: 'failed', error }`.
 * - `send()` THROWS `ChannelRetryableError` for transient problems (5xx, 408/429, network, timeout, abort). The caller's
 *   durable job retries with backoff, honouring `retryAfterMs` when present. Every attempt of one message carries the same
 *   GHL `messageId` as idempotency key, so retries are safe where the channel dedupes (Cast `X-Idempotency-Key`,
 *   Standard Webhooks `webhook-id`).
 * - `send()` runs `validateOutbound()` itself; callers may call it earlier to fail fast before queueing.
 * - Inbound: call `verifyInbound()` first (authenticity), then `parseInbound()` (shape). `parseInbound()` does NOT verify.
 */

/** GHL error object as accepted by Update Message Status (all three fields required by GHL). */
export interface ChannelError {
  /** Stable machine code: the channel's own code (e.g. Cast `INSUFFICIENT_CREDITS`) or ours (`MESSAGE_TOO_LONG`, `HTTP_404`). */
  code: string;
  /**
   * Coarse class, so the caller can decide whom to alert:
   * - `validation`: this message/recipient was rejected (fix the content or the contact).
   * - `account`:    credentials, credits, whitelist, channel not enabled — an operator must act; other messages will fail too.
   * - `provider`:   the channel refused or could not deliver for its own reasons.
   */
  type: 'validation' | 'account' | 'provider';
  /** Human-readable, safe to show in GHL (never contains secrets). */
  message: string;
}

/** One GHL ProviderOutboundMessage, already parsed by the webhook layer (docs/ghl-behaviour.md#provider-outbound-message). */
export interface OutboundMessage {
  /** GHL messageId; used as the idempotency key on every attempt. */
  messageId: string;
  locationId: string;
  contactId: string;
  channel: 'SMS' | 'Email';
  /** E.164 (SMS). */
  phone?: string;
  /** SMS text. */
  message?: string;
  subject?: string;
  html?: string;
  emailTo?: string[];
  emailFrom?: string;
  /** Attachment URLs. */
  attachments: string[];
  /** Extra-email providers: the altId of the inbound message being replied to. */
  replyToAltId?: string;
  /** GHL userId who sent it, when known (passed through to HTTP receivers). */
  userId?: string;
  /** For a contact linked by the chat API (src/capabilities/chat): the external system's own ids (HTTP contract v2). */
  chat?: OutboundChatRef;
}

/** The chat product's ids of the conversation a GHL reply belongs to (HTTP channel contract v2, `chat`). */
export interface OutboundChatRef {
  /** The external conversation (thread) id the reply goes to: the thread replied to, else the latest active one. */
  conversationId: string;
  /** The external client id (vCX `clientId`) of the contact. */
  clientId: string;
  /** The GHL conversation id. */
  ghlConversationId?: string;
  /**
   * Only for a reply the GHL user sent on another GHL channel (the app-level OutboundMessage event, forwarded when
   * CHAT_FORWARD_OTHER_CHANNELS is on, or Live Chat): GHL's channel name (`SMS`, `Email`, `Live Chat`, `WhatsApp` …).
   * Absent for replies through the bridge's own conversation provider.
   */
  ghlChannel?: string;
}

export type SendResult =
  /** The channel confirmed delivery synchronously → GHL `delivered`. */
  | { outcome: 'delivered'; channelMessageId?: string }
  /** Accepted, delivery unconfirmed → GHL `pending`; a receipt (push) or `pollStatus()` settles it later. */
  | { outcome: 'accepted'; channelMessageId?: string }
  /** Permanent failure → GHL `failed` + error. Do not retry. */
  | { outcome: 'failed'; error: ChannelError };

/** An inbound (customer → business) message as received from the channel, before contact/conversation resolution. */
export interface InboundMessage {
  /** The channel's id for this message; the caller dedupes on (channel kind, location, channelMessageId). */
  channelMessageId: string;
  /** Sender as received. Cast normalises it to E.164; the HTTP adapter passes it through (phone, email or chat id). */
  from: string;
  to?: string;
  text?: string;
  subject?: string;
  html?: string;
  attachments: string[];
  /** GHL Add Inbound `type` to use. */
  channel: 'SMS' | 'Email' | 'Custom';
  /** ISO-8601 timestamp from the channel, if it sent one. */
  receivedAt?: string;
  /** Opaque thread reference from the channel (e.g. a chat session id); GHL `altId` candidate. */
  conversationRef?: string;
  /** GHL contactId, when the external system already knows it (skips contact lookup). */
  contactId?: string;
}

/** A delivery status for a previously sent message. At least one of the ids is set. */
export interface DeliveryReceipt {
  channelMessageId?: string;
  ghlMessageId?: string;
  status: 'delivered' | 'failed' | 'read' | 'pending';
  error?: ChannelError;
}

export interface InboundRequest {
  /** Node-style headers (lower-case names, as Fastify/`http` give them). */
  headers: Record<string, string | string[] | undefined>;
  /** Exact request bytes (signatures are computed over them). */
  rawBody: Buffer;
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };
export type ValidateResult = { ok: true } | { ok: false; error: ChannelError };

export interface ParsedInbound {
  messages: InboundMessage[];
  receipts: DeliveryReceipt[];
}

export interface ChannelAdapter {
  /** `http` | `cast` | `loopback`. */
  readonly kind: string;
  /** Relay one outbound message. See the caller contract at the top of this file. */
  send(msg: OutboundMessage, signal?: AbortSignal): Promise<SendResult>;
  /** Authenticate an inbound HTTP request (signature / shared key). Never throws. */
  verifyInbound(req: InboundRequest): VerifyResult;
  /** Parse a verified inbound request. Throws `ChannelInputError` (→ HTTP 400) with a precise message on bad input. */
  parseInbound(req: InboundRequest): ParsedInbound;
  /**
   * For channels without push receipts (Cast): current status of a sent message.
   * `null` = the channel does not know the id (stop polling). Throws `ChannelRetryableError` on transient errors,
   * `ChannelConfigError` when credentials are rejected.
   */
  pollStatus?(channelMessageId: string, signal?: AbortSignal): Promise<DeliveryReceipt | null>;
  /** Channel rules (length, recipient format, attachments) checked without any I/O. */
  validateOutbound?(msg: OutboundMessage): ValidateResult;
}

/** Transient failure: nothing (or nothing confirmed) was sent; retry later with the same messageId. */
export class ChannelRetryableError extends Error {
  override readonly name = 'ChannelRetryableError';
  /** Channel-requested delay (Retry-After), in ms. Absent → use the caller's own backoff. */
  readonly retryAfterMs: number | undefined;
  /** Short machine-readable reason, e.g. `http_503`, `rate_limited`, `timeout`, `network`, `aborted`. */
  readonly reason: string;
  constructor(reason: string, message: string, opts: { retryAfterMs?: number | undefined; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.reason = reason;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** Inbound request that cannot be parsed. The message is safe to return to the sender in a 400 body. */
export class ChannelInputError extends Error {
  override readonly name = 'ChannelInputError';
}

/** Invalid channel configuration, or credentials rejected by the channel (operator action needed). */
export class ChannelConfigError extends Error {
  override readonly name = 'ChannelConfigError';
}
