import { sql, type Selectable } from 'kysely';
import { z } from 'zod';
import type { Db } from '../../infra/db/index.js';
import { defineJob, PermanentJobError, type DbOrTrx } from '../../infra/queue/index.js';
import type { GhlClient } from '../../platform/ghl/client.js';
import { GhlApiError } from '../../platform/ghl/errors.js';
import type * as T from '../../platform/ghl/types.js';
import { locationKey } from '../../platform/keys.js';
import type { PipelineMetrics } from './metrics.js';
import type {
  CachedPipeline,
  DealStatus,
  OpportunityMapTable,
  OpState,
  StatusRequest,
  UpsertRequest,
} from './tables.js';

/**
 * Pipeline bridging: pipelines/stages cached per location and addressed by name; opportunities upserted by an
 * external deal id kept in `opportunity_map`; opportunity webhooks keep the map current.
 */
export const JOB_OPPORTUNITY = 'pipelines.opportunity';
export const DEAL_STATUSES = ['open', 'won', 'lost', 'abandoned'] as const;

// ---------------------------------------------------------------------------------------------------------------
// Pipeline cache

export interface PipelineRuntime {
  db: Db;
  ghl: () => GhlClient;
  /** An unknown name refreshes the cache at most this often per location (bad names must not hammer GHL). */
  refreshMinMs: number;
  /** GHL rate-limit wait allowed inside an HTTP request before answering 503. */
  maxWaitMs: number;
}

export async function cachedPipelines(
  db: Db,
  locationId: string,
): Promise<{ pipelines: CachedPipeline[]; fetchedAt: Date } | undefined> {
  const r = await db.selectFrom('pipeline_cache').selectAll().where('location_id', '=', locationId).executeTakeFirst();
  return r ? { pipelines: r.pipelines, fetchedAt: r.fetched_at } : undefined;
}

/** Reads the location's pipelines from GHL (live lane) and stores them. */
export async function refreshPipelines(
  rt: PipelineRuntime,
  locationId: string,
  signal?: AbortSignal,
): Promise<{ pipelines: CachedPipeline[]; fetchedAt: Date }> {
  const r = await rt.ghl().opportunities.pipelines(locationId, {
    installation: { locationId },
    lane: 'live',
    maxWaitMs: rt.maxWaitMs,
    ...(signal ? { signal } : {}),
  });
  const pipelines: CachedPipeline[] = (r.pipelines ?? [])
    .filter((p): p is T.Pipeline & { id: string } => typeof p.id === 'string')
    .map((p) => ({
      id: p.id,
      name: p.name ?? '',
      stages: (p.stages ?? [])
        .filter((s): s is T.PipelineStage & { id: string } => typeof s.id === 'string')
        .map((s) => ({ id: s.id, name: s.name ?? '' })),
    }));
  const row = await rt.db
    .insertInto('pipeline_cache')
    .values({ location_id: locationId, pipelines: JSON.stringify(pipelines) })
    .onConflict((oc) =>
      oc.column('location_id').doUpdateSet({ pipelines: JSON.stringify(pipelines), fetched_at: sql<Date>`now()` }),
    )
    .returning('fetched_at')
    .executeTakeFirstOrThrow();
  return { pipelines, fetchedAt: row.fetched_at };
}

const norm = (s: string) => s.trim().toLowerCase();

/** Exact name first, then case-insensitive; undefined when none (or the case-insensitive match is ambiguous). */
function byName<X extends { name: string }>(xs: readonly X[], name: string): X | undefined {
  const exact = xs.filter((x) => x.name === name);
  if (exact.length === 1) return exact[0];
  const loose = xs.filter((x) => norm(x.name) === norm(name));
  return loose.length === 1 ? loose[0] : undefined;
}

/** A name that matches nothing (422 at the edge): the field, and what would have been valid. */
export class UnknownNameError extends Error {
  constructor(
    readonly field: 'pipeline' | 'stage',
    readonly value: string,
    readonly valid: string[],
    context = '',
  ) {
    super(
      `${field}: no ${field} named "${value}"${context}; valid ${field === 'pipeline' ? 'pipelines' : 'stages'}: ${
        valid.length ? valid.map((v) => `"${v}"`).join(', ') : '(none)'
      }`,
    );
    this.name = 'UnknownNameError';
  }
}

