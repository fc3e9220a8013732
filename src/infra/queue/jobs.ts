import { sql, type Kysely, type RawBuilder } from 'kysely';
import { prepared } from '../db/prepared.js';
import type { Database } from '../db/schema.js';
import type { JobState } from './tables.js';
import './tables.js';

/** A Kysely handle or an open transaction: enqueue joins the caller's transaction (outbox). */
export type DbOrTrx = Kysely<Database>;

export interface NewJob<P = unknown> {
  kind: string;
  payload: P;
  /** Jobs sharing a key run one at a time, in enqueue order (e.g. one conversation's messages). */
  orderingKey?: string | null;
  /** Grouping for pause / resume / cancel (e.g. "loc:<locationId>"). */
  scope?: string | null;
  /** While a job with this key exists (waiting, running, dead), enqueueing a duplicate is a no-op. */
  dedupeKey?: string | null;
  runAt?: Date;
  /** Lower runs first. Live messaging uses 10, default 100, bulk sync 200. */
  priority?: number;
  maxAttempts?: number;
}

export const PRIORITY = { live: 10, normal: 100, bulk: 200 } as const;

export interface Job<P = unknown> {
  id: number;
  kind: string;
  payload: P;
  attempts: number;
  maxAttempts: number;
  orderingKey: string | null;
  scope: string | null;
  priority: number;
  runAt: Date;
  createdAt: Date;
  lastError: string | null;
}

