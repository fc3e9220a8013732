/**
 * Contact import (issue 14, part B): a location's GHL contacts walked into staging with a checkpoint per page,
 * duplicate detection (same e-mail, same E.164 phone, near-identical name + company) and review (approve, reject,
 * merge into; export of the approved rows). See the README section "Contact import".
 *
 * Public API
 * - `importsModule(opts?)` → BridgeModule (after chat in src/modules.ts). Routes: /v1/locations/:locationId/imports…,
 *   guarded by the API-key service (`apiKeys`).
 * - service `imports: ImportsService`.
 * - optional hooks read at run time: `contactMapping` (the contacts module: custom fields → logical fields) and
 *   `importMappedContacts` (the contact map: duplicates against already-mapped contacts).
 */
import { Counter, Gauge } from 'prom-client';
import type { AppContext, BridgeModule } from '../../app.js';
import '../events/index.js';
import '../../platform/installations/index.js';
import {
  cancelImport,
  dedupeJob,
  enrichJob,
  getImport,
  latestPerLocation,
  pageJob,
  progressOf,
  resumeImport,
  startImport,
  type ImportProgress,
  type ImportRuntime,
  type MappedContactsLookup,
} from './core.js';
import { DEDUPE_DEFAULTS, type DedupeSettings } from './dedupe.js';
import { importsMigration } from './migration.js';
import { registerImportRoutes } from './routes.js';

export { JOB_IMPORT_DEDUPE, JOB_IMPORT_PAGE, MAX_PAGE_SIZE } from './core.js';
export type { ImportContactMapping, ImportProgress, MappedContactsLookup } from './core.js';
export { detectDuplicates, nameCompanyScore, similarity, type DedupeSettings } from './dedupe.js';
export { matchKeys } from './normalize.js';

export interface ImportsService {
  start(locationId: string, o?: { pageSize?: number }): Promise<ImportProgress>;
  get(locationId: string, importId: string): Promise<ImportProgress>;
  cancel(locationId: string, importId: string): Promise<ImportProgress>;
  resume(locationId: string, importId: string): Promise<ImportProgress>;
}

declare module '../../app.js' {
  interface Services {
    /** Provided by the imports module. */
    imports: ImportsService;
    /**
     * Filled by the module owning the contact map (not this one): which GHL contacts are already mapped. Absent,
     * duplicates are detected within an import only.
     */
    importMappedContacts: MappedContactsLookup;
  }
}

export interface ImportsModuleOptions {
  dedupe?: Partial<DedupeSettings>;
}

export function importsModule(opts: ImportsModuleOptions = {}): BridgeModule {
  let rt: ImportRuntime | undefined;
  return {
    name: 'imports',
    migrations: { '0065_imports': importsMigration },
    init(ctx: AppContext) {
      const c = ctx.config;
      const staged = new Counter({
        name: 'ghl_bridge_import_rows_staged_total',
        help: 'Contacts staged by imports (GHL → staging), by location',
        labelNames: ['location'],
        registers: [ctx.metrics.registry],
      });
      const runtime: ImportRuntime = {
        db: ctx.db,
        log: ctx.log.child({ component: 'imports' }),
        ghl: () => ctx.services.get('ghl'),
        mapping: () => ctx.services.find('contactMapping'),
        mapped: () => ctx.services.find('importMappedContacts'),
        events: () => {
          const e = ctx.services.find('events');
          return e?.active() ? e : undefined;
        },
        notify: () => ctx.queue.notify(),
        phoneRegion: c.IMPORT_PHONE_REGION,
        defaultPageSize: c.IMPORT_PAGE_SIZE,
        dedupe: { ...DEDUPE_DEFAULTS, ...opts.dedupe },
        staged,
      };
      rt = runtime;
      ctx.queue.register(pageJob, { deps: runtime });
      ctx.queue.register(dedupeJob, { deps: runtime });
      ctx.queue.register(enrichJob, { deps: runtime });

      // Progress of each location's latest import, read from the store at scrape time (every replica reports the same).
      const gauges = {
        pages: ['ghl_bridge_import_pages_done', 'Pages staged by the latest import of the location'],
        rows: ['ghl_bridge_import_rows_done', 'Contacts staged by the latest import of the location'],
        total: ['ghl_bridge_import_rows_total', 'Contacts GHL reported for the latest import of the location'],
        rate: ['ghl_bridge_import_rows_per_second', 'Staging rate of the latest import of the location (current run)'],
        eta: ['ghl_bridge_import_eta_seconds', 'Seconds until the latest import of the location has staged every row'],
        running: [
          'ghl_bridge_import_running',
          '1 while the latest import of the location is running, deduplicating or enriching',
        ],
      } as const;
      const made = Object.fromEntries(
        Object.entries(gauges).map(([k, [name, help]]) => [
          k,
          new Gauge({
            name,
            help,
            labelNames: ['location'],
            registers: [ctx.metrics.registry],
            collect: () => refresh(),
          }),
        ]),
      ) as Record<keyof typeof gauges, Gauge<'location'>>;
      // One read per scrape, shared by the gauges (prom-client collects them concurrently).
      let reading: Promise<void> | undefined;
      const refresh = () =>
        (reading ??= (async () => {
          const rows = await latestPerLocation(ctx.db);
          for (const g of Object.values(made)) g.reset();
          const now = Date.now();
          for (const r of rows) {
            const p = progressOf(r, now);
            const location = r.location_id;
            made.pages.set({ location }, p.pagesDone);
            made.rows.set({ location }, p.rowsDone);
            if (p.total !== null) made.total.set({ location }, p.total);
            made.rate.set({ location }, p.status === 'running' ? p.rowsPerSecond : 0);
            if (p.etaSeconds !== null) made.eta.set({ location }, p.etaSeconds);
            made.running.set(
              { location },
              p.status === 'running' || p.status === 'deduplicating' || p.status === 'enriching' ? 1 : 0,
            );
          }
        })().finally(() => {
          reading = undefined;
        }));
      const view = async (p: Promise<Parameters<typeof progressOf>[0]>) => progressOf(await p);
      ctx.services.provide('imports', {
        start: (l, o) => view(startImport(runtime, l, o)),
        get: (l, i) => view(getImport(runtime, l, i)),
        cancel: (l, i) => view(cancelImport(runtime, l, i)),
        resume: (l, i) => view(resumeImport(runtime, l, i)),
      });
    },
    routes(app, ctx) {
      registerImportRoutes(app, ctx, rt!);
    },
  };
}
