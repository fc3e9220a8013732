import { Counter, Gauge, Histogram } from 'prom-client';
import { z } from 'zod';
import type { AppContext, BridgeModule, ServiceRegistry } from '../../app.js';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import { createGhlClient, type GhlClient } from '../ghl/client.js';
import { GHL_LIMITS, RateLimiter, type RateLimitOptions } from '../ghl/ratelimit.js';
import { webhooksService, type StoredEvent } from '../webhooks/index.js';
import { CALLBACK_PATH, registerInstallRoutes } from './routes.js';
import { InstallationsService, mintLocationJob, reconcileJob, syncCompanyJob } from './service.js';
import { TokenVault, type InstallationEventSink } from './vault.js';
import { isCompanyKey, isLocationKey } from '../keys.js';
import { installationsMigration } from './migration.js';

export {
  InstallationsService,
  OAuthStateError,
  JOB_MINT_LOCATION,
  JOB_RECONCILE,
  JOB_SYNC_COMPANY,
  type InstallationView,
} from './service.js';
export { TokenVault, ReauthRequiredError, NotInstalledError, installationId, rotateTokenKeys } from './vault.js';
export { CALLBACK_PATH, INSTALL_PATH } from './routes.js';

export interface InstallationsModuleOptions {
  /** Clock for token expiry and state TTL (tests pass the emulator's). */
  now?: () => number;
  limits?: Partial<RateLimitOptions>;
  /** Default from GHL_RECONCILE_INTERVAL_MIN. */
  reconcileIntervalMs?: number;
}

/** What this module publishes in ctx.services (and the `knownLocations` lookup the webhooks module needs). */
export interface InstallationsServices {
  ghl: GhlClient;
  installations: InstallationsService;
  tokenVault: TokenVault;
  rateLimiter: RateLimiter;
}

/** This module's services of a bridge, in one object (tests, benchmark, CLI diagnostics). */
export function installationsServices(services: ServiceRegistry): InstallationsServices {
  return {
    ghl: services.get('ghl'),
    installations: services.get('installations'),
    tokenVault: services.get('tokenVault'),
    rateLimiter: services.get('rateLimiter'),
  };
}

declare module '../../app.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- the merge is the point
  interface Services extends InstallationsServices {}
}

/** The part of INSTALL / UNINSTALL payloads this module reads (validated by the webhooks module's schemas). */
const installPayload = z.looseObject({ companyId: z.string().nullish(), locationId: z.string().nullish() });
type InstallPayload = z.infer<typeof installPayload>;

/** The payload's ids win over the ones intake derived (same values for a well-formed event). */
const installIds = (e: StoredEvent<InstallPayload>) => ({
  locationId: e.payload.locationId ?? e.locationId,
  companyId: e.payload.companyId ?? e.companyId,
});

