/**
 * Calls (issue 15): GHL workflow call webhooks and call app events → one enriched call record per call (recording
 * reference, transcript), the events call.completed / call.disposition, the call records API, and the Call
 * conversation provider (external telephony → GHL call logs). See the README section "Calls".
 *
 * Public API
 * - `callsModule(opts?)` → BridgeModule (after webhooks, installations and apikeys in src/modules.ts).
 *   Routes: POST /webhooks/workflow/:token; /v1/locations/:locationId/calls…, /call-events (API-key guarded);
 *   /admin/calls/* when ADMIN_API_KEY is set.
 * - service `calls: CallsService` — `endpoints` (workflow webhook URLs, rotation, mapping, integration type).
 */
import { createHmac } from 'node:crypto';
import { sql } from 'kysely';
import { Counter } from 'prom-client';
import type { BridgeModule } from '../../app.js';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import { webhooksService } from '../../platform/webhooks/index.js';
import { listRejected, registerCallsAdminRoutes, type RejectedEntry, type RejectedState } from './admin.js';
import { InboxBatcher } from './batcher.js';
import { registerCallRoutes, type ApiRuntime } from './api.js';
import { WorkflowEndpoints } from './endpoints.js';
import { callsMigration } from './migration.js';
import {
  enrichJob,
  isCallMessageEvent,
  processJob,
  storeInbox,
  type CallsRuntime,
  type CallsSettings,
} from './process.js';
import { providerPostJob, type ProviderRuntime } from './provider.js';
import { LinkSigner, recordingUrl, type CompletedSink } from './records.js';

export { WorkflowEndpoints, workflowUrl, WORKFLOW_PATH, maskToken } from './endpoints.js';
export { DEFAULT_MAPPING, mapPayload, fieldMappingSchema, type FieldMapping } from './mapping.js';
export { callsMigration } from './migration.js';
export { JOB_ENRICH, JOB_PROCESS, summariseCallMessage, type CallsSettings, type CallSummary } from './process.js';
export { JOB_PROVIDER_POST } from './provider.js';
export type { IntegrationType } from './tables.js';

export type { RejectedEntry, RejectedState } from './admin.js';

export interface CallsService {
  endpoints: WorkflowEndpoints;
  /** Payloads kept without making a call (unmappable, forged, failed), newest first, unmasked. */
  rejected(q: {
    state?: RejectedState | undefined;
    locationId?: string | undefined;
    before?: number | undefined;
    limit: number;
  }): Promise<{ entries: RejectedEntry[]; nextBefore: number | null }>;
}

declare module '../../app.js' {
  interface Services {
    /** Provided here. Needs `ghl` (installations) for GHL calls, `apiKeys` for the /v1 routes, `webhooks`. */
    calls: CallsService;
  }
}

export interface CallsModuleOptions {
  /** Overrides of the CALLS_* settings (tests, benchmark). */
  settings?: Partial<CallsSettings>;
}

