/**
 * Webhook intake (issue 5): receives GHL's signed webhooks, stores them durably, dispatches them
 * to handlers as queue jobs.
 *
 * Public API
 * ----------
 * - `webhooksModule(opts?)` → BridgeModule. Routes: POST /webhooks/ghl (app Default Webhook URL),
 *   POST /webhooks/ghl/provider (conversation provider Delivery URL, signed calls) and
 *   POST /webhooks/ghl/provider/:token (the same with the URL token; unsigned calls stored as signature 'url_token',
 *   which the provider confirms before acting; tokens checked by the `providerDeliveryTokens` service), and /admin/webhooks/* when
 *   ADMIN_API_KEY is set.
 * - `webhooksService(ctx): WebhooksService` (also the `webhooks` service) —
 *   register handlers during your module's `init`. Any module order works: the registry is
 *   created by whoever asks first, and handlers are looked up when an event arrives / its job runs.
 *
 *     const webhooks = webhooksService(ctx);
 *     webhooks.on('INSTALL', onInstall, { requireKnownLocation: false });
 *     webhooks.onParsed(PROVIDER_OUTBOUND, providerOutboundMessageSchema, deliver); // typed payload
 *
 *   Handler: `(event: StoredEvent<P>, ctx: HandlerContext) => Promise<void>`; it must be
 *   idempotent (retries, replays, a crash after the handler but before the status update).
 *   Throw to retry with backoff; `PermanentJobError` (src/infra/queue) → dead at once;
 *   `RetryLaterError` / `PauseJobError` behave as in the queue. Options: `orderingKey(evt)`
 *   (default: location + contact), `requireKnownLocation` (default true).
 * - Location hook: if a module provides the `knownLocations` service (`isKnownLocation(locationId, companyId)`),
 *   events of unknown locations are stored with status 'skipped' instead of reaching handlers
 *   that require a known location.
 * - `replayEvents(db, selection)` (also: CLI `ghl-bridge webhooks replay`, POST /admin/webhooks/replay).
 * - `onStored({ sql, after })`: CTEs joined to the intake's insert of newly stored events (every type), committed with
 *   them — how event subscriptions (src/capabilities/events) record every GHL event without a job per event.
 */
import type { KeyObject } from 'node:crypto';
import type { AppContext, BridgeModule } from '../../app.js';
import type { BackoffPolicy } from '../../infra/queue/index.js';
import { registerAdminRoutes } from './admin.js';
import { dispatchJob, eventReader, outcomeWriter } from './dispatch.js';
import { registerIntakeRoutes, type DeliveryTokenCheck } from './intake.js';
import { GHL_ED25519_PUBLIC_KEY_PEM, GHL_RSA_PUBLIC_KEY_PEM, loadPublicKeys, splitPemList } from './keys.js';
import { createWebhookMetrics, type WebhookMetrics } from './metrics.js';
import { handlerRegistry, type HandlerRegistry, type LocationLookup } from './registry.js';
import { countReadyDispatchJobs, GroupCommitter, pruneEvents } from './store.js';
import { WebhookVerifier } from './verify.js';
import { webhooksMigration } from './migration.js';

export {
  APP_WEBHOOK_PATH,
  PROVIDER_TOKEN_WEBHOOK_PATH,
  PROVIDER_WEBHOOK_PATH,
  URL_TOKEN_SIGNATURE,
  type DeliveryTokenCheck,
} from './intake.js';
export { GHL_ED25519_PUBLIC_KEY_PEM, GHL_RSA_PUBLIC_KEY_PEM } from './keys.js';
export { webhooksService } from './registry.js';
export type {
  HandlerContext,
  HandlerOptions,
  IncomingEvent,
  LocationLookup,
  StoredEvent,
  WebhookHandler,
  WebhooksService,
} from './registry.js';
export { listEvents, getEvent, replayEvents, type ReplayResult, type ReplaySelection } from './replay.js';
export { DISPATCH_JOB } from './dispatch.js';
export { pruneEvents } from './store.js';
export {
  PROVIDER_OUTBOUND,
  providerOutboundMessageSchema,
  KNOWN_EVENT_TYPES,
  validateEvent,
  type ContactEvent,
  type InstallEvent,
  type MessageEvent,
  type ProviderOutboundMessage,
} from './schemas.js';
export type { WebhookStatus, WebhookSource } from './tables.js';
export { WebhookVerifier } from './verify.js';

