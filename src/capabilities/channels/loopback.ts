import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { LoopbackChannelConfig } from './config.js';
import {
  ChannelInputError,
  type ChannelAdapter,
  type DeliveryReceipt,
  type InboundMessage,
  type OutboundMessage,
  type SendResult,
} from './types.js';
import { silentLogger, type ChannelLogger } from './util.js';

/**
 * Loopback channel for the sandbox demo: "delivers" into an in-process inbox and can answer with an auto-reply.
 * Nothing leaves the process.
 */

export interface LoopbackRecord {
  channelMessageId: string;
  message: OutboundMessage;
  status: 'delivered' | 'pending' | 'failed';
  at: string;
}

/** Where the orchestrator must post the auto-reply (it resolves contact/conversation and calls GHL Add Inbound). */
export interface LoopbackInboundContext {
  locationId: string;
  contactId: string;
  /** GHL messageId the reply answers. */
  inReplyTo: string;
}

export type LoopbackInboundHandler = (msg: InboundMessage, ctx: LoopbackInboundContext) => void | Promise<void>;

export interface LoopbackInboxEvents {
  message: [LoopbackRecord];
  status: [LoopbackRecord];
}

/** In-memory store of everything the loopback channel "delivered". Emits `message` and `status`. Bounded FIFO. */
export class LoopbackInbox extends EventEmitter<LoopbackInboxEvents> {
  private readonly records = new Map<string, LoopbackRecord>();
  constructor(private readonly capacity = 1000) {
    super();
  }
  add(rec: LoopbackRecord): void {
    this.records.set(rec.channelMessageId, rec);
    if (this.records.size > this.capacity) {
      const oldest = this.records.keys().next();
      if (!oldest.done) this.records.delete(oldest.value);
    }
    this.emit('message', rec);
  }
  get(channelMessageId: string): LoopbackRecord | undefined {
    return this.records.get(channelMessageId);
  }
  setStatus(channelMessageId: string, status: LoopbackRecord['status']): LoopbackRecord | undefined {
    const rec = this.records.get(channelMessageId);
    if (!rec) return undefined;
    rec.status = status;
    this.emit('status', rec);
    return rec;
  }
  /** Newest last; optionally only one location's messages. */
  list(locationId?: string): LoopbackRecord[] {
    const all = [...this.records.values()];
    return locationId ? all.filter((r) => r.message.locationId === locationId) : all;
  }
  clear(): void {
    this.records.clear();
  }
}

/** Process-wide inbox the sandbox UI/CLI reads. */
export const loopbackInbox = new LoopbackInbox();

export interface LoopbackChannelDeps {
  logger?: ChannelLogger;
  inbox?: LoopbackInbox;
  /** Receives auto-replies. Called asynchronously after `send()` resolves, so the caller records the send first. */
  onLoopbackInbound?: LoopbackInboundHandler;
}

export function createLoopbackChannel(cfg: LoopbackChannelConfig, deps: LoopbackChannelDeps = {}): ChannelAdapter {
  const log = deps.logger ?? silentLogger;
  const inbox = deps.inbox ?? loopbackInbox;
  if (cfg.autoReply !== false && !deps.onLoopbackInbound) {
    log.warn({}, 'loopback: autoReply is configured but no onLoopbackInbound handler was given; replies are dropped');
  }

  async function send(msg: OutboundMessage): Promise<SendResult> {
    // Stable id per GHL message: a retried send overwrites the same inbox entry instead of duplicating it.
    const channelMessageId = `loopback-${msg.messageId}`;
    const replay = inbox.get(channelMessageId) !== undefined;
    inbox.add({ channelMessageId, message: msg, status: cfg.receipt, at: new Date().toISOString() });

    if (cfg.autoReply !== false && !replay && deps.onLoopbackInbound) {
      const handler = deps.onLoopbackInbound;
      const original = msg.message ?? msg.subject ?? '';
      const text = typeof cfg.autoReply === 'string' ? cfg.autoReply : `Auto-reply: got "${original}"`;
      const reply: InboundMessage = {
        channelMessageId: `loopback-reply-${randomUUID()}`,
        from: msg.channel === 'SMS' ? (msg.phone ?? msg.contactId) : (msg.emailTo?.[0] ?? msg.contactId),
        text,
        ...(msg.channel === 'Email' ? { subject: msg.subject ? `Re: ${msg.subject}` : undefined } : {}),
        attachments: [],
        channel: msg.channel,
        receivedAt: new Date().toISOString(),
        contactId: msg.contactId,
      };
      const ctx: LoopbackInboundContext = {
        locationId: msg.locationId,
        contactId: msg.contactId,
        inReplyTo: msg.messageId,
      };
      setImmediate(() => {
        Promise.resolve()
          .then(() => handler(reply, ctx))
          .catch((err: unknown) => log.error({ err, messageId: msg.messageId }, 'loopback: onLoopbackInbound failed'));
      });
    }

    if (cfg.receipt === 'failed') {
      return {
        outcome: 'failed',
        error: {
          code: 'LOOPBACK_FAILED',
          type: 'provider',
          message: 'loopback channel is configured to fail every message',
        },
      };
    }
    if (cfg.receipt === 'pending') return { outcome: 'accepted', channelMessageId };
    return { outcome: 'delivered', channelMessageId };
  }

  /** Simulated carrier: a `pending` message becomes `delivered` on its first poll. */
  async function pollStatus(channelMessageId: string): Promise<DeliveryReceipt | null> {
    const rec = inbox.get(channelMessageId);
    if (!rec) return null;
    if (rec.status === 'pending') inbox.setStatus(channelMessageId, 'delivered');
    if (rec.status === 'failed') {
      return {
        channelMessageId,
        status: 'failed',
        error: {
          code: 'LOOPBACK_FAILED',
          type: 'provider',
          message: 'loopback channel is configured to fail every message',
        },
      };
    }
    return { channelMessageId, status: rec.status };
  }

  return {
    kind: 'loopback',
    send,
    pollStatus,
    verifyInbound: () => ({ ok: false, reason: 'the loopback channel has no inbound endpoint' }),
    parseInbound: () => {
      throw new ChannelInputError('the loopback channel has no inbound endpoint');
    },
  };
}
