/**
 * Contact push (issue 14 part A): batches of up to 1,000 records into GHL contacts, with a per-location custom-field
 * mapping (logical names → that location's field ids), an external id ↔ contact map, content hashes (an unchanged
 * record costs no GHL call), conflicts reported instead of overwritten, and a sync status per location. See the
 * README section "Contact sync (push)".
 *
 * Public API
 * - `contactsModule(opts?)` → BridgeModule (after chat in src/modules.ts). Routes: /v1/locations/:locationId/contacts/*
 *   (batches, map, sync-status, mapping, settings), guarded by the API-key service (`apiKeys`).
 * - service `contacts: ContactsService` — `syncStatus(locationId?)` (the console overview reads it), `mapping(loc)`.
 * - store-level functions for the CLI: declareField, removeField, getMapping, syncStatus, refreshJob.
 */
import { sql } from 'kysely';
import { Counter, Gauge } from 'prom-client';
import type { AppContext, BridgeModule } from '../../app.js';
import { webhooksService } from '../../platform/webhooks/index.js';
import { getMapping, type Mapping } from './fields.js';
import { contactsMigration } from './migration.js';
import { pushJob, refreshJob, type ContactsRuntime } from './push.js';
import { registerContactRoutes } from './routes.js';
import { syncStatus, type SyncStatusRecord } from './status.js';

export {
  checkDeclaration,
  declareField,
  removeField,
  getMapping,
  setLocationSettings,
  checkValue,
  MappingInputError,
  DATA_TYPES,
  PUSHABLE_TYPES,
  LOGICAL_NAME,
  type FieldDeclaration,
  type Mapping,
  type MappedField,
} from './fields.js';
export { syncStatus, type SyncStatusRecord } from './status.js';
export { refreshJob, pushJob, JOB_CONTACTS_PUSH, JOB_CONTACTS_REFRESH, MAX_BATCH, fieldsHash } from './push.js';
export { contactsMigration } from './migration.js';
import type { ImportContactMapping } from '../imports/index.js';

export interface ContactsService {
  /** Sync status of one location, or of every location that has pushed (the console overview reads this). */
  syncStatus(locationId?: string): Promise<SyncStatusRecord[]>;
  /** The cached field mapping of a location. */
  mapping(locationId: string): Promise<Mapping>;
}

declare module '../../app.js' {
  interface Services {
    /** Provided by the contacts module. */
    contacts: ContactsService;
    /** Provided by the contacts module: GHL custom field values → this location's logical fields. */
    contactMapping: ImportContactMapping;
  }
}

export interface ContactsModuleOptions {
  /** Region for national phone numbers when neither the location setting nor its GHL country is known. */
  defaultRegion?: string;
}