export function callsModule(opts: CallsModuleOptions = {}): BridgeModule {
  let api: ApiRuntime | undefined;
  let rt: CallsRuntime | undefined;
  return {
    name: 'calls',
    migrations: { '0050_calls': callsMigration },
    init(ctx) {
      const c = ctx.config;
      const log = ctx.log.child({ component: 'calls' });
      const ring = loadKeyRing(c, log);
      const endpoints = new WorkflowEndpoints(ctx.db, ring, c.publicUrl, 1000, ctx.store.urgentDb);
      const apiCalls = new Counter({
        name: 'ghl_bridge_calls_api_calls_total',
        help: 'GHL API calls made for calls (confirmation, enrichment, recordings), by operation',
        labelNames: ['op'],
        registers: [ctx.metrics.registry],
      });
      const countCall = (op: string) => apiCalls.inc({ op });
      // Processed inbox entries are history once their call record holds what they said; unmappable, forged and
      // failed ones are kept for a person to look at. Call records and events are kept.
      if (c.DATA_RETENTION_DAYS > 0)
        ctx.maintain('prune processed call webhooks', 3600_000, async (signal) => {
          let total = 0;
          for (;;) {
            const r = await sql`
              delete from calls_inbox where id in (
                select id from calls_inbox
                where state = 'done' and received_at < now() - make_interval(days => ${c.DATA_RETENTION_DAYS})
                limit 5000)`.execute(ctx.db);
            const n = Number(r.numAffectedRows ?? 0);
            total += n;
            if (n < 5000 || signal.aborted) return total;
          }
        });
      const notify = () => ctx.queue.notify();
      // call.completed to the event subscriptions (issue 16) when that module runs and someone subscribes; the
      // outbox row commits with the completion, once per call (completeCall tells this only for the first one).
      const onCompleted: CompletedSink = async (trx, row) => {
        const bus = ctx.services.find('events');
        if (!bus?.active()) return;
        await bus.publish(trx, {
          type: 'call.completed',
          locationId: row.location_id,
          contactId: row.contact_id,
          data: {
            locationId: row.location_id,
            callId: String(Number(row.id)),
            contactId: row.contact_id,
            messageId: row.message_id,
            direction: row.direction === 'inbound' || row.direction === 'outbound' ? row.direction : null,
            status: row.status,
            durationSeconds: row.duration_sec,
            recordingUrl: recordingUrl(c.publicUrl, row),
            hasTranscript: row.transcript_state === 'ready',
          },
        });
      };
      rt = {
        db: ctx.db,
        log,
        ghl: () => ctx.services.get('ghl'),
        endpoints,
        settings: {
          transcriptWaitMs: c.CALLS_TRANSCRIPT_WAIT_MS,
          transcriptRetryBaseMs: c.CALLS_TRANSCRIPT_RETRY_BASE_MS,
          nearestWindow: 20,
          matchWindowMs: c.CALLS_MATCH_WINDOW_SEC * 1000,
          messageGraceMs: c.CALLS_MESSAGE_GRACE_MS,
          ...opts.settings,
        },
        notify,
        countCall,
        onCompleted,
      };
      const prov: ProviderRuntime = {
        ...rt,
        conversationProviderId: c.CALLS_CONVERSATION_PROVIDER_ID ?? c.GHL_CONVERSATION_PROVIDER_ID,
      };
      // GHL-calling kinds wait for the location's rate-limit slot: their own slots, a per-location cap.
      const waiting = {
        maxConcurrent: Math.max(1, c.WORKER_CONCURRENCY),
        ownSlots: true,
        maxPerScope: c.WORKER_LOCATION_CONCURRENCY,
      };
      ctx.queue.register(processJob, { ...waiting, deps: rt });
      ctx.queue.register(enrichJob, { ...waiting, deps: rt });
      ctx.queue.register(providerPostJob, { ...waiting, deps: prov });

      // Signed app events of call messages: normalised like workflow payloads (no confirmation needed).
      const webhooks = webhooksService(ctx);
      for (const type of ['InboundMessage', 'OutboundMessage'])
        webhooks.on(
          type,
          async (evt, h) => {
            const p = evt.payload;
            if (!isCallMessageEvent(p) || !evt.locationId || typeof p.messageId !== 'string') return;
            if (typeof p.contactId !== 'string' || !p.contactId) return;
            await h.db.transaction().execute((trx) =>
              storeInbox(trx, {
                locationId: evt.locationId!,
                source: 'app',
                payload: p,
                dedupeKey: `app:${p.messageId}:${type}`,
                contactId: p.contactId as string,
              }),
            );
            notify();
          },
          { name: `calls.${type}` },
        );

      const linkKey = createHmac('sha256', ring.keys.get(ring.primaryId)!)
        .update('ghl-bridge calls recording links')
        .digest();
      api = {
        db: ctx.db,
        inbox: new InboxBatcher(ctx.store.urgentDb),
        endpoints,
        signer: new LinkSigner(linkKey, c.CALLS_LINK_TTL_SEC),
        publicUrl: c.publicUrl,
        keys: ctx.services.get('apiKeys'),
        ghl: () => ctx.services.get('ghl'),
        notify,
        isKnownLocation: async (locationId) => {
          const known = ctx.services.find('knownLocations');
          return known ? known.isKnownLocation(locationId, null) : false;
        },
        countCall,
      };
      ctx.services.provide('calls', { endpoints, rejected: (q) => listRejected(ctx.db, q) });
    },
    routes(app) {
      registerCallRoutes(app, api!);
    },
    async adminRoutes(admin) {
      await registerCallsAdminRoutes(admin, { db: rt!.db, endpoints: rt!.endpoints });
    },
  };
}
