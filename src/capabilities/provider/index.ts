/**
 * Conversation-provider orchestration (issue 6): GHL ProviderOutboundMessage → the location's channel → GHL status,
 * and channel inbound → contact/conversation → GHL Add Inbound Message. See README.md next to this file.
 *
 * Public API
 * - `providerModule(opts?)` → BridgeModule (after webhooks and installations in src/modules.ts).
 *   Routes: POST /channels/:locationId/inbound; /admin/channels/* when ADMIN_API_KEY is set.
 * - service `provider: ProviderService` (`ctx.services.get('provider')`) — `configureChannel(locationId, config, opts)`, `getChannel`,
 *   `listChannels`, `deleteChannel`, `events` (relay timings), `inboundUrl(locationId)`.
 * - `configureChannel(db, ring, locationId, config, opts)` — the same without a running bridge (CLI, sandbox).
 */
import { EventEmitter } from 'node:events';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { AppContext, BridgeModule } from '../../app.js';
import {
  loopbackInbox as defaultInbox,
  type ChannelConfig,
  type ChannelConfigInput,
  type LoopbackInbox,
} from '../channels/index.js';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import { PermanentJobError } from '../../infra/queue/index.js';
import {
  PROVIDER_OUTBOUND,
  providerOutboundMessageSchema,
  URL_TOKEN_SIGNATURE,
  webhooksService,
} from '../../platform/webhooks/index.js';
import {
  acceptUnconfirmed,
  confirmJob,
  countAwaiting,
  listRejected,
  onOutboundMessageEvent,
  type ConfirmationSettings,
  type ConfirmRuntime,
} from './confirm.js';
import { deliveryUrl, DeliveryTokens, maskToken } from './delivery-tokens.js';
import { registerChannelAdminRoutes } from './admin.js';
import {
  ChannelCache,
  configureChannel,
  deleteChannel,
  getChannelView,
  listChannels,
  type ChannelOptions,
  type ChannelView,
} from './channels.js';
import { inboundJob, registerInboundRoutes, storeInbound, type InboundRuntime } from './inbound.js';
import { pruneMessages } from './retention.js';
import { applyReceipt, relayFound, type FoundMessage } from './found.js';
import type { OutboundMessage, SendResult } from '../channels/index.js';
import type { ChannelError } from '../channels/index.js';
import {
  pollJob,
  relayOutbound,
  sendJob,
  statusJob,
  type OutboundRuntime,
  type ProviderSettings,
  type RelayEvents,
} from './outbound.js';
import { orderingKeys } from '../../platform/keys.js';
import { providerConfirmationMigration, providerMigration, providerSendLogMigration } from './migration.js';
import {
  catchupOverview,
  providerCatchupMigration,
  registerCatchupAdminRoutes,
  runCatchup,
  type CatchupResult,
  type CatchupRuntime,
  type CatchupSettings,
} from './catchup.js';

export {
  configureChannel,
  deleteChannel,
  getChannel,
  getChannelView,
  listChannels,
  parseChannelConfig,
  ChannelValidationError,
  type ChannelOptions,
  type ChannelView,
  type StoredChannel,
} from './channels.js';
export { JOB_INBOUND, INBOUND_PATH, senderAddress, findOrCreateConversation } from './inbound.js';
export { JOB_POLL, JOB_SEND, JOB_STATUS, mergeStatus, type ProviderSettings, type RelayEvents } from './outbound.js';
export { providerConfirmationMigration, providerMigration } from './migration.js';
export { JOB_CONFIRM, compareWithGhl, type ConfirmationMode, type ConfirmationSettings } from './confirm.js';
export {
  DeliveryTokens,
  deliveryUrl,
  maskToken,
  newDeliveryToken,
  rotateDeliveryTokenKeys,
  PROVIDER_TOKEN_PATH,
} from './delivery-tokens.js';
export { pruneMessages } from './retention.js';
export type { FoundMessage } from './found.js';
export {
  EXPIRED_CODE,
  isOurPending,
  providerCatchupMigration,
  type CatchupResult,
  type CatchupSettings,
} from './catchup.js';
export type { GhlStatus, OutboundState } from './tables.js';

export interface ProviderModuleOptions {
  /** Overrides of the PROVIDER_* settings (tests, benchmark). */
  settings?: Partial<ProviderSettings>;
  /** Inbox the loopback channel delivers into (default: the process-wide one the sandbox shows). */
  loopbackInbox?: LoopbackInbox;
  /** Overrides GHL_CONVERSATION_PROVIDER_ID. */
  conversationProviderId?: string;
  /** Overrides of the PROVIDER_CONFIRMATION* settings (tests, benchmark). */
  confirmation?: Partial<ConfirmationSettings>;
  /** Overrides of the PROVIDER_CATCHUP_* settings (tests, benchmark). */
  catchup?: Partial<CatchupSettings>;
}