/**
 * Resolves pipeline and stage names to GHL ids, from the cache; a name the cache does not know refreshes it once
 * (at most every refreshMinMs), then fails naming the field and listing the valid names.
 */
export async function resolveNames(
  rt: PipelineRuntime,
  locationId: string,
  want: { pipeline?: string | undefined; pipelineId?: string | undefined; stage?: string | undefined },
): Promise<{ pipelineId?: string; pipelineStageId?: string }> {
  if (want.pipeline === undefined && want.stage === undefined) return {};
  let cache = await cachedPipelines(rt.db, locationId);
  const attempt = (pipelines: CachedPipeline[]) => {
    let p: CachedPipeline | undefined;
    if (want.pipeline !== undefined) {
      p = byName(pipelines, want.pipeline);
      if (!p)
        return new UnknownNameError(
          'pipeline',
          want.pipeline,
          pipelines.map((x) => x.name),
        );
    } else if (want.pipelineId !== undefined) p = pipelines.find((x) => x.id === want.pipelineId);
    if (want.stage === undefined) return { pipelineId: p!.id };
    if (!p) return new UnknownNameError('stage', want.stage, [], " (the opportunity's pipeline is unknown)");
    const s = byName(p.stages, want.stage);
    if (!s)
      return new UnknownNameError(
        'stage',
        want.stage,
        p.stages.map((x) => x.name),
        ` in pipeline "${p.name}"`,
      );
    return { pipelineId: p.id, pipelineStageId: s.id };
  };
  let r = cache ? attempt(cache.pipelines) : undefined;
  const stale = !cache || Date.now() - cache.fetchedAt.getTime() >= rt.refreshMinMs;
  if ((r === undefined || r instanceof UnknownNameError) && stale) {
    cache = await refreshPipelines(rt, locationId);
    r = attempt(cache.pipelines);
  }
  if (r === undefined) throw new UnknownNameError('pipeline', want.pipeline ?? '', []);
  if (r instanceof UnknownNameError) throw r;
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// The map and the operations

export interface MappingView {
  locationId: string;
  externalId: string;
  opportunityId: string;
  contactId: string | null;
  name: string | null;
  pipelineId: string | null;
  pipelineName: string | null;
  stageId: string | null;
  stageName: string | null;
  status: string | null;
  monetaryValue: number | null;
  assignedTo: string | null;
  updatedAt: Date;
}

export async function getMapping(
  db: Db,
  locationId: string,
  by: { externalId: string } | { opportunityId: string },
): Promise<MappingView | undefined> {
  let q = db.selectFrom('opportunity_map').selectAll().where('location_id', '=', locationId);
  q =
    'externalId' in by ? q.where('external_id', '=', by.externalId) : q.where('opportunity_id', '=', by.opportunityId);
  const r = await q.executeTakeFirst();
  if (!r) return undefined;
  return mappingView(r, await cachedPipelines(db, locationId));
}

/** A map row with its pipeline and stage names from the location's cached pipelines. */
function mappingView(
  r: Selectable<OpportunityMapTable>,
  cache: Awaited<ReturnType<typeof cachedPipelines>>,
): MappingView {
  const p = cache?.pipelines.find((x) => x.id === r.pipeline_id);
  const s = p?.stages.find((x) => x.id === r.pipeline_stage_id);
  return {
    locationId: r.location_id,
    externalId: r.external_id,
    opportunityId: r.opportunity_id,
    contactId: r.contact_id,
    name: r.name,
    pipelineId: r.pipeline_id,
    pipelineName: p?.name ?? null,
    stageId: r.pipeline_stage_id,
    stageName: s?.name ?? null,
    status: r.status,
    monetaryValue: r.monetary_value,
    assignedTo: r.assigned_to,
    updatedAt: r.updated_at,
  };
}

/** Map rows, most recently changed first, with pipeline and stage names from the cache (console, admin API). */
export async function listMappings(
  db: Db,
  f: { locationId?: string | undefined; limit?: number },
): Promise<MappingView[]> {
  let q = db
    .selectFrom('opportunity_map')
    .selectAll()
    .orderBy('updated_at', 'desc')
    .limit(f.limit ?? 100);
  if (f.locationId) q = q.where('location_id', '=', f.locationId);
  const rows = await q.execute();
  const caches = new Map<string, Awaited<ReturnType<typeof cachedPipelines>>>();
  for (const loc of new Set(rows.map((r) => r.location_id))) caches.set(loc, await cachedPipelines(db, loc));
  return rows.map((r) => mappingView(r, caches.get(r.location_id)));
}

export interface OperationView {
  id: number;
  locationId: string;
  externalId: string;
  kind: 'upsert' | 'status';
  state: OpState;
  opportunityId: string | null;
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export async function getOperation(db: Db, locationId: string, id: number): Promise<OperationView | undefined> {
  const r = await db
    .selectFrom('opportunity_ops')
    .selectAll()
    .where('id', '=', id)
    .where('location_id', '=', locationId)
    .executeTakeFirst();
  return r
    ? {
        id: r.id,
        locationId: r.location_id,
        externalId: r.external_id,
        kind: r.kind,
        state: r.state,
        opportunityId: r.opportunity_id,
        error: r.error,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      }
    : undefined;
}

/** The pipeline the deal is in (map) or was last asked to be in (a pending upsert): for a stage-only move. */
export async function currentPipelineId(db: Db, locationId: string, externalId: string): Promise<string | undefined> {
  const m = await db
    .selectFrom('opportunity_map')
    .select('pipeline_id')
    .where('location_id', '=', locationId)
    .where('external_id', '=', externalId)
    .executeTakeFirst();
  if (m?.pipeline_id) return m.pipeline_id;
  const ops = await db
    .selectFrom('opportunity_ops')
    .select('request')
    .where('location_id', '=', locationId)
    .where('external_id', '=', externalId)
    .where('kind', '=', 'upsert')
    .where('state', '!=', 'failed')
    .orderBy('id', 'desc')
    .execute();
  for (const o of ops) {
    const id = (o.request as UpsertRequest).pipelineId;
    if (id) return id;
  }
  return undefined;
}

export async function knownDeal(db: Db, locationId: string, externalId: string): Promise<boolean> {
  const m = await db
    .selectFrom('opportunity_map')
    .select('external_id')
    .where('location_id', '=', locationId)
    .where('external_id', '=', externalId)
    .executeTakeFirst();
  if (m) return true;
  const op = await db
    .selectFrom('opportunity_ops')
    .select('id')
    .where('location_id', '=', locationId)
    .where('external_id', '=', externalId)
    .where('kind', '=', 'upsert')
    .where('state', '=', 'pending')
    .executeTakeFirst();
  return !!op;
}

/** Stores an operation and enqueues its job in one transaction. */
export async function acceptOperation(
  db: Db,
  locationId: string,
  externalId: string,
  kind: 'upsert' | 'status',
  request: UpsertRequest | StatusRequest,
): Promise<OperationView> {
  const id = await db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('opportunity_ops')
      .values({ location_id: locationId, external_id: externalId, kind, request: JSON.stringify(request) })
      .returning('id')
      .executeTakeFirstOrThrow();
    await opportunityJob.enqueue(trx, { opId: row.id, locationId, externalId });
    return row.id;
  });
  return (await getOperation(db, locationId, id))!;
}

