/**
 * Workflow triggers and pipeline bridging (issue 16). See the README sections "Workflow triggers" and
 * "Pipeline bridging".
 *
 * Public API
 * - `pipelinesModule(opts?)` → BridgeModule (after webhooks, installations and apikeys in src/modules.ts).
 *   Routes (API key scoped to the location): POST /v1/locations/:locationId/triggers/:name,
 *   GET …/triggers/:name/requests/:id, GET …/pipelines, PUT/GET …/opportunities/:externalId,
 *   POST …/opportunities/:externalId/status, GET …/opportunities?opportunityId=, GET …/opportunity-operations/:id.
 *   Admin: /admin/triggers.
 * - service `pipelines: PipelinesService`.
 * - `setTrigger` / `listTriggers` / `deleteTrigger` (db, ring, …) — the same without a running bridge (CLI).
 */
import type { AppContext, BridgeModule } from '../../app.js';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import type { KeyRing } from '../../infra/crypto/aes.js';
import { webhooksService } from '../../platform/webhooks/index.js';
import { registerTriggerAdminRoutes, type TriggerAdminService } from './admin.js';
import { pipelinesMigration } from './migration.js';
import {
  applyOpportunityEvent,
  cachedPipelines,
  getMapping,
  listMappings,
  OPPORTUNITY_EVENTS,
  opportunityEventSchema,
  opportunityJob,
  refreshPipelines,
  type MappingView,
  type PipelineRuntime,
} from './opportunities.js';
import { pipelineMetrics, type PipelineMetrics } from './metrics.js';
import { prunePipelines } from './retention.js';
import { registerPublicRoutes } from './routes.js';
import {
  deleteTrigger,
  listTriggerRequests,
  listTriggers,
  setTrigger,
  triggerJob,
  type TriggerView,
} from './triggers.js';
import type { CachedPipeline } from './tables.js';

export { pipelinesMigration } from './migration.js';
export { prunePipelines } from './retention.js';
export {
  deleteTrigger,
  listTriggers,
  maskHookUrl,
  parseHookUrl,
  rotateTriggerKeys,
  setTrigger,
  TriggerConfigError,
  JOB_TRIGGER,
  type TriggerView,
} from './triggers.js';
export { JOB_OPPORTUNITY, OPPORTUNITY_EVENTS, type MappingView } from './opportunities.js';

export interface PipelinesModuleOptions {
  /** Overrides of TRIGGER_* (tests). */
  triggers?: Partial<{ maxAttempts: number; retryBaseMs: number; timeoutMs: number }>;
  /** An unknown pipeline/stage name refreshes the cache at most this often per location (default 10 s). */
  refreshMinMs?: number;
}

export interface PipelinesService extends TriggerAdminService {
  pipelines(locationId: string, o?: { refresh?: boolean }): Promise<CachedPipeline[]>;
  mapping(locationId: string, externalId: string): Promise<MappingView | undefined>;
}

declare module '../../app.js' {
  interface Services {
    /** Provided here. Needs `ghl` (installations) for GHL calls, `apiKeys` for /v1 routes, `webhooks`. */
    pipelines: PipelinesService;
  }
}

export function pipelinesModule(opts: PipelinesModuleOptions = {}): BridgeModule {
  let rt: PipelineRuntime | undefined;
  let maxAttempts = 10;
  let metrics: PipelineMetrics | undefined;
  return {
    name: 'pipelines',
    migrations: { '0030_pipelines': pipelinesMigration },
    init(ctx: AppContext) {
      const c = ctx.config;
      const log = ctx.log.child({ component: 'pipelines' });
      const ring: KeyRing = loadKeyRing(c, log);
      const t = {
        maxAttempts: c.TRIGGER_MAX_ATTEMPTS,
        retryBaseMs: c.TRIGGER_RETRY_BASE_MS,
        timeoutMs: c.TRIGGER_TIMEOUT_MS,
        ...opts.triggers,
      };
      maxAttempts = t.maxAttempts;
      const m = (metrics = pipelineMetrics(ctx.metrics.registry));
      if (c.DATA_RETENTION_DAYS > 0)
        ctx.maintain('prune delivered triggers and done opportunity operations', 3600_000, (signal) =>
          prunePipelines(ctx.db, c.DATA_RETENTION_DAYS, 5000, signal),
        );
      const ghl = () => ctx.services.get('ghl');
      rt = { db: ctx.db, ghl, refreshMinMs: opts.refreshMinMs ?? 10_000, maxWaitMs: 5000 };
      ctx.queue.register(triggerJob, {
        deps: { db: ctx.db, ring, timeoutMs: t.timeoutMs, metrics: m },
        backoff: { baseMs: t.retryBaseMs, maxMs: 3600_000 },
      });
      ctx.queue.register(opportunityJob, {
        deps: { db: ctx.db, ghl, metrics: m },
        maxConcurrent: Math.max(1, c.WORKER_CONCURRENCY),
        ownSlots: true,
        maxPerScope: c.WORKER_LOCATION_CONCURRENCY,
      });

      // Opportunity events keep the map current; a stage the cache does not know refreshes it.
      const webhooks = webhooksService(ctx);
      const runtime = rt;
      for (const type of OPPORTUNITY_EVENTS)
        webhooks.onParsed(
          type,
          opportunityEventSchema,
          async (evt) => {
            const outcome = await applyOpportunityEvent(ctx.db, evt.payload, evt.receivedAt);
            m.mapUpdates.inc({ event: type, outcome });
            const stage = evt.payload.pipelineStageId;
            if (outcome === 'updated' && stage) {
              const cache = await cachedPipelines(ctx.db, evt.payload.locationId);
              if (!cache?.pipelines.some((p) => p.stages.some((s) => s.id === stage)))
                await refreshPipelines(runtime, evt.payload.locationId).catch((e: unknown) =>
                  log.warn(
                    { err: e, locationId: evt.payload.locationId },
                    'pipelines: refresh after an unknown stage failed',
                  ),
                );
            }
          },
          { name: `pipelines.map:${type}` },
        );

      const service: PipelinesService = {
        setTrigger: (locationId, name, url) => setTrigger(ctx.db, ring, locationId, name, url),
        listTriggers: (locationId) => listTriggers(ctx.db, locationId),
        deleteTrigger: (locationId, name) => deleteTrigger(ctx.db, locationId, name),
        triggerRequests: (f) => listTriggerRequests(ctx.db, f),
        mappings: (f) => listMappings(ctx.db, f),
        pipelines: async (locationId, o = {}) =>
          (
            (!o.refresh ? await cachedPipelines(ctx.db, locationId) : undefined) ??
            (await refreshPipelines(runtime, locationId))
          ).pipelines,
        mapping: (locationId, externalId) => getMapping(ctx.db, locationId, { externalId }),
      };
      ctx.services.provide('pipelines', service);
    },
    async routes(app, ctx) {
      await registerPublicRoutes(app, {
        pipelines: rt!,
        keys: ctx.services.get('apiKeys'),
        locations: ctx.services.find('knownLocations'),
        triggerMaxAttempts: maxAttempts,
        metrics,
      });
    },
    async adminRoutes(admin, ctx) {
      await registerTriggerAdminRoutes(admin, ctx.services.get('pipelines'));
    },
  };
}

export type { TriggerView as TriggerConfigView };
