/**
 * Event subscriptions (issue 16): every stored GHL webhook event and the bridge's own events, fanned out to
 * subscribed endpoints with Standard Webhooks signatures, retries on a published schedule, a circuit breaker per
 * endpoint, a delivery log, dead-lettering and replay.
 *
 * Public API
 * ----------
 * - `eventsModule(opts?)` → BridgeModule (tables 0020_events; admin API under /admin/api/subscriptions,
 *   /admin/api/deliveries, /admin/api/events/replay, /admin/api/event-alerts, /admin/api/event-types).
 * - The `events` service: `publish(db | trx, { type, locationId, contactId?, data })` records a bridge event and its
 *   fan-out rows in the caller's transaction (transactional outbox); `subscriptions` manages subscriptions.
 *   Other modules use it optionally: `ctx.services.find('events')?.publish(trx, …)`.
 */
import { Counter, Histogram } from 'prom-client';
import { sql } from 'kysely';
import type { AppContext, BridgeModule } from '../../app.js';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import type { Db } from '../../infra/db/index.js';
import { webhooksService } from '../../platform/webhooks/index.js';
import { registerEventAdminRoutes } from './admin.js';
import { DeliveryEngine, type EngineSettings } from './deliver.js';
import { eventsMigration } from './migration.js';
import type { BridgeEventType } from './schemas.js';
import {
  ghlFanOutCtes,
  publishBridgeEvent,
  SubscriptionStore,
  type BridgeEventInput,
  type EventsService,
} from './service.js';
import { parseNetwork, SsrfGuard } from './ssrf.js';

export { BRIDGE_EVENT_SCHEMAS, BRIDGE_EVENT_TYPES, eventEnvelopeSchema, matchesFilter } from './schemas.js';
export type { BridgeEventType, BridgeEventData } from './schemas.js';
export { RETRY_SCHEDULE_MS, MAX_ATTEMPTS, retryDelay } from './deliver.js';
export { SubscriptionStore, SubscriptionInputError, ghlEventId } from './service.js';
export type { EventsService, BridgeEventInput, SubscriptionView, DeliveryView, ReplaySelection } from './service.js';
export { SsrfGuard, parseNetwork } from './ssrf.js';

export interface EventsModuleOptions {
  /** Clock for schedules, leases and the breaker (tests). */
  now?: () => number;
  /** Random source of the retry jitter (tests). */
  rnd?: () => number;
  /** Run the delivery loops (default: when WORKER_CONCURRENCY > 0). Tests drive `engine.runOnce` instead. */
  autoDeliver?: boolean;
  /** Overrides of the delivery settings from config. */
  settings?: Partial<EngineSettings>;
}

/** Internal handle (tests, the benchmark). */
export interface EventsRuntime {
  engine: DeliveryEngine;
  store: SubscriptionStore;
  guard: SsrfGuard;
}

declare module '../../app.js' {
  interface Services {
    /** Provided here: publish bridge events, manage subscriptions. */
    events: EventsService;
    /** Provided here: internal handle for tests and the benchmark. */
    eventsInternal: EventsRuntime;
  }
}

/** The SSRF guard of a config (EVENTS_ALLOWED_NETWORKS). */
export function guardFromConfig(c: { EVENTS_ALLOWED_NETWORKS: string }): SsrfGuard {
  return new SsrfGuard(
    c.EVENTS_ALLOWED_NETWORKS.split(',')
      .map((n) => n.trim())
      .filter(Boolean)
      .map(parseNetwork),
  );
}

