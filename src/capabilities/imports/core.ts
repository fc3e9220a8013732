import { randomBytes } from 'node:crypto';
import { sql, type Insertable, type Selectable } from 'kysely';
import type { Counter } from 'prom-client';
import { z } from 'zod';
import type { Db } from '../../infra/db/index.js';
import type { Logger } from '../../infra/log/logger.js';
import { defineJob, PRIORITY, type JobContext } from '../../infra/queue/index.js';
import type { GhlClient } from '../../platform/ghl/client.js';
import { locationKey } from '../../platform/keys.js';
import { summariseCallMessage, type CallSummary } from '../calls/index.js';
import type { EventsService } from '../events/index.js';
import { detectDuplicates, type DedupeSettings } from './dedupe.js';
import { matchKeys } from './normalize.js';
import type { ContactImportRowsTable, ContactImportsTable, ImportStatus } from './tables.js';
import './tables.js';

export const JOB_IMPORT_PAGE = 'import.page';
export const JOB_IMPORT_DEDUPE = 'import.dedupe';
export const JOB_IMPORT_ENRICH = 'import.enrich';
/** GHL's largest page of POST /contacts/search. */
export const MAX_PAGE_SIZE = 500;

/**
 * The contacts module's per-location custom-field mapping, as this module uses it: GHL custom field values → logical
 * fields. Published by the contacts module as `contactMapping`; absent, staged rows get `{}` as their logical fields.
 */
export interface ImportContactMapping {
  toLogical(locationId: string, customFields: { id: string; value: unknown }[]): Promise<Record<string, unknown>>;
}

/**
 * Hook for duplicates against already-mapped contacts: which of these GHL contacts the bridge's contact map already
 * holds, with their external ids. Provided as the `importMappedContacts` service by the module owning that map (the
 * contacts module, or the composition root); absent, duplicates are detected within the import only.
 */
export interface MappedContactsLookup {
  externalIds(locationId: string, ghlContactIds: string[]): Promise<Map<string, string>>;
}

export interface ImportRuntime {
  db: Db;
  log: Logger;
  ghl: () => GhlClient;
  mapping: () => ImportContactMapping | undefined;
  mapped: () => MappedContactsLookup | undefined;
  /** The events service when a subscription may receive events, else undefined. */
  events: () => EventsService | undefined;
  notify: () => void;
  phoneRegion: string;
  defaultPageSize: number;
  dedupe: DedupeSettings;
  staged: Counter<'location'>;
}

export type ImportRow = Selectable<ContactImportsTable>;

export class ImportStateError extends Error {
  constructor(
    message: string,
    readonly status: 404 | 409,
    readonly path: string,
  ) {
    super(message);
  }
}

const newImportId = () => `imp_${randomBytes(12).toString('base64url')}`;

const importKey = (importId: string) => `import:${importId}`;

const pagePayload = z.object({
  importId: z.string().min(1),
  locationId: z.string().min(1),
  /** Pages committed before this one: the job is a no-op unless the import is still exactly there. */
  page: z.number().int().nonnegative(),
});
const dedupePayload = z.object({ importId: z.string().min(1), locationId: z.string().min(1) });

async function publishEnded(
  rt: ImportRuntime,
  trx: Db,
  imp: Pick<ImportRow, 'id' | 'location_id' | 'rows_done' | 'duplicate_groups'>,
  status: 'completed' | 'failed' | 'cancelled',
  error: string | null,
): Promise<boolean> {
  const ev = rt.events();
  if (!ev) return false;
  await ev.publish(trx, {
    type: 'import.completed',
    locationId: imp.location_id,
    data: {
      locationId: imp.location_id,
      importId: imp.id,
      status,
      rows: imp.rows_done,
      duplicateGroups: imp.duplicate_groups,
      error,
    },
  });
  return true;
}

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 1000);

/**
 * One run of `import.page` walks pages for up to this long, then hands the walk over to a new job: the worker slot is
 * given back now and then, and a deploy's shutdown finds a short run to wait for.
 */
const WALK_RUN_MS = 2000;

/**
 * `import.page`: walks the location's contacts with POST /contacts/search on the bulk lane, from the import's
 * checkpoint on (`page` in the payload is where the walk stood when the job was queued). Each page is staged with its
 * checkpoint in one transaction, and the next page is fetched while this one is staged, so the walk keeps up with
 * the bulk lane's pace instead of adding the staging time to every page. A crash or a cancel wastes at most that one
 * prefetched page: it is never staged, and the next run reads it again from the committed cursor.
 */