export interface WebhooksModuleOptions {
  /** Ed25519 public keys accepted besides GHL's (e.g. the emulator's), PEM or KeyObject. */
  extraEd25519Keys?: Array<string | KeyObject>;
  /** RSA public keys accepted for the legacy header besides GHL's. */
  extraRsaKeys?: Array<string | KeyObject>;
  /** Leave GHL's published keys out (tests proving that only configured keys verify). */
  omitGhlKeys?: boolean;
  /** Overrides the `knownLocations` service (tests, single-tenant setups). */
  isKnownLocation?: LocationLookup['isKnownLocation'];
  /** Attempts per dispatch job; default JOB_MAX_ATTEMPTS. */
  maxAttempts?: number;
  /** Backoff between handler retries; default the queue's (1 s doubling, equal jitter). */
  backoff?: BackoffPolicy;
  /** Group commit: most events per transaction (default 256). */
  maxBatch?: number;
  /** Clock for the replay window (tests). */
  now?: () => number;
}

/** Internal handle, the `webhooksInternal` service (tests and the benchmark). */
export interface WebhooksRuntime {
  registry: HandlerRegistry;
  committer: GroupCommitter;
  verifier: WebhookVerifier;
  metrics: WebhookMetrics;
}

declare module '../../app.js' {
  interface Services {
    /** Provided here (created by the first module that registers a handler). */
    webhooks: HandlerRegistry;
    /** Provided here: internal handle for tests and the benchmark. */
    webhooksInternal: WebhooksRuntime;
    /** Needed here, provided by the installations module: events of unknown locations are skipped. */
    knownLocations: LocationLookup;
    /** Needed here, provided by the provider module: checks the Delivery-URL token of unsigned deliveries. */
    providerDeliveryTokens: DeliveryTokenCheck;
  }
}

/**
 * How long after the first attempt GHL may still redeliver a webhook it got 429 for: 6 retries 10 minutes apart plus
 * a jitter "from seconds to minutes", about 70 minutes in all (docs/ghl-behaviour.md#webhook-retries), rounded up to 75.
 */
export const GHL_RETRY_HORIZON_SEC = 4500;