// ---------------------------------------------------------------------------------------------------------------
// The job

export interface OpportunityRuntime {
  db: Db;
  ghl: () => GhlClient;
  metrics?: PipelineMetrics | undefined;
}

const call = (locationId: string, signal: AbortSignal) => ({
  installation: { locationId },
  lane: 'live' as const,
  signal,
  maxWaitMs: 2000,
});

type GhlOpp = T.Opportunity;

/** Writes what GHL reported about an opportunity into the map row of `externalId` (insert or update). */
async function storeMapping(db: DbOrTrx, locationId: string, externalId: string, o: GhlOpp & { id: string }) {
  const values = {
    opportunity_id: o.id,
    contact_id: o.contactId ?? null,
    name: o.name ?? null,
    pipeline_id: o.pipelineId ?? null,
    pipeline_stage_id: o.pipelineStageId ?? null,
    status: o.status ?? null,
    monetary_value: typeof o.monetaryValue === 'number' ? o.monetaryValue : null,
    assigned_to: o.assignedTo ?? null,
  };
  // An older mapping to the same GHL opportunity under another external id is released first (unique index).
  await db
    .deleteFrom('opportunity_map')
    .where('location_id', '=', locationId)
    .where('opportunity_id', '=', o.id)
    .where('external_id', '!=', externalId)
    .execute();
  await db
    .insertInto('opportunity_map')
    .values({ location_id: locationId, external_id: externalId, ...values })
    .onConflict((oc) =>
      oc.columns(['location_id', 'external_id']).doUpdateSet({ ...values, updated_at: sql<Date>`now()` }),
    )
    .execute();
}