export const pageJob = defineJob<z.infer<typeof pagePayload>, ImportRuntime>({
  kind: JOB_IMPORT_PAGE,
  payload: pagePayload,
  orderingKey: (p) => importKey(p.importId),
  scope: (p) => locationKey(p.locationId),
  dedupeKey: (p) => `${JOB_IMPORT_PAGE}:${p.importId}:${p.page}`,
  priority: PRIORITY.bulk,
  maxAttempts: 10,
  perform: (p, _job, h) => walkPages(h.deps, p, h),
  onFailed: (p, _job, err, h) => failImport(h.deps, h.db, p.importId, 'running', err),
});

type SearchPage = Awaited<ReturnType<GhlClient['contacts']['search']>>;
type Cursor = NonNullable<ImportRow['cursor']>;

async function walkPages(
  rt: ImportRuntime,
  p: z.infer<typeof pagePayload>,
  h: JobContext<ImportRuntime>,
): Promise<void> {
  const imp = await rt.db.selectFrom('contact_imports').selectAll().where('id', '=', p.importId).executeTakeFirst();
  // Cancelled, failed or walked meanwhile. A job queued before a later checkpoint goes on from that checkpoint: jobs
  // of one import run one at a time (ordering key), and every page commit checks the checkpoint it started from.
  if (!imp || imp.status !== 'running') return;
  const loc = imp.location_id;
  const until = Date.now() + WALK_RUN_MS;
  // dateAdded ascending: contacts created during the walk come after the cursor and are read too.
  const fetchPage = (cursor: Cursor | null): Promise<SearchPage> =>
    rt.ghl().contacts.search(
      {
        locationId: loc,
        pageLimit: imp.page_size,
        sort: [{ field: 'dateAdded', direction: 'asc' }],
        ...(cursor ? { searchAfter: cursor } : {}),
      },
      { installation: { locationId: loc }, lane: 'bulk', signal: h.signal, maxWaitMs: 2000 },
    );
  let at = { page: imp.pages_done, cursor: imp.cursor, total: imp.total };
  let next = fetchPage(at.cursor);
  let unused: Promise<SearchPage> | undefined = next;
  try {
    for (;;) {
      const res = await next;
      unused = undefined;
      const contacts = (res.contacts ?? []).filter((c) => typeof c.id === 'string' && c.id);
      const last = contacts.at(-1);
      const walked = contacts.length < imp.page_size || !Array.isArray(last?.searchAfter);
      const after = {
        page: at.page + 1,
        cursor: (last?.searchAfter as Cursor | undefined) ?? at.cursor,
        total: typeof res.total === 'number' ? res.total : at.total,
      };
      const more = !walked && Date.now() < until && !h.signal.aborted;
      if (more) {
        next = unused = fetchPage(after.cursor);
        next.catch(() => undefined); // awaited below (or in finally); never an unhandled rejection meanwhile
      }
      const committed = await stagePage(rt, imp, at.page, contacts, { ...after, walked, handOver: !more });
      if (!committed || !more) return;
      at = after;
    }
  } finally {
    // A prefetch the run will not use (cancelled, failed, shutting down) settles before the job ends.
    if (unused) await unused.catch(() => undefined);
  }
}

/**
 * Stages one page and moves the checkpoint past it, in one transaction, if the import is still running at exactly
 * `page`. At the end of a run the same transaction queues what comes next: duplicate detection once the walk is done,
 * else the next run of the walk.
 */
