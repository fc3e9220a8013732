import type { FastifyInstance } from 'fastify';
import { Gauge } from 'prom-client';
import type { Config } from './infra/config/index.js';
import { openDatabase, type DatabaseHandle, type Db } from './infra/db/index.js';
import { mergeMigrations, migrateToLatest, pendingMigrations, type Migrations } from './infra/db/migrations/index.js';
import { AdminSessions, requireAdminKey } from './infra/http/admin-auth.js';
import { markAdminRoute, markApiKeyRoute } from './infra/http/openapi.js';
import { buildServer } from './infra/http/server.js';
import { createLogger, type Logger } from './infra/log/logger.js';
import { createMetrics, type Metrics } from './infra/observability/metrics.js';
import { countByState, pruneFinished, setDefaultMaxAttempts, WorkerPool } from './infra/queue/index.js';
import { listenForJobs } from './infra/queue/listen.js';
import { queueMigration } from './infra/queue/migration.js';

/**
 * The services modules publish for each other, by name. Empty here: each module adds what it provides by module
 * augmentation, next to its implementation, so the compiler sees every name and type:
 *
 *     declare module '../../app.js' { interface Services { provider: ProviderService } }
 *
 * A module publishes with `ctx.services.provide('provider', service)` during `init` and reads another's with
 * `ctx.services.get('ghl')` (throws, naming the missing service, when the module that provides it is not loaded) or
 * `ctx.services.find('installations')` (undefined when absent: optional dependencies).
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by module augmentation
export interface Services {}

/** The typed registry behind `ctx.services`. */
export class ServiceRegistry {
  readonly #values: Partial<Services> = {};