export function installationsModule(opts: InstallationsModuleOptions = {}): BridgeModule {
  let svc: InstallationsService | undefined;
  let limiter: RateLimiter | undefined;
  const reconcileEvery = (ctx: AppContext) =>
    opts.reconcileIntervalMs ?? ctx.config.GHL_RECONCILE_INTERVAL_MIN * 60_000;
  const scheduleReconcile = async (ctx: AppContext, db = ctx.db) => {
    const every = reconcileEvery(ctx);
    if (!every) return;
    const slot = Math.floor(Date.now() / every) + 1;
    // dedupeKey per slot: every replica schedules, one job runs.
    await reconcileJob.enqueue(db, {}, { dedupeKey: `ghl.reconcile:${slot}`, runAt: new Date(slot * every) });
  };

  return {
    name: 'installations',
    migrations: { '0002_installations': installationsMigration },
    init(ctx) {
      const { config, log, metrics } = ctx;
      const ilog = log.child({ component: 'installations' });
      const ring = loadKeyRing(config, ilog);
      const clientId = config.GHL_CLIENT_ID ?? 'sandbox-app';
      const clientSecret = config.GHL_CLIENT_SECRET ?? '';
      const reg = [metrics.registry];
      const requests = new Counter({
        name: 'ghl_bridge_ghl_requests_total',
        help: 'Calls to the GHL API by operation and status (0 = network error)',
        labelNames: ['op', 'status'],
        registers: reg,
      });
      const duration = new Histogram({
        name: 'ghl_bridge_ghl_request_duration_seconds',
        help: 'GHL API call duration',
        labelNames: ['op'],
        buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
        registers: reg,
      });
      const waits = new Histogram({
        name: 'ghl_bridge_ghl_ratelimit_wait_seconds',
        help: 'Time a GHL call waited for its rate-limit slot, by lane',
        labelNames: ['lane'],
        buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
        registers: reg,
      });
      const refreshes = new Counter({
        name: 'ghl_bridge_token_refreshes_total',
        help: 'Token refreshes (oauth refresh_token grant or location token minted from the company)',
        labelNames: ['source'],
        registers: reg,
      });
      const reauth = new Counter({
        name: 'ghl_bridge_installation_reauth_total',
        help: 'Installations that needed re-authorization (refresh rejected)',
        registers: reg,
      });
      new Gauge({
        name: 'ghl_bridge_installations',
        help: 'Installations by status',
        labelNames: ['status'],
        registers: reg,
        async collect() {
          const rows = await ctx.db
            .selectFrom('ghl_installations')
            .select(['status', ctx.db.fn.countAll<number>().as('n')])
            .groupBy('status')
            .execute();
          this.reset();
          for (const r of rows) this.set({ status: r.status }, Number(r.n));
        },
      });

      limiter = new RateLimiter(ctx.db, clientId, { ...GHL_LIMITS, ...opts.limits }, ilog, (lane, ms) =>
        waits.observe({ lane }, ms / 1000),
      );
      // installation.* bridge events, when the events module runs and someone subscribes (it is listed later).
      const publishEvent: InstallationEventSink = async (db, e) => {
        const bus = ctx.services.find('events');
        if (!bus?.active()) return;
        const ids = { installationId: e.installationId, locationId: null, companyId: null } as {
          installationId: string;
          locationId: string | null;
          companyId: string | null;
        };
        if (isLocationKey(e.installationId)) ids.locationId = e.installationId.slice(e.installationId.indexOf(':') + 1);
        else if (isCompanyKey(e.installationId))
          ids.companyId = e.installationId.slice(e.installationId.indexOf(':') + 1);
        if (e.type === 'installation.reauth_required')
          await bus.publish(db, { type: e.type, locationId: ids.locationId, data: { ...ids, reason: e.reason } });
        else await bus.publish(db, { type: e.type, locationId: ids.locationId, data: ids });
      };
      const vault = new TokenVault({
        publishEvent,
        db: ctx.db,
        kind: ctx.store.kind,
        ring,
        log: ilog,
        apiBase: config.GHL_API_BASE,
        clientId,
        clientSecret,
        ...(opts.now ? { now: opts.now } : {}),
        onRefresh: (_id, source) => refreshes.inc({ source }),
        onReauth: () => reauth.inc(),
      });
      const client = createGhlClient({
        apiBase: config.GHL_API_BASE,
        tokens: vault,
        limiter,
        log: log.child({ component: 'ghl' }),
        metrics: {
          request: (op, status, ms) => {
            requests.inc({ op, status: String(status) });
            duration.observe({ op }, ms / 1000);
          },
        },
      });
      svc = new InstallationsService({
        publishEvent,
        db: ctx.db,
        vault,
        client,
        log: ilog,
        apiBase: config.GHL_API_BASE,
        marketplaceBase: config.GHL_MARKETPLACE_BASE,
        clientId,
        clientSecret,
        scopes: config.GHL_SCOPES,
        redirectUri: `${config.publicUrl}${CALLBACK_PATH}`,
      });
      const s = svc;
      ctx.services.provide('ghl', client);
      ctx.services.provide('installations', s);
      ctx.services.provide('tokenVault', vault);
      ctx.services.provide('rateLimiter', limiter);
      ctx.services.provide('knownLocations', s);

      ctx.queue.register(syncCompanyJob, { deps: s });
      ctx.queue.register(mintLocationJob, { deps: s });
      ctx.queue.register(reconcileJob, { deps: { service: s, reschedule: (db) => scheduleReconcile(ctx, db) } });
      const renewAfterDays = config.GHL_RENEW_IDLE_TOKENS_DAYS;
      if (renewAfterDays > 0 && config.GHL_CLIENT_ID)
        ctx.maintain(
          'renew idle installations',
          6 * 3600_000,
          async (signal) => (await s.renewIdle(renewAfterDays * 24 * 3600_000, { signal })).renewed,
        );
      // The registry exists whatever the module order (created by whoever asks first).
      const webhooks = webhooksService(ctx);
      webhooks.onParsed('INSTALL', installPayload, async (e, c) => s.onInstall(installIds(e), c.db), {
        requireKnownLocation: false,
        name: 'installations.install',
      });
      webhooks.onParsed('UNINSTALL', installPayload, async (e, c) => void (await s.onUninstall(installIds(e), c.db)), {
        requireKnownLocation: false,
        name: 'installations.uninstall',
      });
    },
    routes(app) {
      registerInstallRoutes(app, () => (svc && svc.appId !== 'sandbox' ? svc : undefined));
    },
    async start(ctx) {
      await scheduleReconcile(ctx);
    },
    async stop() {
      await limiter?.close();
    },
  };
}