async function stagePage(
  rt: ImportRuntime,
  imp: ImportRow,
  page: number,
  contacts: NonNullable<SearchPage['contacts']>,
  to: { cursor: Cursor | null; total: number | null; walked: boolean; handOver: boolean },
): Promise<boolean> {
  const loc = imp.location_id;
  const mapping = rt.mapping();
  const mapped = rt.mapped();
  const external =
    mapped && contacts.length
      ? await mapped.externalIds(
          loc,
          contacts.map((c) => c.id),
        )
      : undefined;
  const rows: Insertable<ContactImportRowsTable>[] = [];
  const blocks: Array<{ import_id: string; block: string; contact_id: string }> = [];
  for (const c of contacts) {
    const custom = Array.isArray(c.customFields) ? (c.customFields as { id: string; value: unknown }[]) : [];
    const logical = mapping ? await mapping.toLogical(loc, custom) : {};
    const k = matchKeys(c, rt.phoneRegion);
    rows.push({
      import_id: imp.id,
      contact_id: c.id,
      page,
      original: JSON.stringify(c),
      logical: JSON.stringify(logical),
      email_norm: k.email,
      phone_e164: k.phone,
      name_key: k.name,
      company_key: k.company,
      mapped_external_id: external?.get(c.id) ?? null,
      merge_into: null,
      decided_at: null,
    });
    for (const b of k.blocks) blocks.push({ import_id: imp.id, block: b, contact_id: c.id });
  }
  let staged = 0;
  const committed = await rt.db.transaction().execute(async (trx) => {
    const cur = await trx
      .selectFrom('contact_imports')
      .select(['status', 'pages_done'])
      .where('id', '=', imp.id)
      .forUpdate()
      .executeTakeFirst();
    if (!cur || cur.status !== 'running' || cur.pages_done !== page) return false;
    if (rows.length) {
      // A contact GHL lists again (its sort position moved) is staged once.
      const ins = await trx
        .insertInto('contact_import_rows')
        .values(rows)
        .onConflict((oc) => oc.columns(['import_id', 'contact_id']).doNothing())
        .returning('contact_id')
        .execute();
      staged = ins.length;
      const fresh = new Set(ins.map((r) => r.contact_id));
      const own = blocks.filter((b) => fresh.has(b.contact_id));
      if (own.length)
        await trx
          .insertInto('contact_import_blocks')
          .values(own)
          .onConflict((oc) => oc.doNothing())
          .execute();
    }
    await trx
      .updateTable('contact_imports')
      .set({
        cursor: to.cursor ? JSON.stringify(to.cursor) : null,
        pages_done: sql`pages_done + 1`,
        rows_done: sql`rows_done + ${staged}`,
        total: to.total,
        walked: to.walked,
        ...(to.walked ? { walked_at: sql<Date>`now()` } : {}),
        status: to.walked ? 'deduplicating' : 'running',
        updated_at: sql`now()`,
      })
      .where('id', '=', imp.id)
      .execute();
    if (to.walked) await dedupeJob.enqueue(trx, { importId: imp.id, locationId: loc });
    else if (to.handOver) await pageJob.enqueue(trx, { importId: imp.id, locationId: loc, page: page + 1 });
    return true;
  });
  if (committed) {
    if (staged) rt.staged.inc({ location: loc }, staged);
    rt.notify();
  }
  return committed;
}

/** `import.dedupe`: duplicate groups over the staged rows, then the import is completed (and `import.completed`). */
export const dedupeJob = defineJob<z.infer<typeof dedupePayload>, ImportRuntime>({
  kind: JOB_IMPORT_DEDUPE,
  payload: dedupePayload,
  orderingKey: (p) => importKey(p.importId),
  scope: (p) => locationKey(p.locationId),
  dedupeKey: (p) => `${JOB_IMPORT_DEDUPE}:${p.importId}`,
  priority: PRIORITY.bulk,
  maxAttempts: 5,
  async perform(p, _job, h) {
    const rt = h.deps;
    const imp = await rt.db.selectFrom('contact_imports').selectAll().where('id', '=', p.importId).executeTakeFirst();
    if (!imp || imp.status !== 'deduplicating') return;
    const r = await detectDuplicates(rt.db, imp.id, rt.dedupe, h.signal);
    if (r.skippedBlocks)
      rt.log.info({ importId: imp.id, skippedBlocks: r.skippedBlocks }, 'import: large blocks skipped');
    let published = false;
    await rt.db.transaction().execute(async (trx) => {
      if (imp.enrich_calls) {
        const next = await trx
          .updateTable('contact_imports')
          .set({ status: 'enriching', duplicate_groups: r.groups, updated_at: sql`now()` })
          .where('id', '=', imp.id)
          .where('status', '=', 'deduplicating')
          .returning('id')
          .executeTakeFirst();
        if (next) await enrichJob.enqueue(trx, { importId: imp.id, locationId: p.locationId });
        return;
      }
      const done = await trx
        .updateTable('contact_imports')
        .set({ status: 'completed', duplicate_groups: r.groups, finished_at: sql`now()`, updated_at: sql`now()` })
        .where('id', '=', imp.id)
        .where('status', '=', 'deduplicating')
        .returningAll()
        .executeTakeFirst();
      if (done) published = await publishEnded(rt, trx, done, 'completed', null);
    });
    if (published) rt.events()?.wake();
    if (imp.enrich_calls) rt.notify();
  },
  onFailed: (p, _job, err, h) => failImport(h.deps, h.db, p.importId, 'deduplicating', err),
});

