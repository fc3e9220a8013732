/** Emulator options. Defaults follow docs/ghl-behaviour.md (#emulator-defaults where no source documents the behaviour). */
export interface EmulatorOptions {
  /** Deterministic ids (and retry jitter) when set. */
  seed?: number;
  /** Access-token lifetime, default 86399 s (docs/ghl-behaviour.md#token-lifetimes). */
  accessTokenTtlSec?: number;
  /** Refresh-token lifetime, default 365 days. */
  refreshTokenTtlSec?: number;
  /** Authorization-code lifetime, default 600 s (UNCONFIRMED, §14). */
  authCodeTtlSec?: number;
  /** Per app per location/company: burst window and daily cap (docs/ghl-behaviour.md#rate-limits). */
  rateLimit?: { burst: number; intervalMs: number; daily: number };
  /** Interval between 429-retries of a webhook, default 600000 (10 min). */
  webhookRetryIntervalMs?: number;
  /** Max random jitter added to each retry interval; default 10% of the interval. */
  webhookRetryJitterMs?: number;
  /** Max retries after the first attempt (GHL: 6). */
  webhookMaxRetries?: number;
  /** Delivery timeout, default 10000 ms (UNCONFIRMED; no retry on timeout). */
  webhookTimeoutMs?: number;
  /** Also sign with RSA-SHA256 in X-WH-Signature (legacy header), default true. */
  signWithRsa?: boolean;
  /** Sign with Ed25519 in X-GHL-Signature, default true. */
  signWithEd25519?: boolean;
  /**
   * Sign ProviderOutboundMessage calls to the Delivery URL, default false: real GHL sends them unsigned (docs/ghl-behaviour.md#unsigned-provider-deliveries,
   * observed #224). App webhooks (incl. OutboundMessage) are always signed.
   */
  signProviderDeliveries?: boolean;
  /** Include webhookId/timestamp in ProviderOutboundMessage bodies (UNCONFIRMED), default true. */
  providerWebhookEnvelope?: boolean;
  /** Include webhookId/timestamp in app webhooks, default true. */
  appWebhookEnvelope?: boolean;
  /** Message status transitions: 'forward-only' (default) or 'any'. */
  statusTransitions?: 'forward-only' | 'any';
  /** Refuse status updates for this many ms after message creation (400), default 0. */
  statusRefusalWindowMs?: number;
  /** Wrap GET /conversations/{id}/messages as {messages:{…}} (observed wire, default true) or spec-flat. */
  wrapMessagesResponse?: boolean;
  /** Direction of POST /conversations/messages/inbound when the body omits it; the spec default is 'outbound'. */
  inboundDefaultDirection?: 'inbound' | 'outbound';
  /** 'lenient' (default): accept any known Version; 'strict': only the per-endpoint value of the spec. */
  versionCheck?: 'lenient' | 'strict';
  /** Accept JSON bodies on POST /oauth/token (UNCONFIRMED), default false = form only, like the spec. */
  acceptJsonTokenRequests?: boolean;
  /**
   * Select a default (non-custom) provider app as the location's SMS/Email provider when it is installed,
   * default true. Real GHL needs a user to pick it in Settings; turn off and call control.setProvider() to model that.
   */
  autoSelectDefaultProvider?: boolean;
  /** How long an injected 'timeout' fault holds the request before dropping the socket, default 120000 ms. */
  faultTimeoutMs?: number;
  /**
   * POST /contacts/upsert when the email matches one contact and the phone another: 'ignore' (default) updates the
   * contact matching the first field of the location's sequence and silently drops the other field, as the spec's
   * operation description says and users observe (highlevel-api-docs #37: the phone is lost, no error); 'reject'
   * answers 400 naming the duplicate instead (what #37 asks for), for testing a client's handling of both.
   */
  upsertClash?: 'ignore' | 'reject';
  /** Fastify logger option, default false. */
  logger?: boolean | object;
}

export type ResolvedOptions = Required<Omit<EmulatorOptions, 'seed' | 'webhookRetryJitterMs'>> & {
  seed: number | undefined;
  webhookRetryJitterMs: number;
};

export function resolveOptions(o: EmulatorOptions = {}): ResolvedOptions {
  const retry = o.webhookRetryIntervalMs ?? 600_000;
  return {
    seed: o.seed,
    accessTokenTtlSec: o.accessTokenTtlSec ?? 86_399,
    refreshTokenTtlSec: o.refreshTokenTtlSec ?? 365 * 24 * 3600,
    authCodeTtlSec: o.authCodeTtlSec ?? 600,
    rateLimit: o.rateLimit ?? { burst: 100, intervalMs: 10_000, daily: 200_000 },
    webhookRetryIntervalMs: retry,
    webhookRetryJitterMs: o.webhookRetryJitterMs ?? Math.floor(retry / 10),
    webhookMaxRetries: o.webhookMaxRetries ?? 6,
    webhookTimeoutMs: o.webhookTimeoutMs ?? 10_000,
    signWithRsa: o.signWithRsa ?? true,
    signWithEd25519: o.signWithEd25519 ?? true,
    signProviderDeliveries: o.signProviderDeliveries ?? false,
    providerWebhookEnvelope: o.providerWebhookEnvelope ?? true,
    appWebhookEnvelope: o.appWebhookEnvelope ?? true,
    statusTransitions: o.statusTransitions ?? 'forward-only',
    statusRefusalWindowMs: o.statusRefusalWindowMs ?? 0,
    wrapMessagesResponse: o.wrapMessagesResponse ?? true,
    inboundDefaultDirection: o.inboundDefaultDirection ?? 'outbound',
    versionCheck: o.versionCheck ?? 'lenient',
    acceptJsonTokenRequests: o.acceptJsonTokenRequests ?? false,
    autoSelectDefaultProvider: o.autoSelectDefaultProvider ?? true,
    faultTimeoutMs: o.faultTimeoutMs ?? 120_000,
    upsertClash: o.upsertClash ?? 'ignore',
    logger: o.logger ?? false,
  };
}