export interface JobRow {
  id: number;
  kind: string;
  payload: unknown;
  state: JobState;
  priority: number;
  ordering_key: string | null;
  scope: string | null;
  dedupe_key: string | null;
  run_at: Date;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  locked_by: string | null;
  locked_until: Date | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

export function toJob<P>(r: JobRow): Job<P> {
  return {
    id: r.id,
    kind: r.kind,
    payload: r.payload as P,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    orderingKey: r.ordering_key,
    scope: r.scope,
    priority: r.priority,
    runAt: r.run_at,
    createdAt: r.created_at,
    lastError: r.last_error,
  };
}

/** States in which a job holds back later jobs of its ordering key. */
export const UNFINISHED_STATES = sql.raw(`('ready', 'blocked', 'running', 'paused')`);

/**
 * The state a new job starts in, as SQL over an ordering-key expression: 'blocked' when an
 * unfinished job with the same key exists, else 'ready'. Keeping successors out of 'ready' keeps
 * the claim query's cost proportional to the jobs that can actually run, not to the backlog.
 * (A race with a completing job can strand a job in 'blocked'; the workers' sweep promotes it.)
 */
export function initialStateSql(orderingKey: ReturnType<typeof sql>) {
  return sql`case when ${orderingKey} is not null and exists (
      select 1 from bridge_jobs p where p.ordering_key = ${orderingKey} and p.state in ${UNFINISHED_STATES}
    ) then 'blocked' else 'ready' end`;
}

let defaultAttempts = 10;
/** Set once at start from JOB_MAX_ATTEMPTS. */
export function setDefaultMaxAttempts(n: number): void {
  defaultAttempts = n;
}
/** JOB_MAX_ATTEMPTS: the attempts of a job whose kind and enqueue name none. */
export function defaultMaxAttempts(): number {
  return defaultAttempts;
}

/** Channel used to wake workers; includes the schema so bridges sharing a database stay apart. */
export async function notifyChannel(db: DbOrTrx): Promise<string> {
  const r = await sql<{ s: string }>`select current_schema() as s`.execute(db);
  return `ghl_bridge_jobs_${r.rows[0]?.s ?? 'public'}`.slice(0, 63);
}

/** Wakes workers on every replica (LISTEN); PostgreSQL delivers it at commit. Same channel as notifyChannel(). */
export const NOTIFY_WORKERS = sql`pg_notify('ghl_bridge_jobs_' || current_schema(), '')`;

/** The bridge_jobs columns a new job writes, in the order of `jobColumnsSql`: the one list every job insert uses. */
export const JOB_INSERT_COLUMNS = sql`kind, payload, ordering_key, scope, dedupe_key, run_at, priority, max_attempts, state`;

/** SQL expressions for the columns of new jobs (per row of a SELECT, or constants). */
export interface JobColumnsSql {
  kind: RawBuilder<unknown>;
  /** jsonb */
  payload: RawBuilder<unknown>;
  /** text or null */
  orderingKey: RawBuilder<unknown>;
  scope: RawBuilder<unknown>;
  priority: number;
  maxAttempts: number;
  dedupeKey?: RawBuilder<unknown>;
  /** timestamptz or null (= now) */
  runAt?: RawBuilder<unknown>;
}

/**
 * The values of JOB_INSERT_COLUMNS for a VALUES row or a SELECT list, for statements that insert jobs themselves
 * (one round trip instead of enqueue() in a transaction): `insert into bridge_jobs (${JOB_INSERT_COLUMNS}) select
 * ${jobColumnsSql({...})} from …`. The initial state (ready, or blocked behind its ordering key) is the queue's.
 * Add NOTIFY_WORKERS (or jobsNotifySql) so workers wake at commit.
 */
export function jobColumnsSql(c: JobColumnsSql) {
  return sql`${c.kind}, ${c.payload}, ${c.orderingKey}, ${c.scope}, ${c.dedupeKey ?? sql`null::text`}, coalesce(${c.runAt ?? sql`null`}::timestamptz, now()), ${c.priority}::smallint, ${c.maxAttempts}::int, ${initialStateSql(c.orderingKey)}`;
}

/** The column values of a new job, in bridge_jobs insert order (kind … state), for VALUES or SELECT lists. */
function jobValuesSql(j: NewJob) {
  const r = {
    kind: j.kind,
    payload: JSON.stringify(j.payload ?? {}),
    ordering_key: j.orderingKey ?? null,
    scope: j.scope ?? null,
    dedupe_key: j.dedupeKey ?? null,
    run_at: j.runAt ?? null,
    priority: j.priority ?? PRIORITY.normal,
    max_attempts: j.maxAttempts ?? defaultAttempts,
  };
  return jobColumnsSql({
    kind: sql`${r.kind}`,
    payload: sql`${r.payload}::jsonb`,
    orderingKey: sql`${r.ordering_key}::text`,
    scope: sql`${r.scope}`,
    dedupeKey: sql`${r.dedupe_key}`,
    runAt: sql`${r.run_at}`,
    priority: r.priority,
    maxAttempts: r.max_attempts,
  });
}

/**
 * For a caller's single statement that changes state and queues the job that follows it (one round trip, one
 * implicit transaction, instead of BEGIN … COMMIT around two statements): the body of a data-modifying CTE that
 * enqueues `job` once for every row of the CTE named `from` that passes `where`. Columns, initial state and dedupe
 * behave as in enqueue(); add `jobsNotifySql` over the CTEs so workers wake at commit. Returns `id`.
 */
export function enqueueFromSql(from: string, job: NewJob, where?: RawBuilder<unknown>) {
  return sql`insert into bridge_jobs (${JOB_INSERT_COLUMNS})
      select ${jobValuesSql(job)}
      from ${sql.raw(from)}${where ? sql` where ${where}` : sql``}
      on conflict (dedupe_key) where dedupe_key is not null do nothing
      returning id`;
}

/** A select that NOTIFYs the workers (at commit) when any of the named enqueueFromSql CTEs inserted a job. */
export function jobsNotifySql(ctes: string[]) {
  const any = sql.join(
    ctes.map((c) => sql`select 1 from ${sql.raw(c)}`),
    sql` union all `,
  );
  return sql`select ${NOTIFY_WORKERS} from (${any} limit 1) x`;
}

/**
 * Enqueues jobs inside the caller's transaction (pass `trx`), so a job exists if and only if the
 * state change it follows was committed. Wakes workers on every replica with NOTIFY, which
 * Postgres delivers at commit. Returns the new ids (duplicates by dedupeKey are skipped).
 */
export async function enqueue(db: DbOrTrx, jobs: NewJob | NewJob[]): Promise<number[]> {
  const list = Array.isArray(jobs) ? jobs : [jobs];
  if (list.length === 0) return [];
  const values = sql.join(list.map((j) => sql`(${jobValuesSql(j)})`));
  // A single job's statement has a fixed text: prepared. Batches vary in length and are not.
  const stmt = sql<{ id: number }>`
    with ins as (
      insert into bridge_jobs (${JOB_INSERT_COLUMNS})
      values ${values}
      on conflict (dedupe_key) where dedupe_key is not null do nothing
      returning id
    )
    select id, ${NOTIFY_WORKERS} as n from ins`;
  const res = await (list.length === 1 ? prepared<{ id: number }>(stmt) : stmt).execute(db);
  return res.rows.map((r) => r.id);
}

// ---- Operator actions (CLI `ghl-bridge jobs …`, admin API) ----

export interface ListJobsFilter {
  state?: JobState;
  kind?: string;
  scope?: string;
  limit?: number;
}

export async function listJobs(db: DbOrTrx, f: ListJobsFilter = {}): Promise<JobRow[]> {
  let q = db.selectFrom('bridge_jobs').selectAll();
  if (f.state) q = q.where('state', '=', f.state);
  if (f.kind) q = q.where('kind', '=', f.kind);
  if (f.scope) q = q.where('scope', '=', f.scope);
  return (await q
    .orderBy('id', 'desc')
    .limit(f.limit ?? 100)
    .execute()) as JobRow[];
}

export async function getJob(db: DbOrTrx, id: number): Promise<JobRow | undefined> {
  return (await db.selectFrom('bridge_jobs').selectAll().where('id', '=', id).executeTakeFirst()) as JobRow | undefined;
}

/** Puts dead (or cancelled) jobs back in the queue with a fresh attempt budget. */
export async function retryJobs(
  db: DbOrTrx,
  sel: { ids?: number[]; allDead?: boolean; kind?: string },
): Promise<number> {
  let q = db
    .updateTable('bridge_jobs')
    .set({
      state: 'ready',
      attempts: 0,
      run_at: sql`now()`,
      locked_by: null,
      locked_until: null,
      finished_at: null,
      updated_at: sql`now()`,
    })
    .where('state', 'in', ['dead', 'cancelled']);
  if (sel.ids) q = q.where('id', 'in', sel.ids.length ? sel.ids : [-1]);
  else if (!sel.allDead) return 0;
  if (sel.kind) q = q.where('kind', '=', sel.kind);
  const r = await q.executeTakeFirst();
  const n = Number(r.numUpdatedRows);
  if (n > 0) await sql`select ${NOTIFY_WORKERS}`.execute(db);
  return n;
}

/** Parks every waiting job of a scope (e.g. an installation that needs re-authorization). */
export async function pauseScope(db: DbOrTrx, scope: string, reason: string): Promise<number> {
  const r = await db
    .updateTable('bridge_jobs')
    .set({ state: 'paused', last_error: reason, updated_at: sql`now()` })
    .where('scope', '=', scope)
    .where('state', '=', 'ready')
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export async function resumeScope(db: DbOrTrx, scope: string): Promise<number> {
  const r = await db
    .updateTable('bridge_jobs')
    .set({ state: 'ready', run_at: sql`now()`, updated_at: sql`now()` })
    .where('scope', '=', scope)
    .where('state', '=', 'paused')
    .executeTakeFirst();
  const n = Number(r.numUpdatedRows);
  if (n > 0) await sql`select ${NOTIFY_WORKERS}`.execute(db);
  return n;
}

/**
 * Promotes blocked jobs that nothing holds back any more (the head of their key finished while
 * they were being enqueued). Workers run it periodically; normally promotion happens at once.
 */
export async function promoteStranded(db: DbOrTrx): Promise<number> {
  // Only the oldest blocked job of a key can be free to run (every later one waits at least for it), so the
  // look-behind runs once per key, not once per blocked job: under an overload's backlog (tens of thousands blocked
  // behind a few hundred contacts) the old per-row form took seconds per sweep.
  const r = await prepared(sql`
    update bridge_jobs j set state = 'ready', updated_at = now()
    where j.id in (select min(x.id) from bridge_jobs x where x.state = 'blocked' group by x.ordering_key)
      and j.state = 'blocked' and not exists (
      select 1 from bridge_jobs p where p.ordering_key = j.ordering_key and p.id < j.id and p.state in ${UNFINISHED_STATES})`).execute(
    db,
  );
  return Number(r.numAffectedRows ?? 0);
}

/** Cancels waiting and paused jobs of a scope (e.g. the location uninstalled the app). */
export async function cancelScope(db: DbOrTrx, scope: string, reason: string): Promise<number> {
  const r = await db
    .updateTable('bridge_jobs')
    .set({ state: 'cancelled', last_error: reason, finished_at: sql`now()`, updated_at: sql`now()` })
    .where('scope', '=', scope)
    .where('state', 'in', ['ready', 'blocked', 'paused'])
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export async function countByState(db: DbOrTrx): Promise<Record<JobState, number>> {
  const rows = await db
    .selectFrom('bridge_jobs')
    .select(['state', db.fn.countAll<number>().as('n')])
    .groupBy('state')
    .execute();
  const out: Record<JobState, number> = { ready: 0, blocked: 0, running: 0, dead: 0, paused: 0, cancelled: 0 };
  for (const r of rows) out[r.state] = Number(r.n);
  return out;
}

/** Deletes cancelled jobs older than the retention (completed jobs are deleted at once; dead ones stay until retried). */
export async function pruneFinished(db: DbOrTrx, olderThanHours: number): Promise<number> {
  const r = await db
    .deleteFrom('bridge_jobs')
    .where('state', '=', 'cancelled')
    .where('finished_at', '<', sql<Date>`now() - make_interval(hours => ${olderThanHours})`)
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}