/** Contacts whose call history one `import.enrich` job reads (two GHL calls each, committed one by one). */
const ENRICH_CHUNK = 25;

/**
 * `import.enrich` (imports started with enrichCalls): after duplicate detection, reads each staged contact's call
 * history — its conversations (`GET /conversations/search?contactId=`) and their call messages
 * (`GET /conversations/{id}/messages?type=TYPE_CALL`) — on the bulk lane, and stores the summary on the row. Every row
 * is committed as soon as it is read, so a crash, a deferral for the rate limit or a cancel loses at most one
 * contact's reads; a chunk ends by queueing the next one, and the last completes the import.
 */
export const enrichJob = defineJob<z.infer<typeof dedupePayload>, ImportRuntime>({
  kind: JOB_IMPORT_ENRICH,
  payload: dedupePayload,
  orderingKey: (p) => importKey(p.importId),
  scope: (p) => locationKey(p.locationId),
  dedupeKey: (p) => `${JOB_IMPORT_ENRICH}:${p.importId}`,
  priority: PRIORITY.bulk,
  maxAttempts: 8,
  async perform(p, _job, h) {
    const rt = h.deps;
    const live = async () =>
      (await rt.db.selectFrom('contact_imports').select('status').where('id', '=', p.importId).executeTakeFirst())
        ?.status === 'enriching';
    if (!(await live())) return;
    const rows = await rt.db
      .selectFrom('contact_import_rows')
      .select('contact_id')
      .where('import_id', '=', p.importId)
      .where('calls_checked', '=', false)
      .orderBy('contact_id')
      .limit(ENRICH_CHUNK)
      .execute();
    const opts = {
      installation: { locationId: p.locationId },
      lane: 'bulk' as const,
      signal: h.signal,
      maxWaitMs: 2000,
    };
    for (const r of rows) {
      const calls = await callHistory(rt, p.locationId, r.contact_id, opts);
      const upd = await rt.db.transaction().execute(async (trx) => {
        const u = await trx
          .updateTable('contact_import_rows')
          .set({ calls: JSON.stringify(calls), calls_checked: true })
          .where('import_id', '=', p.importId)
          .where('contact_id', '=', r.contact_id)
          .where('calls_checked', '=', false)
          .executeTakeFirst();
        if (!Number(u.numUpdatedRows)) return false;
        await trx
          .updateTable('contact_imports')
          .set({ rows_enriched: sql`rows_enriched + 1`, updated_at: sql`now()` })
          .where('id', '=', p.importId)
          .execute();
        return true;
      });
      if (!upd && !(await live())) return; // cancelled meanwhile
    }
    let published = false;
    await rt.db.transaction().execute(async (trx) => {
      const left = await trx
        .selectFrom('contact_import_rows')
        .select('contact_id')
        .where('import_id', '=', p.importId)
        .where('calls_checked', '=', false)
        .limit(1)
        .executeTakeFirst();
      if (left) {
        await enrichJob.enqueue(trx, p);
        return;
      }
      const done = await trx
        .updateTable('contact_imports')
        .set({ status: 'completed', finished_at: sql`now()`, updated_at: sql`now()` })
        .where('id', '=', p.importId)
        .where('status', '=', 'enriching')
        .returningAll()
        .executeTakeFirst();
      if (done) published = await publishEnded(rt, trx, done, 'completed', null);
    });
    if (published) rt.events()?.wake();
    rt.notify();
  },
  onFailed: (p, _job, err, h) => failImport(h.deps, h.db, p.importId, 'enriching', err),
});

/** A contact's calls, newest first: its conversations' call messages (GHL keeps one conversation per contact). */
async function callHistory(
  rt: ImportRuntime,
  locationId: string,
  contactId: string,
  opts: Parameters<GhlClient['conversations']['search']>[1],
): Promise<CallSummary[]> {
  const ghl = rt.ghl();
  const found = await ghl.conversations.search({ locationId, contactId, limit: 10 }, opts);
  const out: CallSummary[] = [];
  for (const c of found.conversations ?? []) {
    if (!c.id) continue;
    const page = await ghl.messages.list(c.id, { type: 'TYPE_CALL', limit: 100 }, opts);
    for (const m of page.messages ?? []) out.push(summariseCallMessage(m as unknown as Record<string, unknown>));
  }
  return out.sort((a, b) => (b.at ?? '').localeCompare(a.at ?? ''));
}