export interface ProviderService {
  configureChannel(
    locationId: string,
    config: ChannelConfigInput | ChannelConfig,
    opts?: ChannelOptions,
  ): Promise<ChannelView>;
  getChannel(locationId: string): Promise<ChannelView | undefined>;
  listChannels(): Promise<ChannelView[]>;
  deleteChannel(locationId: string): Promise<boolean>;
  /** Public URL the location's channel posts inbound messages and receipts to. */
  inboundUrl(locationId: string): string;
  events: EventEmitter<RelayEvents>;
  loopbackInbox: LoopbackInbox;
  /** The exact Delivery URL to paste into the Marketplace app (contains the secret token: never log it). */
  deliveryUrl(): Promise<string>;
  /** The same with the token masked (doctor, dashboard). */
  maskedDeliveryUrl(): Promise<string>;
  tokens: DeliveryTokens;
  /** Unsigned deliveries refused by confirmation (latest first) and how many wait. */
  confirmationOverview(): Promise<{
    mode: string;
    awaiting: number;
    rejected: Awaited<ReturnType<typeof listRejected>>;
  }>;
  /** Reads GHL's recent messages and relays this provider's outbound messages GHL never delivered (catchup.ts). */
  catchUp(o?: {
    locationId?: string | undefined;
    since?: Date | undefined;
    signal?: AbortSignal | undefined;
  }): Promise<CatchupResult[]>;
  /** Last catch-up per location and stream. */
  catchupOverview(locationId?: string): ReturnType<typeof catchupOverview>;
  /**
   * One decorator (the chat module's) called just before each channel send: adds ids to the message, or returns
   * null to not send it (an echo of a message the bridge created).
   */
  setOutboundDecorator(fn: (msg: OutboundMessage) => Promise<OutboundMessage | null>): void;
  /**
   * Calls the location's channel once with a message that is not a delivery of this provider (the chat module's
   * forwarding of GHL replies sent on other channels): no row, no GHL status report, no decorator — the caller keeps
   * its own record and retries. Resolves `failed` when no enabled channel is configured; throws
   * `ChannelRetryableError` for transient problems, like `ChannelAdapter.send`.
   */
  sendViaChannel(locationId: string, msg: OutboundMessage, signal?: AbortSignal): Promise<SendResult>;
  /** Relays an outbound message of this provider that a read found in GHL and GHL never delivered (found.ts). */
  relayFound(m: FoundMessage, confirmedBy: string): Promise<boolean>;
  /** A delivery receipt for a message relayed to the channel (forward-only); false when none matches. */
  applyReceipt(
    locationId: string,
    ghlMessageId: string,
    status: 'pending' | 'delivered' | 'read' | 'failed',
    error?: ChannelError,
  ): Promise<boolean>;
  /**
   * Whether a request carries a valid Standard Webhooks signature of the location's HTTP channel (its inboundSecret),
   * for APIs that accept the channel's signature instead of an API key (the chat API).
   */
  verifyChannelSignature(
    locationId: string,
    headers: Record<string, string | string[] | undefined>,
    rawBody: Buffer,
  ): Promise<boolean>;
  /** The conversation provider id used for a location (its channel's override, else GHL_CONVERSATION_PROVIDER_ID). */
  conversationProviderId(locationId: string): Promise<string | undefined>;
}

declare module '../../app.js' {
  interface Services {
    /** Provided here. Needs `ghl` (installations) for GHL calls, `knownLocations` for inbound, `webhooks`. */
    provider: ProviderService;
  }
}

