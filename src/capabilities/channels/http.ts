import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import type { HttpChannelConfig } from './config.js';
import { parseJsonBody, parseWith } from './inbound-util.js';
import {
  ChannelRetryableError,
  type ChannelAdapter,
  type ChannelError,
  type DeliveryReceipt,
  type InboundMessage,
  type InboundRequest,
  type OutboundChatRef,
  type OutboundMessage,
  type ParsedInbound,
  type SendResult,
  type ValidateResult,
  type VerifyResult,
} from './types.js';
import {
  clip,
  header,
  isRecord,
  networkError,
  parseRetryAfter,
  readText,
  silentLogger,
  tryJson,
  withDeadline,
  type ChannelLogger,
} from './util.js';

/** Generic signed-HTTP channel. Wire contract: HTTP_CONTRACT.md (keep the two in sync). */

export const HTTP_OUTBOUND_EVENT_TYPE = 'message.outbound';

/** Body POSTed to the receiver. */
export interface HttpOutboundPayload {
  type: typeof HTTP_OUTBOUND_EVENT_TYPE;
  messageId: string;
  locationId: string;
  contactId: string;
  channel: 'SMS' | 'Email';
  phone?: string;
  message?: string;
  subject?: string;
  html?: string;
  emailTo?: string[];
  emailFrom?: string;
  attachments: string[];
  replyToAltId?: string;
  userId?: string;
  /** Contract v2: present (with `chat`) only for contacts linked by the chat API. */
  contractVersion?: 2;
  chat?: OutboundChatRef;
}

const errorSchema = z.object({
  code: z.string().min(1).max(100),
  type: z.enum(['validation', 'account', 'provider']).default('provider'),
  message: z.string().min(1).max(1000),
});

const messageEventSchema = z
  .object({
    type: z.literal('message'),
    id: z.string().min(1).max(256),
    from: z.string().min(1).max(320),
    to: z.string().min(1).max(320).optional(),
    text: z.string().max(100_000).optional(),
    subject: z.string().max(1000).optional(),
    html: z.string().max(1_000_000).optional(),
    attachments: z
      .array(z.url({ protocol: /^https?$/ }))
      .max(20)
      .default([]),
    channel: z.enum(['SMS', 'Email', 'Custom']).optional(),
    timestamp: z.iso.datetime({ offset: true }).optional(),
    conversationRef: z.string().min(1).max(256).optional(),
    contactId: z.string().min(1).max(100).optional(),
  })
  .refine((e) => Boolean(e.text) || Boolean(e.html) || e.attachments.length > 0, {
    message: 'a message needs text, html or attachments',
  });

const receiptEventSchema = z
  .object({
    type: z.literal('receipt'),
    messageId: z.string().min(1).max(256).optional(),
    channelMessageId: z.string().min(1).max(256).optional(),
    status: z.enum(['delivered', 'failed', 'read', 'pending']),
    error: errorSchema.optional(),
  })
  .refine((e) => e.messageId !== undefined || e.channelMessageId !== undefined, {
    message: 'a receipt needs messageId (GHL id) or channelMessageId',
  });

const eventSchema = z.discriminatedUnion('type', [messageEventSchema, receiptEventSchema]);
const batchSchema = z.object({ events: z.array(eventSchema).min(1).max(100) });
/** Inbound body: one event, or `{ events: [...] }`. */
export const httpInboundBodySchema = z.union([batchSchema, eventSchema]);
export type HttpInboundBody = z.input<typeof httpInboundBodySchema>;

export interface HttpChannelDeps {
  logger?: ChannelLogger;
}