/** A job of the import gave up: the import fails (if it is still in that job's phase) and `import.completed` says so. */
async function failImport(
  rt: ImportRuntime,
  db: Db,
  importId: string,
  phase: ImportStatus,
  err: unknown,
): Promise<void> {
  const imp = await db
    .updateTable('contact_imports')
    .set({ status: 'failed', error: errText(err), finished_at: sql`now()`, updated_at: sql`now()` })
    .where('id', '=', importId)
    .where('status', '=', phase)
    .returningAll()
    .executeTakeFirst();
  if (imp && (await publishEnded(rt, db, imp, 'failed', imp.error))) rt.events()?.wake();
}

const isUniqueViolation = (e: unknown) => (e as { code?: string }).code === '23505';

/** Starts an import of the location's contacts: the row and its first page job, in one transaction. */
export async function startImport(
  rt: ImportRuntime,
  locationId: string,
  o: { pageSize?: number; enrichCalls?: boolean } = {},
): Promise<ImportRow> {
  const pageSize = Math.min(o.pageSize ?? rt.defaultPageSize, MAX_PAGE_SIZE);
  try {
    const row = await rt.db.transaction().execute(async (trx) => {
      const r = await trx
        .insertInto('contact_imports')
        .values({
          walked_at: null,
          id: newImportId(),
          location_id: locationId,
          status: 'running',
          enrich_calls: o.enrichCalls === true,
          page_size: pageSize,
          cursor: null,
          total: null,
          error: null,
          finished_at: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await pageJob.enqueue(trx, { importId: r.id, locationId, page: 0 });
      return r;
    });
    rt.notify();
    return row;
  } catch (e) {
    if (isUniqueViolation(e)) throw await activeConflict(rt, locationId);
    throw e;
  }
}

async function activeConflict(rt: ImportRuntime, locationId: string): Promise<ImportStateError> {
  const a = await rt.db
    .selectFrom('contact_imports')
    .select('id')
    .where('location_id', '=', locationId)
    .where('status', 'in', ['running', 'deduplicating', 'enriching'])
    .executeTakeFirst();
  return new ImportStateError(
    `location ${locationId} already has an import in progress (${a?.id ?? 'unknown'}); cancel it or wait for it to end`,
    409,
    'params.locationId',
  );
}

export async function getImport(rt: ImportRuntime, locationId: string, importId: string): Promise<ImportRow> {
  const r = await rt.db
    .selectFrom('contact_imports')
    .selectAll()
    .where('id', '=', importId)
    .where('location_id', '=', locationId)
    .executeTakeFirst();
  if (!r) throw new ImportStateError(`no import ${importId} for location ${locationId}`, 404, 'params.importId');
  return r;
}

export async function listImports(rt: ImportRuntime, locationId: string, limit: number): Promise<ImportRow[]> {
  return rt.db
    .selectFrom('contact_imports')
    .selectAll()
    .where('location_id', '=', locationId)
    .orderBy('created_at', 'desc')
    .orderBy('id')
    .limit(limit)
    .execute();
}

/** Stops an import in progress: its pending page job finds it cancelled and does nothing. Staged rows stay. */
export async function cancelImport(rt: ImportRuntime, locationId: string, importId: string): Promise<ImportRow> {
  const cur = await getImport(rt, locationId, importId);
  let published = false;
  const row = await rt.db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('contact_imports')
      .set({ status: 'cancelled', finished_at: sql`now()`, updated_at: sql`now()` })
      .where('id', '=', importId)
      .where('status', 'in', ['running', 'deduplicating', 'enriching'])
      .returningAll()
      .executeTakeFirst();
    if (r) published = await publishEnded(rt, trx, r, 'cancelled', null);
    return r;
  });
  if (published) rt.events()?.wake();
  if (!row)
    throw new ImportStateError(
      `import ${importId} is ${cur.status}; only a running import can be cancelled`,
      409,
      'params.importId',
    );
  return row;
}