export function providerModule(opts: ProviderModuleOptions = {}): BridgeModule {
  let outbound: OutboundRuntime | undefined;
  let inbound: InboundRuntime | undefined;
  let tokens: DeliveryTokens | undefined;
  let catchup: CatchupRuntime | undefined;

  return {
    name: 'provider',
    migrations: {
      '0004_provider': providerMigration,
      '0005_provider_confirmation': providerConfirmationMigration,
      '0006_provider_catchup': providerCatchupMigration,
      '0008_provider_send_log': providerSendLogMigration,
    },
    async init(ctx: AppContext) {
      const c = ctx.config;
      const log = ctx.log.child({ component: 'provider' });
      const keyRing = loadKeyRing(c, log);
      if (c.DATA_RETENTION_DAYS > 0)
        ctx.maintain('prune finished messages', 3600_000, (signal) =>
          pruneMessages(ctx.db, c.DATA_RETENTION_DAYS, 5000, signal),
        );
      const inbox = opts.loopbackInbox ?? defaultInbox;
      const ghl = () => {
        // Looked up when a job calls GHL: a bridge without the installations module still stores and relays locally.
        return ctx.services.get('ghl');
      };
      const notify = () => ctx.queue.notify();
      const channels = new ChannelCache(ctx.db, keyRing, (locationId) => ({
        logger: log.child({ channelLocation: locationId }),
        loopbackInbox: inbox,
        // A loopback auto-reply is an inbound message from the contact: store it and let provider.inbound add it to GHL.
        onLoopbackInbound: async (msg) => {
          await ctx.db
            .transaction()
            .execute((trx) => storeInbound(trx, locationId, [{ msg, address: `contact:${msg.contactId ?? ''}` }]));
          notify();
        },
      }));
      const settings: ProviderSettings = {
        sendMaxAttempts: c.PROVIDER_SEND_MAX_ATTEMPTS,
        retryBaseMs: c.PROVIDER_RETRY_BASE_MS,
        statusRefusalMaxMs: c.PROVIDER_STATUS_REFUSAL_MAX_MS,
        pollBaseMs: c.PROVIDER_POLL_BASE_MS,
        pollGiveUpMs: c.PROVIDER_POLL_GIVE_UP_MS,
        ...opts.settings,
      };
      const events = new EventEmitter<RelayEvents>();
      events.setMaxListeners(50);
      const relay = new Histogram({
        name: 'ghl_bridge_provider_relay_seconds',
        help: 'Relay overhead: webhook stored → channel send (leg=outbound); channel result/receipt → GHL status call (leg=status)',
        labelNames: ['leg'],
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
        registers: [ctx.metrics.registry],
      });
      events.on(
        'send',
        (e) => e.attempt === 1 && relay.observe({ leg: 'outbound' }, Math.max(0, e.at - e.receivedAt) / 1000),
      );
      events.on('status', (e) => relay.observe({ leg: 'status' }, Math.max(0, e.at - e.since) / 1000));

      // Bridge events (message.sent / failed / rejected) when the events module runs and a subscription exists.
      const bus = () => {
        const e = ctx.services.find('events');
        return e?.active() ? e : undefined;
      };
      outbound = { db: ctx.db, log, ghl, channels, settings, events, notify, bus };
      const confirm: ConfirmRuntime = {
        out: outbound,
        settings: {
          mode: c.PROVIDER_CONFIRMATION,
          waitMs: c.PROVIDER_CONFIRMATION_WAIT_MS,
          timeoutMs: c.PROVIDER_CONFIRMATION_TIMEOUT_MS,
          notFoundGraceMs: 30_000,
          ...opts.confirmation,
        },
        confirmed: new Counter({
          name: 'ghl_bridge_provider_confirmed_total',
          help: 'Unsigned deliveries confirmed, by how (event, lookup)',
          labelNames: ['by'],
          registers: [ctx.metrics.registry],
        }),
        rejected: new Counter({
          name: 'ghl_bridge_provider_rejected_total',
          help: 'Unsigned deliveries that failed confirmation and were not sent, by reason',
          labelNames: ['reason'],
          registers: [ctx.metrics.registry],
        }),
        lookups: new Counter({
          name: 'ghl_bridge_provider_confirm_lookups_total',
          help: 'GET /conversations/messages/{id} calls made to confirm deliveries, by outcome (answered, refused, transient)',
          labelNames: ['outcome'],
          registers: [ctx.metrics.registry],
        }),
      };
      tokens = new DeliveryTokens(ctx.db, keyRing, c.PROVIDER_DELIVERY_TOKENS);
      ctx.services.provide('providerDeliveryTokens', tokens);
      // Generation 1 of the Delivery-URL token at first start (idempotent; replicas starting together agree).
      await tokens.ensure();
      const isKnownLocation = async (locationId: string) => {
        const known = ctx.services.find('knownLocations');
        return known ? known.isKnownLocation(locationId, null) : false;
      };
      inbound = {
        db: ctx.db,
        log,
        ghl,
        channels,
        conversationProviderId: opts.conversationProviderId ?? c.GHL_CONVERSATION_PROVIDER_ID,
        isKnownLocation,
        notify,
      };

      const webhooks = webhooksService(ctx);
      webhooks.onParsed(
        PROVIDER_OUTBOUND,
        providerOutboundMessageSchema,
        async (evt, h) => {
          // Send records are pruned DATA_RETENTION_DAYS after their last change. An event older than that (a dead
          // event replayed late) may have been sent already with its record gone: never send it blindly.
          const days = c.DATA_RETENTION_DAYS;
          if (days > 0 && Date.now() - evt.receivedAt.getTime() > days * 86_400_000) {
            const known = await ctx.db
              .selectFrom('provider_outbound')
              .select('message_id')
              .where('message_id', '=', evt.payload.messageId)
              .executeTakeFirst();
            if (!known)
              throw new PermanentJobError(
                `not sent: the message is older than DATA_RETENTION_DAYS (${days}) and its send record may have been pruned, so sending could repeat it`,
              );
          }
          if (evt.signature === URL_TOKEN_SIGNATURE && confirm.settings.mode !== 'none')
            return acceptUnconfirmed(confirm, evt.payload, h);
          await relayOutbound(
            outbound!,
            evt.payload,
            h,
            evt.signature === URL_TOKEN_SIGNATURE ? 'unconfirmed' : 'signature',
          );
        },
        {
          name: 'provider.outbound',
          orderingKey: (e) =>
            e.locationId && typeof e.payload.contactId === 'string'
              ? orderingKeys.contact(e.locationId, e.payload.contactId)
              : null,
        },
      );
      // The signed app event that confirms unsigned deliveries (it may come before or after the delivery).
      webhooks.on('OutboundMessage', (evt, h) => onOutboundMessageEvent(confirm, evt, h), {
        name: 'provider.confirm-event',
      });
      ctx.queue.register(sendJob, { deps: outbound });
      // Status and poll jobs mostly wait inside the handler for a GHL rate-limit slot: they run in
      // slots of their own, so waiting never delays outbound sends or inbound messages; and at most
      // WORKER_LOCATION_CONCURRENCY of one location at once, claimed round-robin across locations, so a
      // location waiting for its own rate limit never holds every slot.
      const waiting = {
        maxConcurrent: Math.max(1, ctx.config.WORKER_CONCURRENCY),
        ownSlots: true,
        maxPerScope: ctx.config.WORKER_LOCATION_CONCURRENCY,
      };
      ctx.queue.register(statusJob, { ...waiting, deps: outbound });
      ctx.queue.register(pollJob, { ...waiting, deps: outbound });
      ctx.queue.register(confirmJob, { ...waiting, deps: confirm });
      ctx.queue.register(inboundJob, { deps: inbound });

      catchup = {
        out: outbound,
        settings: {
          maxAgeMs: c.PROVIDER_CATCHUP_MAX_AGE_MS,
          settleMs: c.PROVIDER_CATCHUP_SETTLE_MS,
          pageLimit: 500,
          maxPages: 100,
          ...opts.catchup,
        },
        conversationProviderId: opts.conversationProviderId ?? c.GHL_CONVERSATION_PROVIDER_ID,
        // Locations with an active installation or an enabled channel.
        locations: async () => {
          const svc = ctx.services.find('installations');
          const installed = svc ? (await svc.list({ status: 'active' })).map((i) => i.locationId) : [];
          const channels = await ctx.db
            .selectFrom('provider_channels')
            .select('location_id')
            .where('enabled', '=', true)
            .execute();
          return [
            ...new Set([...installed, ...channels.map((r) => r.location_id)].filter((x): x is string => !!x)),
          ].sort();
        },
        metrics: {
          messages: new Counter({
            name: 'ghl_bridge_provider_catchup_messages_total',
            help: 'Provider messages found by catch-up that GHL never delivered, by location and outcome (caught_up = relayed, expired = reported failed as too old, confirmed = an unsigned delivery confirmed by the read)',
            labelNames: ['location', 'outcome'],
            registers: [ctx.metrics.registry],
          }),
          lag: new Gauge({
            name: 'ghl_bridge_provider_catchup_lag_seconds',
            help: 'How far behind now the catch-up checkpoint of a location is after its last run (includes PROVIDER_CATCHUP_SETTLE_MS)',
            labelNames: ['location'],
            registers: [ctx.metrics.registry],
          }),
          calls: new Counter({
            name: 'ghl_bridge_provider_catchup_api_calls_total',
            help: 'GHL API calls made by catch-up (export pages, contact reads), by location',
            labelNames: ['location'],
            registers: [ctx.metrics.registry],
          }),
        },
      };
      const cu: CatchupRuntime = catchup;
      const runAndLog = async (signal: AbortSignal, upTo?: Date) => {
        const results = await runCatchup(cu, { signal, upTo });
        for (const r of results) {
          if (r.error)
            log.warn(
              { locationId: r.locationId, err: r.error },
              'catch-up incomplete; the next run continues from the checkpoint',
            );
          if (r.caughtUp || r.expired || r.confirmed)
            log.info(
              { locationId: r.locationId, caughtUp: r.caughtUp, expired: r.expired, confirmed: r.confirmed },
              'caught up on provider messages GHL never delivered',
            );
        }
      };
      // At start-up (the window since the last checkpoint: downtime), then every PROVIDER_CATCHUP_INTERVAL_MS. The
      // start-up run reads up to the bridge's start, not PROVIDER_CATCHUP_SETTLE_MS before it: GHL's deliveries of the
      // messages created in the last part of the downtime have already failed, and would otherwise wait for the
      // next periodic run (minutes later, or never with an interval of 0).
      // Taken before the bridge listens: a start-up run that begins late (a loaded machine) still stops here.
      const bootAt = new Date();
      let startup = true;
      ctx.maintain(
        'provider catch-up',
        c.PROVIDER_CATCHUP_INTERVAL_MS > 0 ? c.PROVIDER_CATCHUP_INTERVAL_MS : 2_147_000_000,
        async (signal) => {
          const upTo = startup ? bootAt : undefined;
          startup = false;
          await runAndLog(signal, upTo);
        },
      );

      const inboundUrl = (locationId: string) => `${c.publicUrl}/channels/${encodeURIComponent(locationId)}/inbound`;
      const service: ProviderService = {
        configureChannel: async (locationId, config, o) => {
          const v = await configureChannel(ctx.db, keyRing, locationId, config, o);
          channels.invalidate(locationId);
          return v;
        },
        getChannel: (locationId) => getChannelView(ctx.db, keyRing, locationId),
        listChannels: () => listChannels(ctx.db, keyRing),
        deleteChannel: async (locationId) => {
          const ok = await deleteChannel(ctx.db, locationId);
          channels.invalidate(locationId);
          return ok;
        },
        inboundUrl,
        events,
        loopbackInbox: inbox,
        tokens,
        deliveryUrl: async () => deliveryUrl(c.publicUrl, await tokens!.current()),
        maskedDeliveryUrl: async () => deliveryUrl(c.publicUrl, maskToken(await tokens!.current())),
        catchUp: (o = {}) => runCatchup(cu, o),
        catchupOverview: (locationId) => catchupOverview(ctx.db, locationId),
        setOutboundDecorator: (fn) => {
          if (outbound!.decorate) throw new Error('provider: an outbound decorator is already set');
          outbound!.decorate = fn;
        },
        relayFound: (m, by) => relayFound(outbound!, m, by),
        sendViaChannel: async (locationId, msg, signal) => {
          let ch: Awaited<ReturnType<ChannelCache['get']>>;
          try {
            ch = await channels.get(locationId);
          } catch (e) {
            const why = e instanceof Error ? e.message : String(e);
            return {
              outcome: 'failed',
              error: { code: 'CHANNEL_CONFIG_INVALID', type: 'account', message: `the channel cannot be used: ${why}` },
            };
          }
          if (!ch?.channel.enabled)
            return {
              outcome: 'failed',
              error: {
                code: 'CHANNEL_NOT_CONFIGURED',
                type: 'account',
                message: 'no enabled channel is configured for this location in ghl-bridge',
              },
            };
          return ch.adapter.send(msg, signal);
        },
        verifyChannelSignature: async (locationId, headers, rawBody) => {
          const ch = await channels.get(locationId).catch(() => undefined);
          if (!ch?.channel.enabled || ch.adapter.kind !== 'http') return false;
          return ch.adapter.verifyInbound({ headers, rawBody }).ok;
        },
        applyReceipt: (locationId, id, status, error) => applyReceipt(outbound!, locationId, id, status, error),
        conversationProviderId: async (locationId) =>
          (await channels.get(locationId).catch(() => undefined))?.channel.conversationProviderId ??
          inbound!.conversationProviderId,
        confirmationOverview: async () => ({
          mode: confirm.settings.mode,
          awaiting: await countAwaiting(ctx.db),
          rejected: await listRejected(ctx.db),
        }),
      };
      ctx.services.provide('provider', service);
    },
    async routes(app) {
      const rt = inbound!;
      await app.register(async (scope) => registerInboundRoutes(scope, rt));
    },
    async adminRoutes(admin, ctx) {
      // Through the service: its configure/delete also drop this process's cached adapter for the location.
      const service = ctx.services.get('provider');
      await registerChannelAdminRoutes(admin, { service });
      await registerCatchupAdminRoutes(admin, {
        run: (locationId, since) => service.catchUp({ locationId, since }),
        overview: () => service.catchupOverview(),
      });
    },
  };
}