export function webhooksModule(opts: WebhooksModuleOptions = {}): BridgeModule {
  let runtime: WebhooksRuntime | undefined;
  let backlog = 0;
  let backlogAt = 0;
  let refreshing = false;

  return {
    name: 'webhooks',
    migrations: { '0003_webhooks': webhooksMigration },
    init(ctx: AppContext) {
      const c = ctx.config;
      if (c.WEBHOOK_TOLERANCE_SEC < GHL_RETRY_HORIZON_SEC) {
        ctx.log.warn(
          { WEBHOOK_TOLERANCE_SEC: c.WEBHOOK_TOLERANCE_SEC, retryHorizonSec: GHL_RETRY_HORIZON_SEC },
          "WEBHOOK_TOLERANCE_SEC is shorter than GHL's 429-retry horizon: a redelivery that keeps its original timestamp would be refused as stale",
        );
      }
      const ed = loadPublicKeys(
        [
          ...(opts.omitGhlKeys ? [] : [GHL_ED25519_PUBLIC_KEY_PEM]),
          ...splitPemList(c.WEBHOOK_EXTRA_ED25519_KEYS),
          ...(opts.extraEd25519Keys ?? []),
        ],
        'ed25519',
        'WEBHOOK_EXTRA_ED25519_KEYS',
      );
      const rsa = loadPublicKeys(
        [
          ...(opts.omitGhlKeys ? [] : [GHL_RSA_PUBLIC_KEY_PEM]),
          ...splitPemList(c.WEBHOOK_EXTRA_RSA_KEYS),
          ...(opts.extraRsaKeys ?? []),
        ],
        'rsa',
        'WEBHOOK_EXTRA_RSA_KEYS',
      );
      const verifier = new WebhookVerifier({ ed25519Keys: ed, rsaKeys: rsa, acceptRsa: c.WEBHOOK_ACCEPT_LEGACY_RSA });
      const metrics = createWebhookMetrics(ctx.metrics.registry);
      const registry = handlerRegistry(ctx);
      const committer = new GroupCommitter({
        // Served ahead of background work: a slow answer makes GHL drop the event for good.
        db: ctx.store.urgentDb,
        // PGlite is a single session; PostgreSQL overlaps two transactions to hide round trips.
        concurrency: ctx.store.kind === 'pglite' ? 1 : 4,
        maxBatch: opts.maxBatch ?? 256,
        maxAttempts: opts.maxAttempts ?? c.JOB_MAX_ATTEMPTS,
        onCommitted: () => ctx.queue.notify(),
        storedSql: () => registry.storedSql(),
        onBatch: (n, sec) => {
          metrics.commitBatch.observe(n);
          metrics.commitSeconds.observe(sec);
        },
      });
      runtime = { registry, committer, verifier, metrics };
      ctx.services.provide('webhooksInternal', runtime);
      const locations = (): LocationLookup | undefined => {
        if (opts.isKnownLocation) return { isKnownLocation: opts.isKnownLocation };
        return ctx.services.find('knownLocations');
      };
      ctx.queue.register(dispatchJob, {
        deps: { registry, metrics, locations, outcomes: outcomeWriter(ctx.db), events: eventReader(ctx.db) },
        ...(opts.backoff ? { backoff: opts.backoff } : {}),
      });
      if (c.DATA_RETENTION_DAYS > 0)
        ctx.maintain('prune webhook events', 3600_000, (signal) =>
          pruneEvents(ctx.db, c.DATA_RETENTION_DAYS, 5000, signal),
        );
      if (c.WEBHOOK_INSECURE_SKIP_VERIFY)
        ctx.log.warn(
          'WEBHOOK_INSECURE_SKIP_VERIFY is on: webhooks without a valid signature are accepted. Never use this with real traffic.',
        );
    },
    async routes(app, ctx) {
      const rt = runtime!;
      const c = ctx.config;
      const overBacklog = (): boolean => {
        // Cached count, refreshed in the background at most once a second.
        if (!refreshing && Date.now() - backlogAt > 1000) {
          refreshing = true;
          countReadyDispatchJobs(ctx.db)
            .then((n) => {
              backlog = n;
            })
            .catch(() => {
              /* the write path reports store errors itself */
            })
            .finally(() => {
              backlogAt = Date.now();
              refreshing = false;
            });
        }
        return backlog >= c.WEBHOOK_MAX_BACKLOG;
      };
      await app.register(async (scope) =>
        registerIntakeRoutes(scope, {
          verifier: rt.verifier,
          committer: rt.committer,
          registry: rt.registry,
          metrics: rt.metrics,
          log: ctx.log,
          toleranceSec: c.WEBHOOK_TOLERANCE_SEC,
          insecureSkipVerify: c.WEBHOOK_INSECURE_SKIP_VERIFY,
          maxBodyBytes: c.WEBHOOK_MAX_BODY_BYTES,
          persistTimeoutMs: c.WEBHOOK_PERSIST_TIMEOUT_MS,
          overBacklog,
          deliveryTokens: () => ctx.services.find('providerDeliveryTokens'),
          ...(opts.now ? { now: opts.now } : {}),
        }),
      );
    },
    async adminRoutes(admin, ctx) {
      await registerAdminRoutes(admin, { db: ctx.db, ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}) });
    },
    async stop() {
      // Requests already answered are committed; let in-flight writes finish before the store closes.
      await runtime?.committer.idle();
    },
  };
}