/** Deletes an import that is not in progress, with its staged rows, blocks and duplicate groups. */
export async function deleteImport(rt: ImportRuntime, locationId: string, importId: string): Promise<void> {
  const cur = await getImport(rt, locationId, importId);
  const r = await rt.db
    .deleteFrom('contact_imports')
    .where('id', '=', importId)
    .where('status', 'not in', ['running', 'deduplicating', 'enriching'])
    .executeTakeFirst();
  if (!Number(r.numDeletedRows))
    throw new ImportStateError(
      `import ${importId} is ${cur.status}; cancel it before deleting it`,
      409,
      'params.importId',
    );
}

/** Continues a cancelled or failed import from its last checkpoint (the next page, or duplicate detection). */
export async function resumeImport(rt: ImportRuntime, locationId: string, importId: string): Promise<ImportRow> {
  const cur = await getImport(rt, locationId, importId);
  if (cur.status !== 'cancelled' && cur.status !== 'failed')
    throw new ImportStateError(
      `import ${importId} is ${cur.status}; only a cancelled or failed import can be resumed`,
      409,
      'params.importId',
    );
  try {
    const row = await rt.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('contact_imports')
        .set({
          status: cur.walked ? 'deduplicating' : 'running',
          error: null,
          finished_at: null,
          run_started_at: sql`now()`,
          run_rows_start: sql`rows_done`,
          updated_at: sql`now()`,
        })
        .where('id', '=', importId)
        .where('status', 'in', ['cancelled', 'failed'])
        .returningAll()
        .executeTakeFirst();
      if (!r) return undefined;
      if (r.walked) await dedupeJob.enqueue(trx, { importId, locationId });
      else await pageJob.enqueue(trx, { importId, locationId, page: r.pages_done });
      return r;
    });
    if (!row) throw new ImportStateError(`import ${importId} changed meanwhile; read it again`, 409, 'params.importId');
    rt.notify();
    return row;
  } catch (e) {
    if (isUniqueViolation(e)) throw await activeConflict(rt, locationId);
    throw e;
  }
}

export interface ImportProgress {
  id: string;
  locationId: string;
  status: ImportStatus;
  enrichCalls: boolean;
  rowsEnriched: number;
  pageSize: number;
  pagesDone: number;
  rowsDone: number;
  total: number | null;
  /** rowsDone / total in percent (100 once completed), null while the total is unknown. */
  percent: number | null;
  /** Rows staged per second over the current run (since the start or the last resume). */
  rowsPerSecond: number;
  /** Seconds until every row is staged at that rate; null while unknown, 0 once the walk is over. */
  etaSeconds: number | null;
  duplicateGroups: number;
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

export function progressOf(r: ImportRow, now = Date.now()): ImportProgress {
  const active = r.status === 'running';
  const end = r.walked_at ? r.walked_at.getTime() : active ? now : r.updated_at.getTime();
  const secs = Math.max(0.001, (end - r.run_started_at.getTime()) / 1000);
  const rate = Math.max(0, r.rows_done - r.run_rows_start) / secs;
  const left = r.total === null ? null : Math.max(0, r.total - r.rows_done);
  return {
    id: r.id,
    locationId: r.location_id,
    status: r.status,
    enrichCalls: r.enrich_calls,
    rowsEnriched: r.rows_enriched,
    pageSize: r.page_size,
    pagesDone: r.pages_done,
    rowsDone: r.rows_done,
    total: r.total,
    percent:
      r.status === 'completed'
        ? 100
        : r.total
          ? Math.min(100, Math.round((r.rows_done / r.total) * 1000) / 10)
          : r.total === 0
            ? 100
            : null,
    rowsPerSecond: Math.round(rate * 10) / 10,
    etaSeconds: r.walked ? 0 : left === null || !active ? null : rate > 0 ? Math.ceil(left / rate) : null,
    duplicateGroups: r.duplicate_groups,
    error: r.error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
}

/** The latest import of every location, for the metrics. */
export async function latestPerLocation(db: Db): Promise<ImportRow[]> {
  const r = await sql<ImportRow>`
    select distinct on (location_id) * from contact_imports order by location_id, created_at desc, id`.execute(db);
  return r.rows.map((x) => ({
    ...x,
    created_at: new Date(x.created_at),
    updated_at: new Date(x.updated_at),
    run_started_at: new Date(x.run_started_at),
    finished_at: x.finished_at ? new Date(x.finished_at) : null,
    walked_at: x.walked_at ? new Date(x.walked_at) : null,
  }));
}