  /** Publishes a service; a second module providing the same name is a wiring error. */
  provide<K extends keyof Services>(name: K, value: Services[K]): Services[K] {
    if (this.#values[name] !== undefined) throw new Error(`service '${String(name)}' is provided twice`);
    this.#values[name] = value;
    return value;
  }

  /** The service, or an error naming it (its module is missing from the bridge, or listed after the caller). */
  get<K extends keyof Services>(name: K): Services[K] {
    const v = this.#values[name];
    if (v === undefined)
      throw new Error(
        `service '${String(name)}' is not available: the module that provides it is not loaded (or runs later)`,
      );
    return v;
  }

  /** The service, or undefined when no module provides it. */
  find<K extends keyof Services>(name: K): Services[K] | undefined {
    return this.#values[name];
  }

  has(name: keyof Services): boolean {
    return this.#values[name] !== undefined;
  }
}

/** Everything a feature module needs; built once per bridge. */
export interface AppContext {
  config: Config;
  log: Logger;
  store: DatabaseHandle;
  db: Db;
  queue: WorkerPool;
  metrics: Metrics;
  /** The services modules publish for each other (e.g. the GHL client), typed through `Services`. */
  services: ServiceRegistry;
  /** The console's sessions (the admin guard accepts their cookie); undefined without ADMIN_API_KEY. */
  adminSessions: AdminSessions | undefined;
  /**
   * Registers periodic housekeeping (pruning old rows), during `init`. Every replica runs it once
   * when it starts listening and then every `everyMs`, so it must be idempotent and cheap when there
   * is nothing to do. The signal aborts at shutdown: stop between units of work.
   */
  maintain(name: string, everyMs: number, task: (signal: AbortSignal) => Promise<unknown>): void;
}

interface MaintenanceTask {
  name: string;
  everyMs: number;
  task: (signal: AbortSignal) => Promise<unknown>;
  /** The run in progress: a slow run is never overlapped, and close() waits for it. */
  running?: Promise<void> | undefined;
}

/**
 * A capability of the bridge. `init` registers job handlers and services (before workers start),
 * `routes` adds HTTP routes, `start`/`stop` run after listen / before the database closes.
 */
export interface BridgeModule {
  name: string;
  /**
   * The migrations of the tables this module owns, by name (Kysely applies all of a bridge's
   * migrations in name order, so names are global: `NNNN_<module>`). Never edit an applied one.
   */
  migrations?: Migrations;
  init?(ctx: AppContext): Promise<void> | void;
  routes?(app: FastifyInstance, ctx: AppContext): Promise<void> | void;
  /**
   * The module's operator API (paths under /admin/). Registered inside the one admin scope, whose onRequest hook
   * checks `Authorization: Bearer <ADMIN_API_KEY>` before any handler runs; not registered at all when
   * ADMIN_API_KEY is unset. Admin routes go here, never in `routes`.
   */
  adminRoutes?(admin: FastifyInstance, ctx: AppContext): Promise<void> | void;
  start?(ctx: AppContext): Promise<void> | void;
  stop?(ctx: AppContext): Promise<void> | void;
}

/** Migrations of the kernel itself (the job queue), applied by every bridge. */
export const CORE_MIGRATIONS: Migrations = { '0001_queue': queueMigration };

/** The migrations a bridge with these modules applies: the kernel's, then each module's. */
export function bridgeMigrations(modules: readonly BridgeModule[]): Migrations {
  return mergeMigrations(
    { owner: 'core', migrations: CORE_MIGRATIONS },
    ...modules.map((m) => ({ owner: m.name, migrations: m.migrations })),
  );
}

export interface Bridge {
  app: FastifyInstance;
  ctx: AppContext;
  /** Every route of the guarded admin scope (empty without ADMIN_API_KEY): for the console, the API document and tests. */
  adminRouteTable: ReadonlyArray<{ method: string; url: string }>;
  /** Every route of the bridge (HEAD included), in registration order: the API document's test checks it covers them. */
  routeTable: ReadonlyArray<{ method: string; url: string }>;
  /** Listens on config HOST:PORT (or the given port) and starts the workers; returns the base URL. */
  listen(port?: number): Promise<string>;
  /** Runs every registered housekeeping task once now (also done at listen and on their interval). */
  runMaintenance(): Promise<void>;
  close(): Promise<void>;
}

export interface CreateBridgeOptions {
  log?: Logger;
  modules?: BridgeModule[];
  /** PGlite directory override (tests use memory://). */
  dataDir?: string;
}

export async function createBridge(config: Config, opts: CreateBridgeOptions = {}): Promise<Bridge> {
  const log = opts.log ?? createLogger({ level: config.LOG_LEVEL, secrets: config.secretValues });
  const metrics = createMetrics();
  const store = await openDatabase({
    url: config.DATABASE_URL,
    schema: config.DATABASE_SCHEMA,
    dataDir: opts.dataDir ?? config.DATA_DIR,
    embeddedThread: config.EMBEDDED_STORE_THREAD,
    poolMax: config.DATABASE_POOL_MAX,
    preparedStatements: config.DATABASE_PREPARED_STATEMENTS,
  });
  const modules = opts.modules ?? [];
  let migrations: Migrations;
  try {
    migrations = bridgeMigrations(modules);
    const applied = await migrateToLatest(store.db, store.schema, migrations);
    if (applied.length) log.info({ applied }, 'database migrated');
  } catch (e) {
    await store.close();
    throw e;
  }
  setDefaultMaxAttempts(config.JOB_MAX_ATTEMPTS);

  const queue = new WorkerPool({
    db: store.db,
    queueDb: store.queueDb,
    log: log.child({ component: 'queue' }),
    concurrency: config.WORKER_CONCURRENCY,
    leaseMs: config.JOB_LEASE_MS,
    pollMs: config.JOB_POLL_MS,
    ...(config.JOB_CLAIM_BATCH ? { batchSize: config.JOB_CLAIM_BATCH } : {}),
    listen: (onNotify) => listenForJobs(store, onNotify),
    onJobEvent: (e) => {
      metrics.jobDuration.observe({ kind: e.kind, outcome: e.outcome }, e.durationMs / 1000);
      if (e.outcome !== 'done') metrics.jobFailures.inc({ kind: e.kind, outcome: e.outcome });
    },
  });
  new Gauge({
    name: 'ghl_bridge_jobs',
    help: 'Jobs in the queue by state',
    labelNames: ['state'],
    registers: [metrics.registry],
    async collect() {
      const counts = await countByState(store.db);
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });

  const listenDetail = () => {
    if (config.WORKER_CONCURRENCY <= 0) return { used: false };
    const st = store.listenStatus;
    return { used: true, listening: st.listening, reconnects: st.reconnects, lastError: st.lastError };
  };
  new Gauge({
    name: 'ghl_bridge_listen_connected',
    help: 'Whether the LISTEN connection that wakes workers on NOTIFY is up (1) or being re-established (0); workers poll meanwhile',
    registers: [metrics.registry],
    collect() {
      this.set(store.listenStatus.listening ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ghl_bridge_listen_reconnects',
    help: 'Times the LISTEN connection was re-established after it dropped, since start',
    registers: [metrics.registry],
    collect() {
      this.set(store.listenStatus.reconnects);
    },
  });

  const tasks: MaintenanceTask[] = [];
  const stopping = new AbortController();
  const ctx: AppContext = {
    config,
    log,
    store,
    db: store.db,
    queue,
    metrics,
    services: new ServiceRegistry(),
    adminSessions: config.ADMIN_API_KEY ? new AdminSessions(config.ADMIN_API_KEY) : undefined,
    maintain: (name, everyMs, task) => void tasks.push({ name, everyMs, task }),
  };
  if (config.JOB_RETENTION_HOURS > 0)
    ctx.maintain('prune cancelled jobs', 10 * 60_000, () => pruneFinished(store.db, config.JOB_RETENTION_HOURS));
  const runTask = (t: MaintenanceTask): Promise<void> =>
    (t.running ??= (async () => {
      try {
        const n = await t.task(stopping.signal);
        if (typeof n === 'number' && n > 0) log.info({ task: t.name, rows: n }, 'housekeeping');
      } catch (e) {
        log.warn({ err: e, task: t.name }, 'housekeeping failed; trying again on its next run');
      } finally {
        t.running = undefined;
      }
    })());
  for (const m of modules) await m.init?.(ctx);

  const app = buildServer({
    log,
    metrics,
    bodyLimit: config.BODY_LIMIT_BYTES,
    // Hot paths: GHL webhooks, channel inbound and the /v1 API (machine-to-machine, at volume: triggers, chat
    // messages, calls, contact batches). Counted in the request metrics; a route that wants its request lines sets
    // its own Fastify `logLevel`.
    quietRoutePrefixes: config.LOG_HOT_PATH_REQUESTS ? [] : ['/webhooks/', '/channels/', '/v1/'],
    timeouts: {
      headersMs: config.HTTP_HEADERS_TIMEOUT_MS,
      requestMs: config.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      connectionMs: config.HTTP_CONNECTION_TIMEOUT_MS,
    },
    readiness: async () => {
      const checks: Record<string, string | null> = { database: null, migrations: null, workers: null };
      try {
        await store.ping();
        const pending = await pendingMigrations(store.db, store.schema, migrations);
        checks.migrations = pending.length ? `pending: ${pending.join(', ')}` : null;
      } catch (e) {
        checks.database = `unreachable: ${(e as Error).message}`;
        checks.migrations = 'unknown';
      }
      if (config.WORKER_CONCURRENCY > 0 && !queue.running) checks.workers = 'not running';
      return checks;
    },
    // Not a readiness condition: without LISTEN, workers still find jobs by polling (JOB_POLL_MS).
    readinessDetail: () => ({ listen: listenDetail() }),
  });
  const routeTable: Array<{ method: string; url: string }> = [];
  // Added before any plugin loads (buildServer's own routes are registered in plugins), so it sees every route.
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routeTable.push({ method, url: r.url });
  });
  await app.register(async (pub) => {
    // The public /v1 API: every route there is guarded by an API key (platform/apikeys) and says so in the document.
    pub.addHook('onRoute', (r) => {
      if (r.url.startsWith('/v1/')) markApiKeyRoute(r);
    });
    for (const m of modules) if (m.routes) await pub.register(async (scope) => m.routes!(scope, ctx));
  });
  // The one guarded admin scope: every module's /admin/* API, behind one auth hook.
  const adminKey = config.ADMIN_API_KEY;
  const adminRouteTable: Array<{ method: string; url: string }> = [];
  if (adminKey) {
    await app.register(async (admin) => {
      admin.addHook('onRequest', requireAdminKey(adminKey, ctx.adminSessions));
      admin.addHook('onRoute', (r) => {
        markAdminRoute(r);
        for (const method of [r.method].flat()) if (method !== 'HEAD') adminRouteTable.push({ method, url: r.url });
      });
      for (const m of modules) if (m.adminRoutes) await admin.register(async (scope) => m.adminRoutes!(scope, ctx));
    });
  }

  const timers: NodeJS.Timeout[] = [];
  let closed = false;
  return {
    app,
    ctx,
    adminRouteTable,
    routeTable,
    async listen(port?: number) {
      // A deep accept backlog: GHL (and bulk actions) can open many connections at once, and a
      // dropped SYN costs a 1 s retransmit, enough to push a webhook past the sender's timeout.
      const address = await app.listen({ port: port ?? config.PORT, host: config.HOST, backlog: 4096 });
      await queue.start();
      for (const m of modules) await m.start?.(ctx);
      for (const t of tasks) {
        void runTask(t);
        const timer = setInterval(() => void runTask(t), t.everyMs);
        timer.unref();
        timers.push(timer);
      }
      return address.replace('[::1]', 'localhost').replace('0.0.0.0', 'localhost');
    },
    async runMaintenance() {
      for (const t of tasks) {
        await t.running; // a run that started earlier may not see rows written since: run again after it
        await runTask(t);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearInterval(t);
      // Housekeeping starts nothing new from here (a token refresh in flight still completes).
      stopping.abort();
      // Order: stop taking requests, let jobs finish or release them, then close the store.
      // A keep-alive connection that was busy when closing began goes idle afterwards and would be
      // held for the keep-alive timeout (72 s): close connections as they go idle, and force the
      // rest once the shutdown budget is spent.
      const idleSweep = setInterval(() => app.server.closeIdleConnections(), 100);
      const force = setTimeout(() => app.server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS);
      try {
        await app.close();
      } finally {
        clearInterval(idleSweep);
        clearTimeout(force);
      }
      const { finished, released } = await queue.stop(config.SHUTDOWN_TIMEOUT_MS);
      if (finished || released) log.info({ finished, released }, 'workers stopped');
      await Promise.all(tasks.map((t) => t.running));
      for (const m of [...modules].reverse()) await m.stop?.(ctx);
      await store.close();
    },
  };
}
