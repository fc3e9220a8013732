import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import { deleteInBatches } from '../../infra/db/batches.js';
import { prepared } from '../../infra/db/prepared.js';
import { JOB_INSERT_COLUMNS, NOTIFY_WORKERS, type NewJob } from '../../infra/queue/index.js';
import { DISPATCH_JOB, dispatchJob, type DispatchJobPayload } from './dispatch.js';
import type { WebhookSource, WebhookStatus } from './tables.js';
import './tables.js';
import { locationKey, locationKeySql } from '../keys.js';

/** A verified delivery ready to be written. */
export interface EventRecord {
  source: WebhookSource;
  dedupeKey: string;
  type: string | null;
  locationId: string | null;
  companyId: string | null;
  webhookId: string | null;
  orderingKey: string | null;
  eventAt: Date | null;
  /** JSON text for the jsonb column (the received text when it parsed), or null. */
  payloadJson: string | null;
  raw: Buffer | null;
  signature: string;
  status: WebhookStatus;
  reason: string | null;
}

export type PersistOutcome = { result: 'stored'; id: number } | { result: 'duplicate' };

/** Why intake could not persist; the route answers 429 so GHL delivers again later. */
export class ThrottledError extends Error {
  constructor(
    readonly reason: 'store_error' | 'timeout' | 'overload',
    message: string,
  ) {
    super(message);
    this.name = 'ThrottledError';
  }
}

export interface GroupCommitOptions {
  db: Db;
  /** Most events per transaction. */
  maxBatch?: number;
  /** Concurrent transactions (PGlite is one session: 1). */
  concurrency?: number;
  /** Waiting events beyond this are refused at once (429) instead of queueing in memory. */
  maxPending?: number;
  /** Attempts per dispatch job (JOB_MAX_ATTEMPTS unless the module overrides it). */
  maxAttempts: number;
  /** Called after every commit that queued jobs (wakes local workers). */
  onCommitted?: (stored: number) => void;
  /** Extra CTEs over the stored events (`ev`), and what to call once they committed (WebhooksService.onStored). */
  storedSql?: () => { ctes: RawBuilder<unknown>[]; after: Array<() => void> };
  onBatch?: (size: number, seconds: number) => void;
}

interface Pending {
  rec: EventRecord;
  resolve: (o: PersistOutcome) => void;
  reject: (e: Error) => void;
}

/**
 * Group commit: events verified in the same moment are written in one transaction (one
 * multi-row insert + one multi-row enqueue) and each request's promise settles after COMMIT.
 * At low load every event gets its own transaction immediately; under load, events pile up
 * while a transaction is in flight and the next one takes them all, so the commit (fsync)
 * cost is shared. A failed batch fails every request in it (→ 429, GHL retries).
 */