export function eventsModule(opts: EventsModuleOptions = {}): BridgeModule {
  let rt: EventsRuntime | undefined;
  let anySubscription = false;
  let changeGen = 0;
  const now = opts.now ?? Date.now;

  return {
    name: 'events',
    migrations: { '0020_events': eventsMigration },
    init(ctx: AppContext) {
      const c = ctx.config;
      const ring = loadKeyRing(c, ctx.log);
      const guard = guardFromConfig(c);
      const log = ctx.log.child({ component: 'events' });
      const attempts = new Counter({
        name: 'ghl_bridge_event_delivery_attempts_total',
        help: 'Event delivery attempts by outcome (delivered, retry, dead)',
        labelNames: ['outcome'],
        registers: [ctx.metrics.registry],
      });
      const latency = new Histogram({
        name: 'ghl_bridge_event_delivery_seconds',
        help: 'Time from sending an event delivery to the endpoint’s answer',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [ctx.metrics.registry],
      });
      // Built below; the store and publish reach it lazily.
      const late: { engine?: DeliveryEngine } = {};
      const wake = () => late.engine?.wake();
      const store = new SubscriptionStore({
        db: ctx.db,
        ring,
        guard,
        now,
        overlapMs: c.EVENTS_SECRET_OVERLAP_HOURS * 3600_000,
        onChange: () => {
          // Committed: from now on events must be fanned out. A reading of the subscriptions that started before
          // this change may still say "none"; only a later one may turn this off again.
          anySubscription = true;
          changeGen = late.engine?.generation ?? 0;
          return late.engine?.refresh();
        },
      });
      const publish = async <T extends BridgeEventType>(db: Db, e: BridgeEventInput<T>): Promise<string> => {
        const id = await publishBridgeEvent(db, e, new Date(now()));
        // Inside a transaction the rows are visible only after its commit: wake shortly after, the poll is the net.
        if (db.isTransaction) setTimeout(wake, 10).unref();
        else wake();
        return id;
      };
      const engine = new DeliveryEngine({
        db: ctx.db,
        log,
        ring,
        guard,
        now,
        rnd: opts.rnd ?? Math.random,
        settings: {
          concurrency: c.EVENTS_ENDPOINT_CONCURRENCY,
          batchMs: c.EVENTS_BATCH_MS,
          timeoutMs: c.EVENTS_DELIVERY_TIMEOUT_MS,
          pollMs: c.EVENTS_POLL_MS,
          breakerThreshold: c.EVENTS_BREAKER_THRESHOLD,
          breakerCooldownMs: c.EVENTS_BREAKER_COOLDOWN_MS,
          disableAfterMs: c.EVENTS_DISABLE_AFTER_DAYS * 86_400_000,
          ...opts.settings,
        },
        onSubscriptions: (n, gen) => {
          if (n > 0) anySubscription = true;
          else if (gen > changeGen) anySubscription = false;
        },
        onAttempt: (outcome, ms) => {
          attempts.inc({ outcome });
          latency.observe(ms / 1000);
        },
        disable: async (subId, url, reason) => {
          await ctx.db.transaction().execute(async (trx) => {
            const r = await trx
              .updateTable('event_subscriptions')
              .set({
                state: 'disabled',
                disabled_by: 'system',
                disabled_reason: reason,
                disabled_at: new Date(now()),
                updated_at: new Date(now()),
              })
              .where('id', '=', subId)
              .where('state', '=', 'enabled')
              .executeTakeFirst();
            if (Number(r.numUpdatedRows) === 1) {
              log.warn({ subscription: subId, reason }, 'event subscription disabled');
              await publishBridgeEvent(
                trx,
                { type: 'endpoint.disabled', data: { subscriptionId: subId, url, reason } },
                new Date(now()),
              );
            }
          });
          setTimeout(() => void late.engine?.refresh(), 0).unref();
        },
      });
      late.engine = engine;
      rt = { engine, store, guard };
      ctx.services.provide('events', { publish, wake, active: () => anySubscription, subscriptions: store });
      ctx.services.provide('eventsInternal', rt);

      // Every stored GHL event (whatever its type, handled or not) gets its event row and fan-out rows in the very
      // statement that stores it (the intake's group commit): never stored without them, never twice (duplicates
      // are not in `ev`), and no job per event.
      webhooksService(ctx).onStored({
        sql: () => (anySubscription ? ghlFanOutCtes(new Date(now())) : null),
        after: wake,
      });

      if (c.DATA_RETENTION_DAYS > 0)
        ctx.maintain('prune events', 3600_000, async () => {
          const cutoff = new Date(now() - c.DATA_RETENTION_DAYS * 86_400_000);
          const r = await sql`
            delete from event_log where id in (
              select id from event_log e where e.received_at < ${cutoff}
                and not exists (select 1 from event_deliveries d where d.event_id = e.id and d.status = 'pending')
              limit 5000)`.execute(ctx.db);
          return Number(r.numAffectedRows ?? 0);
        });
    },
    async adminRoutes(admin) {
      await registerEventAdminRoutes(admin, { store: rt!.store, wake: () => rt!.engine.wake() });
    },
    async start(ctx) {
      await rt!.engine.start(opts.autoDeliver ?? ctx.config.WORKER_CONCURRENCY > 0);
    },
    async stop() {
      await rt?.engine.stop();
    },
  };
}