export function contactsModule(opts: ContactsModuleOptions = {}): BridgeModule {
  let rt: ContactsRuntime | undefined;
  return {
    name: 'contacts',
    migrations: { '0060_contacts': contactsMigration },
    init(ctx: AppContext) {
      const c = ctx.config;
      const log = ctx.log.child({ component: 'contacts' });
      const reg = [ctx.metrics.registry];
      const outcomes = new Counter({
        name: 'ghl_bridge_contacts_pushed_total',
        help: 'Pushed contact records by outcome (created, updated, unchanged, conflict, failed)',
        labelNames: ['outcome'],
        registers: reg,
      });
      const apiCalls = new Counter({
        name: 'ghl_bridge_contacts_api_calls_total',
        help: 'GHL API calls made by the contact push, by operation',
        labelNames: ['op'],
        registers: reg,
      });
      const db = ctx.db;
      new Gauge({
        name: 'ghl_bridge_contacts_last_sync_timestamp_seconds',
        help: 'When the last contact push batch of a location finished (Unix seconds)',
        labelNames: ['location'],
        registers: reg,
        async collect() {
          const rows = await syncStatus(db);
          this.reset();
          for (const r of rows) if (r.lastSyncAt) this.set({ location: r.locationId }, r.lastSyncAt.getTime() / 1000);
        },
      });
      new Gauge({
        name: 'ghl_bridge_contacts_sync_status',
        help: 'Status of the last contact push batch per location: 1 for the current status (success, partial, failed)',
        labelNames: ['location', 'status'],
        registers: reg,
        async collect() {
          const rows = await syncStatus(db);
          this.reset();
          for (const r of rows)
            for (const s of ['success', 'partial', 'failed'] as const)
              if (r.status) this.set({ location: r.locationId, status: s }, r.status === s ? 1 : 0);
        },
      });
      new Gauge({
        name: 'ghl_bridge_contacts_last_sync_records',
        help: 'Records of the last finished contact push batch per location, by outcome',
        labelNames: ['location', 'outcome'],
        registers: reg,
        async collect() {
          const rows = await syncStatus(db);
          this.reset();
          for (const r of rows)
            if (r.counts)
              for (const [k, v] of Object.entries(r.counts)) this.set({ location: r.locationId, outcome: k }, v);
        },
      });
      new Gauge({
        name: 'ghl_bridge_contacts_pending_records',
        help: 'Pushed contact records not yet written to GHL, per location',
        labelNames: ['location'],
        registers: reg,
        async collect() {
          const rows = await syncStatus(db);
          this.reset();
          for (const r of rows) this.set({ location: r.locationId }, r.pendingRecords);
        },
      });
      // Finished batches (and their per-record results) follow DATA_RETENTION_DAYS; the map and sync status are kept.
      if (c.DATA_RETENTION_DAYS > 0)
        ctx.maintain('prune contact push batches', 3600_000, async (signal) => {
          let total = 0;
          while (!signal.aborted) {
            const r = await sql`
              delete from contacts_batches where id in (
                select id from contacts_batches
                where completed_at < now() - make_interval(days => ${c.DATA_RETENTION_DAYS})
                limit 500)`.execute(ctx.db);
            const n = Number(r.numAffectedRows ?? 0);
            total += n;
            if (n < 500) break;
          }
          return total;
        });
      const runtime: ContactsRuntime = {
        db,
        log,
        ghl: () => ctx.services.get('ghl'),
        defaultRegion: (opts.defaultRegion ?? c.CONTACTS_DEFAULT_REGION).toUpperCase(),
        bus: () => {
          const e = ctx.services.find('events');
          return e?.active() ? e : undefined;
        },
        notify: () => ctx.queue.notify(),
        metrics: { outcomes, apiCalls },
      };
      rt = runtime;
      // GHL-calling kinds wait for the location's rate-limit slot: their own slots, a per-location cap. A push job spends
      // nearly all its time waiting for the bulk lane, so there is room for every location's cap: with only
      // WORKER_CONCURRENCY slots, spread at random over the locations, about half of the locations had no job waiting
      // at any moment and half the API budget went unused (bench:contacts, 10 locations: 50 %).
      const waiting = {
        maxConcurrent: Math.max(1, c.WORKER_CONCURRENCY) * c.WORKER_LOCATION_CONCURRENCY,
        ownSlots: true,
        maxPerScope: c.WORKER_LOCATION_CONCURRENCY,
      };
      ctx.queue.register(pushJob, { ...waiting, deps: runtime });
      ctx.queue.register(refreshJob, { deps: runtime });

      // A contact deleted in GHL is no longer mapped: the next push of its external id matches (or creates) again.
      webhooksService(ctx).on(
        'ContactDelete',
        async (evt) => {
          const id = evt.payload.id ?? evt.payload.contactId;
          if (typeof id !== 'string' || !id || !evt.locationId) return;
          await ctx.db
            .deleteFrom('contacts_map')
            .where('location_id', '=', evt.locationId)
            .where('contact_id', '=', id)
            .execute();
        },
        { name: 'contacts.unmap-deleted' },
      );

      ctx.services.provide('contacts', {
        syncStatus: (locationId) => syncStatus(db, locationId),
        mapping: (locationId) => getMapping(db, locationId, runtime.defaultRegion),
      });
      // For the imports module: staged GHL records get this location's logical fields, and duplicate review sees
      // which GHL contacts are already mapped to an external id.
      const fieldIds = new Map<string, { at: number; byId: Map<string, string> }>();
      ctx.services.provide('contactMapping', {
        async toLogical(locationId, customFields) {
          if (!customFields.length) return {};
          // An import asks once per contact, 500 per page: the location's field ids are read at most every 5 s.
          let hit = fieldIds.get(locationId);
          if (!hit || Date.now() - hit.at > 5000) {
            const rows = await db
              .selectFrom('contacts_fields')
              .select(['logical', 'ghl_field_id'])
              .where('location_id', '=', locationId)
              .where('ghl_field_id', 'is not', null)
              .execute();
            hit = { at: Date.now(), byId: new Map(rows.map((r) => [r.ghl_field_id!, r.logical])) };
            fieldIds.set(locationId, hit);
          }
          const byId = hit.byId;
          const out: Record<string, unknown> = {};
          for (const f of customFields) {
            const logical = byId.get(f.id);
            if (logical !== undefined) out[logical] = f.value;
          }
          return out;
        },
      });
      ctx.services.provide('importMappedContacts', {
        async externalIds(locationId, ghlContactIds) {
          const out = new Map<string, string>();
          for (let i = 0; i < ghlContactIds.length; i += 1000) {
            const rows = await db
              .selectFrom('contacts_map')
              .select(['contact_id', 'external_id'])
              .where('location_id', '=', locationId)
              .where('contact_id', 'in', ghlContactIds.slice(i, i + 1000))
              .execute();
            for (const r of rows) out.set(r.contact_id, r.external_id);
          }
          return out;
        },
      });
    },
    routes(app, ctx) {
      registerContactRoutes(app, ctx, rt!);
    },
  };
}