async function finish(
  db: Db,
  opId: number,
  state: OpState,
  o: { opportunityId?: string | null; error?: string | null },
  map?: { locationId: string; externalId: string; opp: GhlOpp & { id: string } },
) {
  await db.transaction().execute(async (trx) => {
    if (map) await storeMapping(trx, map.locationId, map.externalId, map.opp);
    await trx
      .updateTable('opportunity_ops')
      .set({
        state,
        opportunity_id: o.opportunityId ?? null,
        error: o.error ?? null,
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', opId)
      .execute();
  });
}

/** 4xx answers retrying cannot change (GHL validation, gone); 401/429 are the client's to handle. */
const refused = (e: unknown): e is GhlApiError =>
  e instanceof GhlApiError && e.status >= 400 && e.status < 500 && e.status !== 401 && e.status !== 429;

const mapRow = (db: Db, locationId: string, externalId: string) =>
  db
    .selectFrom('opportunity_map')
    .selectAll()
    .where('location_id', '=', locationId)
    .where('external_id', '=', externalId)
    .executeTakeFirst();

async function resolveContact(
  rt: OpportunityRuntime,
  locationId: string,
  c: UpsertRequest['contact'],
  signal: AbortSignal,
): Promise<string> {
  if (c.id) return c.id;
  const query: T.DuplicateContactQuery = { locationId };
  if (c.email) query.email = c.email;
  if (c.phone) query.number = c.phone;
  const r = await rt.ghl().contacts.findDuplicate(query, call(locationId, signal));
  const id = r.contact?.id;
  if (!id)
    throw new PermanentJobError(
      `contact: no GHL contact matches ${[c.email && `email ${c.email}`, c.phone && `phone ${c.phone}`].filter(Boolean).join(' or ')}`,
    );
  return id;
}

async function runUpsert(
  rt: OpportunityRuntime,
  op: { id: number; location_id: string; external_id: string; create_started_at: Date | null },
  req: UpsertRequest,
  signal: AbortSignal,
): Promise<void> {
  const ghl = rt.ghl();
  const loc = op.location_id;
  const map = await mapRow(rt.db, loc, op.external_id);
  const fields = {
    ...(req.name !== undefined ? { name: req.name } : {}),
    ...(req.pipelineId !== undefined ? { pipelineId: req.pipelineId } : {}),
    ...(req.pipelineStageId !== undefined ? { pipelineStageId: req.pipelineStageId } : {}),
    ...(req.status !== undefined ? { status: req.status } : {}),
    ...(req.monetaryValue !== undefined ? { monetaryValue: req.monetaryValue } : {}),
    ...(req.assignedTo !== undefined ? { assignedTo: req.assignedTo } : {}),
  };
  if (map) {
    try {
      const r = await ghl.opportunities.update(map.opportunity_id, fields, call(loc, signal));
      await done(rt.db, op, r, 'opportunities.update');
      const moved = req.pipelineStageId !== undefined && req.pipelineStageId !== map.pipeline_stage_id;
      rt.metrics?.operations.inc({ kind: 'upsert', outcome: moved ? 'moved' : 'updated' });
      return;
    } catch (e) {
      // Deleted in GHL meanwhile (and the OpportunityDelete webhook not yet applied): create it again below.
      const gone = e instanceof GhlApiError && (e.status === 404 || (e.status === 400 && /not found/i.test(e.message)));
      if (!gone) throw e;
      await rt.db
        .deleteFrom('opportunity_map')
        .where('location_id', '=', loc)
        .where('external_id', '=', op.external_id)
        .execute();
    }
  }
  if (!req.pipelineId)
    throw new PermanentJobError('pipeline: required to create the opportunity (it is not in GHL yet)');
  const contactId = await resolveContact(rt, loc, req.contact, signal);
  const name = req.name ?? op.external_id;
  const body: T.CreateOpportunityBody = {
    locationId: loc,
    pipelineId: req.pipelineId,
    name,
    status: req.status ?? 'open',
    contactId,
    ...(req.pipelineStageId !== undefined ? { pipelineStageId: req.pipelineStageId } : {}),
    ...(req.monetaryValue !== undefined ? { monetaryValue: req.monetaryValue } : {}),
    ...(req.assignedTo !== undefined ? { assignedTo: req.assignedTo } : {}),
  };
  // A create that may have happened (worker died after the call, or an ambiguous failure): look for it first.
  const find = async () => {
    const r = await ghl.opportunities.search(
      { location_id: loc, contact_id: contactId, pipeline_id: req.pipelineId, status: 'all', limit: 100 },
      call(loc, signal),
    );
    const hit = (r.opportunities ?? []).find(
      (o) =>
        o.name === name && o.createdAt && Date.parse(o.createdAt) >= (op.create_started_at?.getTime() ?? 0) - 60_000,
    );
    return hit?.id ? { opportunity: hit } : undefined;
  };
  let created: T.OpportunityResponse | undefined = op.create_started_at ? await find() : undefined;
  if (!created) {
    await rt.db
      .updateTable('opportunity_ops')
      .set({ create_started_at: sql<Date>`coalesce(create_started_at, now())` })
      .where('id', '=', op.id)
      .execute();
    created = await ghl.opportunities.create(body, { ...call(loc, signal), verify: find });
  }
  await done(rt.db, op, created, 'opportunities.create');
  rt.metrics?.operations.inc({ kind: 'upsert', outcome: 'created' });
}

/** The operation is done: the opportunity GHL answered goes into the map in the same transaction. */
async function done(
  db: Db,
  op: { id: number; location_id: string; external_id: string },
  r: T.OpportunityResponse,
  what: string,
): Promise<void> {
  const opp = r.opportunity;
  if (!opp?.id) throw new Error(`${what}: answer without the opportunity`);
  await finish(
    db,
    op.id,
    'done',
    { opportunityId: opp.id },
    { locationId: op.location_id, externalId: op.external_id, opp: { ...opp, id: opp.id } },
  );
}

async function runStatus(
  rt: OpportunityRuntime,
  op: { id: number; location_id: string; external_id: string },
  req: StatusRequest,
  signal: AbortSignal,
): Promise<void> {
  const loc = op.location_id;
  const map = await mapRow(rt.db, loc, op.external_id);
  if (!map) throw new PermanentJobError(`no GHL opportunity is mapped to external id ${op.external_id}`);
  const ghl = rt.ghl();
  await ghl.opportunities.updateStatus(
    map.opportunity_id,
    { status: req.status, ...(req.lostReasonId ? { lostReasonId: req.lostReasonId } : {}) },
    call(loc, signal),
  );
  const r = await ghl.opportunities.get(map.opportunity_id, call(loc, signal));
  const opp = r.opportunity?.id ? { ...r.opportunity, id: r.opportunity.id } : undefined;
  await finish(
    rt.db,
    op.id,
    'done',
    { opportunityId: map.opportunity_id },
    opp ? { locationId: loc, externalId: op.external_id, opp } : undefined,
  );
  rt.metrics?.operations.inc({ kind: 'status', outcome: req.status });
}

export const opportunityJob = defineJob<{ opId: number; locationId: string; externalId: string }, OpportunityRuntime>({
  kind: JOB_OPPORTUNITY,
  payload: z.object({ opId: z.number().int(), locationId: z.string(), externalId: z.string() }),
  // One deal's changes apply in the order they were accepted.
  orderingKey: (p) => `opp:${p.locationId}:${p.externalId}`,
  scope: (p) => locationKey(p.locationId),
  async perform({ opId }, job, { deps, signal }) {
    const op = await deps.db.selectFrom('opportunity_ops').selectAll().where('id', '=', opId).executeTakeFirst();
    if (!op || op.state === 'done') return;
    // A failed operation runs again only when an operator retried its job: pending again.
    if (op.state === 'failed')
      await deps.db
        .updateTable('opportunity_ops')
        .set({ state: 'pending', error: null, updated_at: sql<Date>`now()` })
        .where('id', '=', opId)
        .execute();
    try {
      if (op.kind === 'upsert') await runUpsert(deps, op, op.request as UpsertRequest, signal);
      else await runStatus(deps, op, op.request as StatusRequest, signal);
    } catch (e) {
      if (refused(e)) throw new PermanentJobError(`GHL refused the change: ${e.message}`);
      if (!(e instanceof PermanentJobError) && job.attempts < job.maxAttempts && !signal.aborted)
        deps.metrics?.operations.inc({ kind: op.kind, outcome: 'retried' });
      throw e;
    }
  },
  async onFailed({ opId }, _job, err, { db, deps }) {
    const r = await db
      .updateTable('opportunity_ops')
      .set({
        state: 'failed',
        error: (err instanceof Error ? err.message : String(err)).slice(0, 1000),
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', opId)
      .where('state', '=', 'pending')
      .returning('kind')
      .executeTakeFirst();
    if (r) deps.metrics?.operations.inc({ kind: r.kind, outcome: 'failed' });
  },
});

// ---------------------------------------------------------------------------------------------------------------
// Webhooks keep the map current

export const OPPORTUNITY_EVENTS = [
  'OpportunityCreate',
  'OpportunityUpdate',
  'OpportunityStageUpdate',
  'OpportunityStatusUpdate',
  'OpportunityMonetaryValueUpdate',
  'OpportunityAssignedToUpdate',
  'OpportunityDelete',
] as const;

export const opportunityEventSchema = z.looseObject({
  type: z.string(),
  locationId: z.string(),
  id: z.string(),
  contactId: z.string().nullish(),
  name: z.string().nullish(),
  pipelineId: z.string().nullish(),
  pipelineStageId: z.string().nullish(),
  status: z.string().nullish(),
  monetaryValue: z.number().nullish(),
  assignedTo: z.string().nullish(),
});
export type OpportunityEvent = z.infer<typeof opportunityEventSchema>;

/**
 * Applies an opportunity event to the mapped row (events about unmapped opportunities change nothing). GHL's payloads
 * carry no update time, so the row's `updated_at` orders them: an operation's result sets it to when it was written, an
 * applied event to when the event was received. An event received before the row's last write is stale (it was in
 * flight while the bridge changed the deal, or a later event was handled first) and changes nothing.
 */
export async function applyOpportunityEvent(
  db: Db,
  e: OpportunityEvent,
  receivedAt: Date = new Date(),
): Promise<'deleted' | 'updated' | 'unmapped' | 'stale'> {
  const where = db
    .selectFrom('opportunity_map')
    .select('external_id')
    .where('location_id', '=', e.locationId)
    .where('opportunity_id', '=', e.id);
  const row = await where.executeTakeFirst();
  if (!row) return 'unmapped';
  if (e.type === 'OpportunityDelete') {
    const d = await db
      .deleteFrom('opportunity_map')
      .where('location_id', '=', e.locationId)
      .where('opportunity_id', '=', e.id)
      .where('updated_at', '<=', receivedAt)
      .executeTakeFirst();
    return Number(d.numDeletedRows) ? 'deleted' : 'stale';
  }
  const set: Record<string, unknown> = {};
  if (e.contactId) set.contact_id = e.contactId;
  if (e.name) set.name = e.name;
  if (e.pipelineId) set.pipeline_id = e.pipelineId;
  if (e.pipelineStageId) set.pipeline_stage_id = e.pipelineStageId;
  if (e.status && (DEAL_STATUSES as readonly string[]).includes(e.status)) set.status = e.status as DealStatus;
  if (typeof e.monetaryValue === 'number') set.monetary_value = e.monetaryValue;
  if (e.assignedTo !== undefined) set.assigned_to = e.assignedTo ?? null;
  const u = await db
    .updateTable('opportunity_map')
    .set({ ...set, updated_at: receivedAt })
    .where('location_id', '=', e.locationId)
    .where('opportunity_id', '=', e.id)
    .where('updated_at', '<=', receivedAt)
    .executeTakeFirst();
  return Number(u.numUpdatedRows) ? 'updated' : 'stale';
}
