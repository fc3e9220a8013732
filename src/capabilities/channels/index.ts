import { channelConfigSchema, type ChannelConfig, type ChannelConfigInput } from './config.js';
import { createCastChannel } from './cast.js';
import { createHttpChannel } from './http.js';
import { createLoopbackChannel, type LoopbackInbox, type LoopbackInboundHandler } from './loopback.js';
import type { BucketRegistry } from './throttle.js';
import { ChannelConfigError, type ChannelAdapter } from './types.js';
import { describeZodError } from './inbound-util.js';
import type { ChannelLogger } from './util.js';

export * from './types.js';
export * from './config.js';
export { normalizeE164, castToE164, castToLocal, PhoneFormatError, type PhoneResult } from './phone.js';
export { countSmsSegments, type SmsSegments } from './sms.js';
export {
  loopbackInbox,
  LoopbackInbox,
  type LoopbackRecord,
  type LoopbackInboundContext,
  type LoopbackInboundHandler,
} from './loopback.js';
export {
  HTTP_OUTBOUND_EVENT_TYPE,
  httpInboundBodySchema,
  type HttpOutboundPayload,
  type HttpInboundBody,
} from './http.js';
export type { ChannelLogger } from './util.js';

export interface ChannelDeps {
  /** pino logger (or compatible). Secrets are never passed to it. */
  logger?: ChannelLogger;
  /** Loopback only: where auto-replies go (the orchestrator posts them to GHL as inbound messages). */
  onLoopbackInbound?: LoopbackInboundHandler;
  /** Loopback only: inbox to deliver into (default: the process-wide `loopbackInbox`). */
  loopbackInbox?: LoopbackInbox;
  /** Cast only: throttle registry (default: process-wide, one bucket per Cast account). */
  throttles?: BucketRegistry;
}

/**
 * Build the adapter for one location's channel config. Accepts raw (e.g. decrypted-from-DB) input and validates it;
 * throws `ChannelConfigError` listing the bad fields (never their values).
 */
export function createChannel(config: ChannelConfig | ChannelConfigInput, deps: ChannelDeps = {}): ChannelAdapter {
  const parsed = channelConfigSchema.safeParse(config);
  if (!parsed.success) throw new ChannelConfigError(`invalid channel config: ${describeZodError(parsed.error)}`);
  const cfg = parsed.data;
  switch (cfg.kind) {
    case 'http':
      return createHttpChannel(cfg, { logger: deps.logger });
    case 'cast':
      return createCastChannel(cfg, { logger: deps.logger, throttles: deps.throttles });
    case 'loopback':
      return createLoopbackChannel(cfg, {
        logger: deps.logger,
        inbox: deps.loopbackInbox,
        onLoopbackInbound: deps.onLoopbackInbound,
      });
  }
}
