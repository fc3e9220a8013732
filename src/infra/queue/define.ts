import { sql, type RawBuilder } from 'kysely';
import { z } from 'zod';
import type { Db } from '../db/index.js';
import type { Logger } from '../log/logger.js';
import { PermanentJobError } from './errors.js';
import {
  defaultMaxAttempts,
  enqueue,
  enqueueFromSql,
  jobColumnsSql,
  PRIORITY,
  type DbOrTrx,
  type Job,
  type JobColumnsSql,
  type NewJob,
} from './jobs.js';

/** What the queue hands a running job (besides its payload). */
export interface HandlerContext {
  /** Aborted when the job must stop (shutdown timeout); handlers pass it to their I/O. */
  signal: AbortSignal;
  log: Logger;
  /** The bridge's database; in `onFailed`, the transaction that also marks the job dead. */
  db: Db;
}

/** The context of a defined job: the queue's, plus the dependencies given when it was registered. */
export interface JobContext<D> extends HandlerContext {
  deps: D;
}

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/** Per-enqueue overrides of a definition's defaults. */
export interface JobOverrides {
  orderingKey?: string | null;
  scope?: string | null;
  dedupeKey?: string | null;
  runAt?: Date;
  priority?: number;
  maxAttempts?: number;
}

export interface JobSpec<P, D> {
  /** The `bridge_jobs.kind` string; unique per bridge. */
  kind: string;
  /** Parsed once when the job starts; a payload that does not parse makes the job dead with the reason. */
  payload: z.ZodType<P>;
  /** Jobs sharing a key run one at a time, in enqueue order. */
  orderingKey?(payload: P): string | null;
  /** Grouping for pause / resume / cancel (see src/platform/keys.ts). */
  scope?(payload: P): string | null;
  /** While a job with this key exists, enqueueing a duplicate is a no-op. */
  dedupeKey?(payload: P): string | null;
  /** Default PRIORITY.normal. */
  priority?: number;
  /** Default JOB_MAX_ATTEMPTS. */
  maxAttempts?: number;
  /** Default the pool's. */
  backoff?: BackoffPolicy;
  perform(payload: P, job: Job<P>, ctx: JobContext<D>): Promise<void>;
  /**
   * Called once, when a failure is final (a PermanentJobError, the last attempt, or the last attempt's lease
   * expiring because its worker died), inside the transaction that marks the job dead (`ctx.db`): keep it to
   * database writes. Never called for retries, deferrals (RetryLaterError), pauses, shutdown releases, or a payload
   * that does not parse. If it throws, its writes roll back and the job is still marked dead.
   */
  onFailed?(payload: P, job: Job<P>, err: unknown, ctx: JobContext<D>): Promise<void>;
  /**
   * Called after a failed attempt that the queue will retry with backoff (not for RetryLaterError or PauseJobError),
   * once the retry is recorded; for bookkeeping such as metrics. Best effort: an error is logged, nothing more.
   */
  onRetry?(payload: P, job: Job<P>, err: unknown, ctx: JobContext<D>): Promise<void>;
}

/** A typed job kind: enqueue it anywhere, register it once with `pool.register(def, opts)`. */
export interface JobDefinition<P, D = undefined> {
  readonly kind: string;
  readonly spec: JobSpec<P, D>;
  /** The row to insert, with the definition's keys and defaults (for `enqueue(db, [...])` batches). */
  job(payload: P, overrides?: JobOverrides): NewJob<P>;
  /** Enqueues inside `db`, which may be the caller's transaction. Returns the new id (none for a duplicate). */
  enqueue(db: DbOrTrx, payload: P, overrides?: JobOverrides): Promise<number[]>;
  /** Body of a data-modifying CTE that enqueues this job once per row of CTE `from` (see enqueueFromSql). */
  fromSql(from: string, payload: P, overrides?: JobOverrides, where?: RawBuilder<unknown>): RawBuilder<unknown>;
  /**
   * The column values for `insert into bridge_jobs (${JOB_INSERT_COLUMNS}) select … from …` where the payload and
   * keys are SQL over the selected rows (see jobColumnsSql); kind and priority are the definition's.
   */
  columnsSql(
    c: Omit<JobColumnsSql, 'kind' | 'priority' | 'maxAttempts'> & { maxAttempts?: number },
  ): RawBuilder<unknown>;
  /** Parses a stored payload: the value, or a PermanentJobError naming the offending field. */
  parse(raw: unknown): P;
}

/** Formats zod issues as `field: message; …` for a job's last_error. */
function describeIssues(e: z.ZodError): string {
  return e.issues
    .map((i) => `${i.path.length ? i.path.join('.') : '(payload)'}: ${i.message}`)
    .join('; ')
    .slice(0, 1000);
}

/**
 * Declares a job kind: its payload schema, keys and defaults, and what running it does. The compiler ties the
 * payload given to `enqueue` to the one `perform` and `onFailed` receive; `D` is what the registering module hands
 * in (`pool.register(def, { deps })`; `{ deps: undefined }` for a kind that needs none), so definitions can live at
 * module level and be enqueued from anywhere. Enqueue-time defaults come from the definition, per-call `overrides`
 * win (e.g. an ordering key the payload does not carry).
 */
export function defineJob<P, D = undefined>(spec: JobSpec<P, D>): JobDefinition<P, D> {
  const job = (payload: P, o: JobOverrides = {}): NewJob<P> => {
    const n: NewJob<P> = {
      kind: spec.kind,
      payload,
      orderingKey: o.orderingKey !== undefined ? o.orderingKey : (spec.orderingKey?.(payload) ?? null),
      scope: o.scope !== undefined ? o.scope : (spec.scope?.(payload) ?? null),
      dedupeKey: o.dedupeKey !== undefined ? o.dedupeKey : (spec.dedupeKey?.(payload) ?? null),
      priority: o.priority ?? spec.priority ?? PRIORITY.normal,
    };
    const maxAttempts = o.maxAttempts ?? spec.maxAttempts;
    if (maxAttempts !== undefined) n.maxAttempts = maxAttempts;
    if (o.runAt) n.runAt = o.runAt;
    return n;
  };
  return {
    kind: spec.kind,
    spec,
    job,
    enqueue: (db, payload, o) => enqueue(db, job(payload, o)),
    fromSql: (from, payload, o, where) => enqueueFromSql(from, job(payload, o), where),
    columnsSql: (c) =>
      jobColumnsSql({
        ...c,
        kind: sql`${spec.kind}::text`,
        priority: spec.priority ?? PRIORITY.normal,
        maxAttempts: c.maxAttempts ?? spec.maxAttempts ?? defaultMaxAttempts(),
      }),
    parse(raw) {
      const r = spec.payload.safeParse(raw);
      if (!r.success)
        throw new PermanentJobError(`invalid payload for job kind "${spec.kind}": ${describeIssues(r.error)}`);
      return r.data;
    },
  };
}

/**
 * A definition without a schema or keys, for ad-hoc kinds (tests, the queue benchmark): the payload is not checked,
 * so it is typed only as far as the caller says.
 */
export function untypedJob<P = unknown>(
  kind: string,
  fn: (job: Job<P>, ctx: HandlerContext) => Promise<void>,
): JobDefinition<P> {
  return defineJob<P>({ kind, payload: z.custom<P>(), perform: (_p, job, ctx) => fn(job, ctx) });
}