export function createHttpChannel(cfg: HttpChannelConfig, deps: HttpChannelDeps = {}): ChannelAdapter {
  const log = deps.logger ?? silentLogger;
  const signer = new Webhook(cfg.signingSecret);
  const verifier = cfg.inboundSecret ? new Webhook(cfg.inboundSecret) : undefined;
  const target = new URL(cfg.url);
  const where = `${target.origin}${target.pathname}`; // never log query strings: they may carry tokens

  function validateOutbound(msg: OutboundMessage): ValidateResult {
    const hasContent = Boolean(msg.message) || Boolean(msg.html) || msg.attachments.length > 0;
    if (!hasContent) {
      return {
        ok: false,
        error: { code: 'EMPTY_MESSAGE', type: 'validation', message: 'message has no text, html or attachments' },
      };
    }
    return { ok: true };
  }

  async function send(msg: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
    const v = validateOutbound(msg);
    if (!v.ok) return { outcome: 'failed', error: v.error };

    const payload: HttpOutboundPayload = {
      type: HTTP_OUTBOUND_EVENT_TYPE,
      messageId: msg.messageId,
      locationId: msg.locationId,
      contactId: msg.contactId,
      channel: msg.channel,
      phone: msg.phone,
      message: msg.message,
      subject: msg.subject,
      html: msg.html,
      emailTo: msg.emailTo,
      emailFrom: msg.emailFrom,
      attachments: msg.attachments,
      replyToAltId: msg.replyToAltId,
      userId: msg.userId,
      ...(msg.chat ? { contractVersion: 2, chat: msg.chat } : {}),
    };
    const body = JSON.stringify(payload);
    const now = new Date();
    // webhook-id = GHL messageId on every attempt, so the receiver can dedupe retries (Standard Webhooks semantics).
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'ghl-bridge',
      'webhook-id': msg.messageId,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': signer.sign(msg.messageId, now, body),
    };

    let res: Response;
    let text: string;
    const what = `POST ${where}`;
    try {
      [res, text] = await withDeadline(cfg.timeoutMs, signal, async (sig) => {
        const r = await fetch(cfg.url, { method: 'POST', headers, body, redirect: 'manual', signal: sig });
        return [r, await readText(r)] as const;
      });
    } catch (err) {
      throw networkError(err, what, signal);
    }

    const status = res.status;
    if (status >= 200 && status < 300) {
      const answer = tryJson(text);
      const declared = isRecord(answer) ? answer.status : undefined;
      const id = isRecord(answer) && typeof answer.id === 'string' && answer.id !== '' ? answer.id : undefined;
      if (declared !== undefined && declared !== 'delivered' && declared !== 'accepted') {
        log.warn(
          { messageId: msg.messageId, status: declared },
          'http channel: unknown status in receiver answer; treating as accepted',
        );
      }
      return { outcome: declared === 'delivered' ? 'delivered' : 'accepted', ...(id ? { channelMessageId: id } : {}) };
    }
    if (status === 408 || status === 429 || status >= 500) {
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      log.warn({ messageId: msg.messageId, status, retryAfterMs }, 'http channel: transient receiver error');
      throw new ChannelRetryableError(status === 429 ? 'rate_limited' : `http_${status}`, `${what}: HTTP ${status}`, {
        retryAfterMs,
      });
    }
    if (status >= 300 && status < 400) {
      return {
        outcome: 'failed',
        error: {
          code: `HTTP_${status}`,
          type: 'account',
          message: `receiver answered with a redirect (HTTP ${status}); configure its final URL`,
        },
      };
    }
    const error = receiverError(status, text);
    log.warn({ messageId: msg.messageId, status, code: error.code }, 'http channel: receiver rejected message');
    return { outcome: 'failed', error };
  }

  function verifyInbound(req: InboundRequest): VerifyResult {
    if (!verifier) return { ok: false, reason: 'inbound is not configured for this channel (no inboundSecret)' };
    const id = header(req.headers, 'webhook-id');
    const ts = header(req.headers, 'webhook-timestamp');
    const sig = header(req.headers, 'webhook-signature');
    if (!id || !ts || !sig)
      return { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature header' };
    try {
      verifier.verify(
        req.rawBody,
        { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': sig },
        { jsonParse: false },
      );
      return { ok: true };
    } catch (err) {
      // The library's messages are fixed strings ("No matching signature found", "Message timestamp too old", …).
      return { ok: false, reason: err instanceof Error ? err.message : 'signature verification failed' };
    }
  }

  function parseInbound(req: InboundRequest): ParsedInbound {
    const what = 'inbound event';
    const raw = parseJsonBody(req.rawBody, what);
    // Dispatch by shape ourselves: a zod union would report only "invalid input" for either branch.
    const events =
      isRecord(raw) && 'events' in raw ? parseWith(batchSchema, raw, what).events : [parseWith(eventSchema, raw, what)];
    const messages: InboundMessage[] = [];
    const receipts: DeliveryReceipt[] = [];
    for (const e of events) {
      if (e.type === 'message') {
        messages.push({
          channelMessageId: e.id,
          from: e.from,
          to: e.to,
          text: e.text,
          subject: e.subject,
          html: e.html,
          attachments: e.attachments,
          channel: e.channel ?? cfg.defaultInboundChannel,
          receivedAt: e.timestamp,
          conversationRef: e.conversationRef,
          contactId: e.contactId,
        });
      } else {
        receipts.push({
          ghlMessageId: e.messageId,
          channelMessageId: e.channelMessageId,
          status: e.status,
          error: e.error,
        });
      }
    }
    return { messages, receipts };
  }

  return { kind: 'http', send, verifyInbound, parseInbound, validateOutbound };
}

/** Map a 4xx answer to a GHL error, preferring the receiver's own code/message. */
function receiverError(status: number, text: string): ChannelError {
  const body = tryJson(text);
  let code = `HTTP_${status}`;
  let message = '';
  let type: ChannelError['type'] = status === 401 || status === 403 ? 'account' : 'provider';
  if (isRecord(body)) {
    const e = body.error;
    if (isRecord(e)) {
      if (typeof e.code === 'string' && e.code) code = e.code;
      if (typeof e.message === 'string') message = e.message;
      if (e.type === 'validation' || e.type === 'account' || e.type === 'provider') type = e.type;
    } else if (typeof e === 'string') {
      message = e;
    }
    if (!message && typeof body.message === 'string') message = body.message;
    if (code === `HTTP_${status}` && typeof body.code === 'string' && body.code) code = body.code;
  } else if (text.trim()) {
    message = text;
  }
  return { code: clip(code, 100), type, message: clip(message || `receiver rejected the message (HTTP ${status})`) };
}