export class GroupCommitter {
  readonly #db: Db;
  readonly #maxBatch: number;
  readonly #concurrency: number;
  readonly #maxPending: number;
  #queue: Pending[] = [];
  #active = 0;
  #scheduled = false;
  #idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: GroupCommitOptions) {
    this.#db = opts.db;
    this.#maxBatch = opts.maxBatch ?? 256;
    this.#concurrency = opts.concurrency ?? 1;
    this.#maxPending = opts.maxPending ?? 10_000;
  }

  get pending(): number {
    return this.#queue.length;
  }

  submit(rec: EventRecord): Promise<PersistOutcome> {
    if (this.#queue.length >= this.#maxPending)
      return Promise.reject(new ThrottledError('overload', `${this.#queue.length} events waiting to be stored`));
    return new Promise<PersistOutcome>((resolve, reject) => {
      this.#queue.push({ rec, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves when nothing is waiting or being written. */
  idle(): Promise<void> {
    if (!this.#queue.length && !this.#active) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  #schedule(): void {
    if (this.#scheduled || this.#active >= this.#concurrency) return;
    this.#scheduled = true;
    // setImmediate: let every request already read in this I/O turn join the batch.
    setImmediate(() => {
      this.#scheduled = false;
      this.#drain();
    });
  }

  #drain(): void {
    while (this.#active < this.#concurrency && this.#queue.length) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#active++;
      const started = performance.now();
      void this.#write(batch).finally(() => {
        this.opts.onBatch?.(batch.length, (performance.now() - started) / 1000);
        this.#active--;
        if (this.#queue.length) this.#schedule();
        else if (!this.#active) for (const w of this.#idleWaiters.splice(0)) w();
      });
    }
  }

  async #write(batch: Pending[]): Promise<void> {
    try {
      const outcomes = await this.#insert(batch.map((p) => p.rec));
      batch.forEach((p, i) => p.resolve(outcomes[i]!));
    } catch (e) {
      // A value PostgreSQL refuses (SQLSTATE class 22, e.g. \u0000 in jsonb) must not take the
      // whole batch down with it: write the events one by one, and keep a refused one as a dead
      // raw record.
      if (isDataError(e) && batch.length > 1) {
        for (const p of batch) await this.#write([p]);
        return;
      }
      if (isDataError(e) && batch.length === 1 && batch[0]!.rec.payloadJson !== null) {
        const p = batch[0]!;
        const raw = p.rec.raw ?? Buffer.from(p.rec.payloadJson ?? '', 'utf8');
        const dead: EventRecord = {
          ...p.rec,
          payloadJson: null,
          raw,
          status: 'dead',
          reason: `payload cannot be stored as JSON: ${(e as Error).message}`.slice(0, 2000),
        };
        await this.#write([{ ...p, rec: dead }]);
        return;
      }
      const err = new ThrottledError('store_error', (e as Error).message);
      for (const p of batch) p.reject(err);
    }
  }

  /**
   * One round trip, one statement, hence one transaction: insert the events (one array
   * parameter per column, so the statement does not grow with the batch), queue a dispatch job
   * for every new event that has handlers, and wake workers. Writing straight into bridge_jobs
   * (rather than calling enqueue(), which needs BEGIN … COMMIT around two statements = four
   * round trips) is what makes group commit pay off; the columns and the NOTIFY mirror enqueue().
   */
  async #insert(recs: EventRecord[]): Promise<PersistOutcome[]> {
    const col = <T>(f: (r: EventRecord) => T) => recs.map(f);
    const extra = this.opts.storedSql?.() ?? { ctes: [], after: [] };
    const res = await prepared<{ id: number; source: string; dedupe_key: string; jobs: number }>(sql`
      with u as (
        select * from unnest(
          ${col((r) => r.source)}::text[], ${col((r) => r.dedupeKey)}::text[], ${col((r) => r.type)}::text[],
          ${col((r) => r.locationId)}::text[], ${col((r) => r.companyId)}::text[], ${col((r) => r.webhookId)}::text[],
          ${col((r) => r.orderingKey)}::text[], ${col((r) => r.eventAt?.toISOString() ?? null)}::timestamptz[],
          ${col((r) => r.payloadJson)}::text[], ${col((r) => r.raw?.toString('hex') ?? null)}::text[],
          ${col((r) => r.signature)}::text[], ${col((r) => r.status)}::text[], ${col((r) => r.reason)}::text[]
        ) with ordinality as u(source, dedupe_key, type, location_id, company_id, webhook_id, ordering_key, event_at, payload, raw, signature, status, reason, ord)
      ), ev as (
        insert into webhook_events
          (source, dedupe_key, type, location_id, company_id, webhook_id, ordering_key, event_at, payload, raw, signature, status, reason)
        select u.source, u.dedupe_key, u.type, u.location_id, u.company_id, u.webhook_id, u.ordering_key, u.event_at,
          u.payload::json, decode(u.raw, 'hex'), u.signature, u.status, u.reason
        from u order by u.ord
        on conflict (source, dedupe_key) do nothing
        returning id, source, dedupe_key, status, ordering_key, location_id, type${
          // The columns onStored hooks read, only when one joins this batch (the payload is not sent back otherwise).
          extra.ctes.length ? sql`, company_id, payload, received_at` : sql``
        }
      ), jobs as (
        -- Job ids follow event ids, so events sharing an ordering key run in arrival order.
        insert into bridge_jobs (${JOB_INSERT_COLUMNS})
        select ${dispatchJob.columnsSql({
          payload: sql`jsonb_build_object('eventId', ev.id)`,
          orderingKey: sql`ev.ordering_key`,
          scope: sql`case when ev.type in (${sql.join(LIFECYCLE_TYPES.map((t) => sql.lit(t)))}) then null else ${locationKeySql(sql`ev.location_id`)} end`,
          maxAttempts: this.opts.maxAttempts,
        })}
        from ev where ev.status = 'received' order by ev.id
        returning id
      ), woke as (
        select ${NOTIFY_WORKERS} from (select 1 from jobs limit 1) j
      )${extra.ctes.length ? sql`, ${sql.join(extra.ctes, sql`, `)}` : sql``}
      select ev.id, ev.source, ev.dedupe_key, (select count(*) from jobs) as jobs, (select count(*) from woke) as woke
      from ev`).execute(this.#db);
    const ids = new Map(res.rows.map((r) => [`${r.source}\n${r.dedupe_key}`, r.id]));
    const outcomes: PersistOutcome[] = [];
    for (const r of recs) {
      const key = `${r.source}\n${r.dedupeKey}`;
      const id = ids.get(key);
      // Already stored, or a second copy inside this same batch: a duplicate.
      if (id === undefined) {
        outcomes.push({ result: 'duplicate' });
        continue;
      }
      ids.delete(key);
      outcomes.push({ result: 'stored', id });
    }
    const jobs = Number(res.rows[0]?.jobs ?? 0);
    if (jobs) this.opts.onCommitted?.(jobs);
    if (res.rows.length) for (const f of extra.after) f();
    return outcomes;
  }
}

/**
 * Events about the installation itself. Their dispatch jobs belong to no location's scope: a location whose jobs are
 * paused for re-authorization (GHL revoked its tokens, as it does on uninstall) must still take in its UNINSTALL, and
 * a new INSTALL is what resumes it.
 */
export const LIFECYCLE_TYPES: readonly string[] = ['INSTALL', 'UNINSTALL'];

/** The dispatch job of a stored event (replay): the event's ordering key, and its location's scope. */
export function dispatchJobFor(
  eventId: number,
  r: { orderingKey: string | null; locationId: string | null; type: string | null },
  replay: boolean,
  maxAttempts: number | undefined,
): NewJob<DispatchJobPayload> {
  return dispatchJob.job(replay ? { eventId, replay: true } : { eventId }, {
    orderingKey: r.orderingKey,
    // Same scope convention as the rest of the bridge, so pausing a location pauses its events.
    scope: r.locationId && !LIFECYCLE_TYPES.includes(r.type ?? '') ? locationKey(r.locationId) : null,
    ...(maxAttempts ? { maxAttempts } : {}),
  });
}

function isDataError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('22');
}

/** Waiting dispatch jobs, for the backlog high-water mark. */
export async function countReadyDispatchJobs(db: Db): Promise<number> {
  const r = await db
    .selectFrom('bridge_jobs')
    .select(db.fn.countAll<number>().as('n'))
    .where('kind', '=', DISPATCH_JOB)
    .where('state', '=', 'ready')
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** Statuses whose events are finished with: pruned after DATA_RETENTION_DAYS ('received' is waiting, 'dead' needs a person). */
const PRUNABLE: WebhookStatus[] = ['dispatched', 'skipped', 'unknown_type'];

/**
 * Deletes handled events received more than `olderThanDays` ago, `batch` rows per statement so no
 * statement holds many locks or runs long. Their dedupe keys go with them: GHL redelivers for about
 * 70 minutes at most, far inside any retention this accepts.
 */
export async function pruneEvents(db: Db, olderThanDays: number, batch = 5000, signal?: AbortSignal): Promise<number> {
  // The conditions are repeated outside the sub-select: PostgreSQL re-checks only those against a row
  // another transaction changed meanwhile (a replay sets it back to 'received'); SKIP LOCKED leaves
  // rows in use, and other replicas' batches, alone.
  const old = sql`received_at < now() - make_interval(days => ${olderThanDays}) and status in (${sql.join(PRUNABLE)})`;
  return deleteInBatches(
    db,
    batch,
    (limit) => sql`
    delete from webhook_events where ${old} and id in (
      select id from webhook_events where ${old} order by received_at limit ${limit} for update skip locked)`,
    signal,
  );
}
