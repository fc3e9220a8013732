import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { sql } from 'kysely';
import type { Logger } from '../log/logger.js';
import type { Db } from '../db/index.js';
import { untypedJob, type BackoffPolicy, type HandlerContext, type JobDefinition } from './define.js';
import { PauseJobError, PermanentJobError, RetryLaterError } from './errors.js';
import { prepared } from '../db/prepared.js';
import { promoteStranded, toJob, UNFINISHED_STATES, type Job, type JobRow } from './jobs.js';

export type { BackoffPolicy, HandlerContext } from './define.js';
/** A handler of an ad-hoc kind registered by name (tests, benchmark): see `untypedJob`. */
export type JobHandler<P = unknown> = (job: Job<P>, ctx: HandlerContext) => Promise<void>;

/** How a kind runs in this pool. */
export interface RegisterOptions {
  /** Overrides the definition's backoff. */
  backoff?: BackoffPolicy;
  /** Caps how many jobs of this kind run at once in this pool. */
  maxConcurrent?: number;
  /** Run in slots of its own beside the shared pool (needs maxConcurrent). */
  ownSlots?: boolean;
  /**
   * Caps how many jobs of this kind and one scope (e.g. one location) run at once in this pool; claims of the kind
   * then go round-robin across scopes, so one location's backlog never fills every slot (issue 18).
   */
  maxPerScope?: number;
}

/**
 * The queue's one rule for "this failure is the job's last": a PermanentJobError, or this was the last attempt;
 * RetryLaterError and PauseJobError never are. Only the queue applies it: it then calls the kind's `onFailed`.
 */
export function isFinalFailure(job: Pick<Job, 'attempts' | 'maxAttempts'>, err: unknown): boolean {
  if (err instanceof RetryLaterError || err instanceof PauseJobError) return false;
  return err instanceof PermanentJobError || job.attempts >= job.maxAttempts;
}

/** A registered kind with its types erased: parse, run, and the final-failure hook, closed over the definition. */
interface Registered {
  run(job: Job, ctx: HandlerContext): Promise<void>;
  /** Calls the kind's onFailed (when it has one) for a job whose failure is final; db is the marking transaction. */
  failed?: (job: Job, err: unknown, ctx: HandlerContext) => Promise<void>;
  /** Calls the kind's onRetry after a failed attempt that will be retried. */
  retried?: (job: Job, err: unknown, ctx: HandlerContext) => Promise<void>;
  backoff?: BackoffPolicy;
  maxConcurrent?: number;
  ownSlots?: boolean;
  maxPerScope?: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, maxMs: 60 * 60 * 1000 };

/**
 * Exponential backoff with "equal jitter": half the exponential delay is fixed, half random,
 * so retries of a burst of failures spread out but never come back sooner than half the step.
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  rnd: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + rnd() * (exp / 2));
}

export interface WorkerPoolOptions {
  db: Db;
  /** Handle for claim/complete bookkeeping (see DatabaseHandle.queueDb); defaults to `db`. */
  queueDb?: Db;
  log: Logger;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  /**
   * Max jobs leased per claim statement. Jobs beyond the free slots wait in a local buffer
   * (still leased and heartbeated), which amortizes one claim over many jobs.
   */
  batchSize?: number;
  workerId?: string;
  /** Subscribes to job notifications (LISTEN); returns an unsubscribe function. */
  listen?: (onNotify: () => void) => Promise<() => Promise<void>>;
  backoff?: BackoffPolicy;
  onJobEvent?: (e: JobEvent) => void;
}

export interface JobEvent {
  kind: string;
  outcome: 'done' | 'retry' | 'dead' | 'paused' | 'deferred' | 'released';
  durationMs: number;
  error?: string;
}

interface InFlight {
  job: Job;
  controller: AbortController;
  done: Promise<void>;
}

/**
 * Runs jobs from bridge_jobs. Claims batches with FOR UPDATE SKIP LOCKED under a lease,
 * heartbeats the lease of running jobs, resets jobs whose worker died (lease expired),
 * and group-commits completions (one UPDATE for all jobs finished since the last flush).
 */
export class WorkerPool {
  readonly workerId: string;
  readonly events = new EventEmitter();
  readonly #handlers = new Map<string, Registered>();
  /** Running jobs per kind and scope (for per-scope caps), keyed by scopeKey(). */
  readonly #runningByScope = new Map<string, number>();
  /** Running jobs that occupy the shared `concurrency` slots (all but ownSlots kinds). */
  #sharedInFlight = 0;
  /** Running jobs per kind (for per-kind concurrency caps). */
  readonly #runningByKind = new Map<string, number>();
  readonly #inFlight = new Map<number, InFlight>();
  #running = false;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #wakePending = false;
  #timers: NodeJS.Timeout[] = [];
  #unlisten: (() => Promise<void>) | undefined;
  #buffer: Job[] = [];
  #lastClaimMs = 0;
  #lastClaimAt = 0;
  #lastClaimShort = false;
  #completions: Array<{ id: number; attempts: number; orderingKey: string | null }> = [];
  #flushing: Promise<void> | undefined;
  #lastError: string | undefined;
  readonly #qdb: Db;

  constructor(private readonly opts: WorkerPoolOptions) {
    this.workerId = opts.workerId ?? `${process.pid}-${randomBytes(4).toString('hex')}`;
    this.#qdb = opts.queueDb ?? opts.db;
  }

  /**
   * Registers a job kind (see defineJob); `deps` is what its perform and onFailed receive as `ctx.deps`.
   * `maxConcurrent` caps how many jobs of this kind run at once in this pool. With `ownSlots` the
   * kind runs in slots of its own beside the shared pool (up to its cap): for kinds that mostly
   * wait inside the handler (e.g. for a GHL rate-limit slot), so waiting never takes a slot from
   * work that could run.
   */
  register<P, D>(def: JobDefinition<P, D>, options: RegisterOptions & { deps: D }): this;
  /** An ad-hoc kind by name, payload unchecked (tests, benchmark): the same as `register(untypedJob(kind, fn))`. */
  register<P = unknown>(kind: string, fn: JobHandler<P>, options?: RegisterOptions): this;
  register<P, D>(
    a: JobDefinition<P, D> | string,
    b: JobHandler<P> | (RegisterOptions & { deps: D }),
    c?: RegisterOptions,
  ): this {
    if (typeof a === 'string') {
      if (typeof b !== 'function') throw new Error(`job kind "${a}": a handler function is required`);
      return this.#add(untypedJob(a, b), c ?? {}, undefined);
    }
    if (typeof b === 'function') throw new Error(`job kind "${a.kind}": register a definition with its options`);
    return this.#add(a, b, b.deps);
  }

  #add<P, D>(def: JobDefinition<P, D>, options: RegisterOptions, deps: D): this {
    const kind = def.kind;
    if (this.#handlers.has(kind)) throw new Error(`a handler for job kind "${kind}" is already registered`);
    if (options.ownSlots && !options.maxConcurrent) throw new Error(`job kind "${kind}": ownSlots needs maxConcurrent`);
    const { spec } = def;
    const withDeps = (ctx: HandlerContext) => ({ ...ctx, deps });
    /** Wraps a hook: parses the payload, which a hook needs typed (a payload that does not parse skips it). */
    const hook = (fn: NonNullable<typeof spec.onFailed>) => async (job: Job, err: unknown, ctx: HandlerContext) => {
      let payload: P;
      try {
        payload = def.parse(job.payload);
      } catch {
        return; // nothing typed to hand it: the job's last_error names the field
      }
      await fn(payload, { ...job, payload }, err, withDeps(ctx));
    };
    const backoff = options.backoff ?? spec.backoff;
    this.#handlers.set(kind, {
      run: (job, ctx) => {
        const payload = def.parse(job.payload);
        return spec.perform(payload, { ...job, payload }, withDeps(ctx));
      },
      ...(spec.onFailed ? { failed: hook(spec.onFailed) } : {}),
      ...(spec.onRetry ? { retried: hook(spec.onRetry) } : {}),
      ...(backoff ? { backoff } : {}),
      ...(options.maxConcurrent ? { maxConcurrent: Math.max(1, options.maxConcurrent) } : {}),
      ...(options.ownSlots ? { ownSlots: true } : {}),
      ...(options.maxPerScope ? { maxPerScope: Math.max(1, options.maxPerScope) } : {}),
    });
    return this;
  }

  /** Can this buffered job start now (its kind's cap, and a shared slot unless it has its own)? */
  #canStart(job: Job): boolean {
    if (!this.#capacity(job.kind)) return false;
    const perScope = this.#handlers.get(job.kind)?.maxPerScope;
    if (perScope !== undefined && job.scope !== null && (this.#runningByScope.get(scopeKey(job)) ?? 0) >= perScope)
      return false;
    return this.#handlers.get(job.kind)?.ownSlots === true || this.#sharedInFlight < this.opts.concurrency;
  }

  #capacity(kind: string, extra = 0): boolean {
    const cap = this.#handlers.get(kind)?.maxConcurrent;
    return cap === undefined || (this.#runningByKind.get(kind) ?? 0) + extra < cap;
  }

  /** Kinds worth claiming now: uncapped, or capped with room once buffered jobs are counted. */
  #claimableKinds(): string[] {
    const buffered = new Map<string, number>();
    for (const j of this.#buffer) buffered.set(j.kind, (buffered.get(j.kind) ?? 0) + 1);
    return this.kinds.filter((k) => this.#capacity(k, buffered.get(k) ?? 0));
  }

  #uncappedBuffered(): number {
    return this.#buffer.filter((j) => this.#handlers.get(j.kind)?.maxConcurrent === undefined).length;
  }

  /** A capped kind has room that is not yet filled from the buffer: claim it even when the buffer is deep. */
  #cappedRoom(): boolean {
    for (const [k, h] of this.#handlers) {
      if (h.maxConcurrent === undefined) continue;
      if ((this.#runningByKind.get(k) ?? 0) + this.#buffer.filter((j) => j.kind === k).length < h.maxConcurrent)
        return true;
    }
    return false;
  }

  /** Scopes of `kind` whose running and buffered jobs in this pool have reached `max`. */
  #perScope(kind: string, max: number): { max: number; full: string[] } {
    const n = new Map<string, number>();
    for (const [key, count] of this.#runningByScope) if (key.startsWith(`${kind}\0`)) n.set(key, count);
    for (const j of this.#buffer)
      if (j.kind === kind && j.scope !== null) n.set(scopeKey(j), (n.get(scopeKey(j)) ?? 0) + 1);
    const full: string[] = [];
    for (const [key, count] of n) if (count >= max) full.push(key.slice(kind.length + 1));
    return { max, full };
  }

  /** Starts buffered jobs that can start (free slot, kind under its cap); order otherwise kept. */
  #startRunnable(): void {
    for (let i = 0; i < this.#buffer.length && !this.#stopping;) {
      const job = this.#buffer[i]!;
      if (this.#canStart(job)) {
        this.#buffer.splice(i, 1);
        this.#run(job);
      } else i++;
    }
  }

  get kinds(): string[] {
    return [...this.#handlers.keys()];
  }

  get running(): boolean {
    return this.#running && !this.#stopping;
  }

  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  /** Wakes the claim loop (e.g. right after this process enqueued and committed). */
  notify(): void {
    this.#wakePending = true;
    this.#wake?.();
  }

  async start(): Promise<void> {
    if (this.#running) return;
    if (this.opts.concurrency <= 0) return;
    this.#running = true;
    this.#stopping = false;
    if (this.opts.listen) this.#unlisten = await this.opts.listen(() => this.notify());
    const every = (ms: number, fn: () => Promise<unknown>) => {
      // A run still going when the next is due is not overlapped: a slow statement under load must not pile up.
      let busy = false;
      const t = setInterval(() => {
        if (busy) return;
        busy = true;
        fn()
          .catch((e: unknown) => this.opts.log.warn({ err: e }, 'queue maintenance failed'))
          .finally(() => {
            busy = false;
          });
      }, ms);
      t.unref();
      this.#timers.push(t);
    };
    every(Math.max(50, Math.floor(this.opts.leaseMs / 3)), () => this.#heartbeat());
    every(Math.max(100, Math.floor(this.opts.leaseMs / 2)), () => this.reapExpired());
    every(1000, async () => {
      if ((await promoteStranded(this.#qdb)) > 0) this.notify();
    });
    this.#loop = this.#claimLoop();
  }

  /**
   * Stops claiming, waits up to `timeoutMs` for running jobs, then aborts the rest and releases
   * them back to 'ready' (their attempt is not counted). Nothing in flight is lost.
   */
  async stop(timeoutMs: number): Promise<{ finished: number; released: number }> {
    if (!this.#running) return { finished: 0, released: 0 };
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    // Leased but not started: hand back at once.
    const unstarted = this.#buffer.splice(0);
    if (unstarted.length) await this.#release(unstarted.map((j) => j.id));
    const pending = [...this.#inFlight.values()];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    await Promise.race([Promise.all(pending.map((p) => p.done)), timeout]);
    clearTimeout(timer);
    const left = [...this.#inFlight.values()];
    for (const p of left) p.controller.abort(new Error('worker shutting down'));
    let released = 0;
    if (left.length) {
      released = await this.#release(left.map((p) => p.job.id));
      for (const p of left) this.#inFlight.delete(p.job.id);
    }
    await this.#flush();
    if (this.#unlisten) await this.#unlisten().catch(() => {});
    this.#running = false;
    return { finished: pending.length - left.length, released };
  }

  /** Returns leased jobs to 'ready' without counting the attempt. */
  async #release(ids: number[]): Promise<number> {
    const r = await sql`
      update bridge_jobs set state = 'ready', attempts = greatest(attempts - 1, 0), locked_by = null,
        locked_until = null, run_at = now(), updated_at = now()
      where id in (${sql.join(ids)}) and state = 'running' and locked_by = ${this.workerId}`.execute(this.opts.db);
    return Number(r.numAffectedRows ?? 0);
  }

  /**
   * Resets jobs whose lease expired (their worker died) so another worker picks them up. A job that was on its last
   * attempt is dead: when its kind has an onFailed, that runs in the same transaction.
   */
  async reapExpired(): Promise<number> {
    const reap = prepared<JobRow>(sql`
      update bridge_jobs set
        state = case when attempts >= max_attempts then 'dead' else 'ready' end,
        last_error = coalesce(last_error || ' | ', '') || 'lease expired: worker stopped without finishing (attempt ' || attempts || ')',
        finished_at = case when attempts >= max_attempts then now() else null end,
        locked_by = null, locked_until = null, updated_at = now()
      where state = 'running' and locked_until < now()
      returning *`);
    let n: number;
    if (![...this.#handlers.values()].some((h) => h.failed)) {
      n = Number((await reap.execute(this.#qdb)).numAffectedRows ?? 0);
    } else {
      n = await this.opts.db.transaction().execute(async (trx) => {
        const rows = (await reap.execute(trx)).rows;
        for (const row of rows) {
          const failed = this.#handlers.get(row.kind)?.failed;
          if (row.state !== 'dead' || !failed) continue;
          const job = toJob(row);
          const log = this.opts.log.child({ jobId: job.id, jobKind: job.kind, attempt: job.attempts });
          const err = new Error(row.last_error ?? 'lease expired');
          await this.#onFailedIn(trx, failed, job, err, { signal: new AbortController().signal, log, db: trx });
        }
        return rows.length;
      });
    }
    if (n > 0) this.notify();
    return n;
  }

  /** Runs a kind's onFailed inside `trx` under a savepoint: if it throws, its writes roll back and the caller's stay. */
  async #onFailedIn(
    trx: Db,
    failed: NonNullable<Registered['failed']>,
    job: Job,
    err: unknown,
    ctx: HandlerContext,
  ): Promise<void> {
    await sql`savepoint job_on_failed`.execute(trx);
    try {
      await failed(job, err, ctx);
      await sql`release savepoint job_on_failed`.execute(trx);
    } catch (e) {
      await sql`rollback to savepoint job_on_failed`.execute(trx);
      ctx.log.error({ err: e }, 'onFailed of a dead job failed; the job is dead without it');
    }
  }

  async #heartbeat(): Promise<void> {
    // Everything we hold: running, buffered, and finished-but-not-yet-flushed.
    const ids = [...this.#inFlight.keys(), ...this.#buffer.map((j) => j.id), ...this.#completions.map((c) => c.id)];
    if (!ids.length) return;
    await sql`
      update bridge_jobs set locked_until = now() + make_interval(secs => ${this.opts.leaseMs / 1000})
      where id in (${sql.join(ids)}) and state = 'running' and locked_by = ${this.workerId}`.execute(this.#qdb);
  }

  /**
   * Claims up to `limit` jobs in one statement. Kinds with a concurrency cap are claimed by their
   * own sub-select, limited to their free room, so a backlog of them can never fill the buffer and
   * starve others.
   */
  async #claim(limit: number): Promise<Job[]> {
    const kinds = this.#claimableKinds();
    if (!kinds.length) return [];
    // One group for the uncapped kinds, one per capped kind with room: all claimed by one statement.
    const groups: Array<{ kinds: string[]; limit: number; perScope: { max: number; full: string[] } }> = [];
    // Kinds without a per-scope cap: at most 2 × concurrency of one scope per claim, none left out.
    const open = { max: this.opts.concurrency * 2, full: [] };
    const uncapped =
      this.#uncappedBuffered() < this.opts.concurrency
        ? kinds.filter((k) => this.#handlers.get(k)?.maxConcurrent === undefined)
        : [];
    if (uncapped.length) groups.push({ kinds: uncapped, limit, perScope: open });
    for (const k of kinds) {
      const h = this.#handlers.get(k);
      const cap = h?.maxConcurrent;
      if (cap === undefined) continue;
      const room = cap - (this.#runningByKind.get(k) ?? 0) - this.#buffer.filter((j) => j.kind === k).length;
      if (room <= 0) continue;
      const perScope = h?.maxPerScope === undefined ? open : this.#perScope(k, h.maxPerScope);
      groups.push({ kinds: [k], limit: Math.min(room, limit), perScope });
    }
    if (!groups.length) return [];
    const ready = (g: { kinds: string[] }, j: string) => sql`${sql.ref(`${j}.state`)} = 'ready'
          and ${sql.ref(`${j}.run_at`)} <= now() and ${sql.ref(`${j}.kind`)} in (${sql.join(g.kinds)})
          and (${sql.ref(`${j}.ordering_key`)} is null or not exists (
            select 1 from bridge_jobs p
            where p.ordering_key = ${sql.ref(`${j}.ordering_key`)} and p.id < ${sql.ref(`${j}.id`)}
              and p.state in ${UNFINISHED_STATES}))`;
    // Round-robin across scopes (every scope's first job, then every scope's second, …) among the oldest ready jobs: a
    // bounded window read from the claim index, so a claim's cost does not grow with the backlog. Per group at most
    // `perScope.max` jobs of one scope; scopes already at their cap in this pool are left out. One location's burst
    // never fills the buffer, so another location's job is claimed, and started, within a few jobs. (FOR UPDATE cannot
    // sit beside a window function, so the ranking is a subquery and the lock is taken on the rows it picked; the
    // locking level repeats the readiness condition because PostgreSQL re-checks only that level's own conditions on
    // a row another claim changed meanwhile: without it a job just claimed elsewhere could be claimed twice.)
    const ctes = groups.map(
      (g, i) => sql`${sql.raw(`c${i}`)} as (
        select j.id from bridge_jobs j
        where ${ready(g, 'j')} and j.id in (
          select r.id from (
            select x.id, x.priority, x.run_at,
              row_number() over (partition by coalesce(x.scope, x.id::text) order by x.priority, x.run_at, x.id) as rn
            from (
              select y.id, y.priority, y.run_at, y.scope from bridge_jobs y
              where ${ready(g, 'y')} and (y.scope is null or not (y.scope = any(${g.perScope.full}::text[])))
              order by y.priority, y.run_at, y.id
              limit ${Math.max(1000, g.limit * 10)}
            ) x
          ) r
          where r.rn <= ${g.perScope.max}
          order by r.priority, r.rn, r.run_at, r.id
          limit ${g.limit})
        for update skip locked
      )`,
    );
    const ids = sql.join(
      groups.map((_, i) => sql`select id from ${sql.raw(`c${i}`)}`),
      sql` union all `,
    );
    const r = await prepared<JobRow>(sql`
      with ${sql.join(ctes)}
      update bridge_jobs j set state = 'running', attempts = j.attempts + 1, locked_by = ${this.workerId},
        locked_until = now() + make_interval(secs => ${this.opts.leaseMs / 1000}), updated_at = now()
      where j.id in (${ids})
      returning j.*`).execute(this.#qdb);
    return r.rows.map((row) => toJob(row)).sort((a, b) => a.priority - b.priority || a.id - b.id);
  }

  async #claimLoop(): Promise<void> {
    const batchMax = Math.max(this.opts.batchSize ?? this.opts.concurrency * 10, this.opts.concurrency);
    while (!this.#stopping) {
      // Refill the local buffer when it runs low, then start jobs into free slots.
      let claimed = -1;
      if (this.#uncappedBuffered() < this.opts.concurrency || this.#cappedRoom()) {
        const want = Math.max(1, batchMax - this.#uncappedBuffered());
        await this.#pace();
        this.#wakePending = false;
        try {
          const started = performance.now();
          const jobs = await this.#claim(want);
          this.#lastClaimMs = performance.now() - started;
          this.#lastClaimAt = performance.now();
          this.#lastClaimShort = jobs.length < want;
          claimed = jobs.length;
          this.#buffer = interleaveScopes([...this.#buffer, ...jobs]);
          this.#lastError = undefined;
          if (claimed === want) this.#wakePending = true; // probably more waiting
        } catch (e) {
          const msg = (e as Error).message;
          if (msg !== this.#lastError) this.opts.log.error({ err: e }, 'claiming jobs failed; retrying');
          this.#lastError = msg;
          await this.#sleep(Math.min(5000, this.opts.pollMs * 4));
          continue;
        }
      }
      this.#startRunnable();
      if (this.#stopping) break;
      if (this.#buffer.length && !this.#buffer.some((j) => this.#canStart(j))) {
        await this.#sleep(this.opts.pollMs); // woken when a slot frees
        continue;
      }
      if (this.#wakePending && this.#buffer.length < this.opts.concurrency) continue;
      if (claimed === 0 || this.#buffer.length === 0) await this.#sleep(this.opts.pollMs);
    }
  }

  /**
   * After a claim that came back short, the next one waits at least twice that claim's duration.
   * Wake-ups (NOTIFY on every enqueue, every flush, every freed slot) would otherwise re-run the
   * claim query back to back; with ordering keys most ready rows are blocked and each claim
   * scans them, so unpaced claims can eat the database (seen on PGlite: 10 claims per message).
   * This bounds claiming to about a third of the database's time and adds at most ~2 claim
   * durations of latency; a full batch is re-claimed at once.
   */
  async #pace(): Promise<void> {
    if (!this.#lastClaimShort) return;
    const wait = this.#lastClaimAt + 2 * this.#lastClaimMs - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }

  #run(job: Job): void {
    const controller = new AbortController();
    const entry: InFlight = { job, controller, done: Promise.resolve() };
    this.#inFlight.set(job.id, entry);
    this.#runningByKind.set(job.kind, (this.#runningByKind.get(job.kind) ?? 0) + 1);
    const sk =
      job.scope !== null && this.#handlers.get(job.kind)?.maxPerScope !== undefined ? scopeKey(job) : undefined;
    if (sk) this.#runningByScope.set(sk, (this.#runningByScope.get(sk) ?? 0) + 1);
    const shared = this.#handlers.get(job.kind)?.ownSlots !== true;
    if (shared) this.#sharedInFlight++;
    entry.done = this.#execute(job, controller).finally(() => {
      this.#inFlight.delete(job.id);
      if (shared) this.#sharedInFlight--;
      this.#runningByKind.set(job.kind, (this.#runningByKind.get(job.kind) ?? 1) - 1);
      if (sk) {
        const left = (this.#runningByScope.get(sk) ?? 1) - 1;
        if (left > 0) this.#runningByScope.set(sk, left);
        else this.#runningByScope.delete(sk);
      }
      this.#wake?.(); // a slot is free
    });
  }

  async #execute(job: Job, controller: AbortController): Promise<void> {
    const handler = this.#handlers.get(job.kind);
    const started = performance.now();
    const log = this.opts.log.child({ jobId: job.id, jobKind: job.kind, attempt: job.attempts });
    const emit = (outcome: JobEvent['outcome'], error?: string) => {
      const e: JobEvent = {
        kind: job.kind,
        outcome,
        durationMs: performance.now() - started,
        ...(error ? { error } : {}),
      };
      this.opts.onJobEvent?.(e);
      this.events.emit('job', e, job);
    };
    try {
      if (!handler) throw new PermanentJobError(`no handler registered for job kind "${job.kind}"`);
      await handler.run(job, { signal: controller.signal, log, db: this.opts.db });
      if (controller.signal.aborted && !this.#inFlight.has(job.id)) return; // released at shutdown
      // The slot frees now; the completion is group-committed by the flusher. Until then the job
      // stays leased to us (and heartbeated), so a crash in between only means it runs again.
      this.#completions.push({ id: job.id, attempts: job.attempts, orderingKey: job.orderingKey });
      this.#scheduleFlush();
      emit('done');
    } catch (err) {
      if (controller.signal.aborted && this.#stopping) {
        emit('released', (err as Error).message);
        return; // stop() releases it
      }
      await this.#fail(job, err, handler, controller.signal, log)
        .then((outcome) => emit(outcome, errorText(err)))
        .catch((e: unknown) =>
          log.error({ err: e }, 'recording job failure failed; the lease will expire and the job re-run'),
        );
    }
  }

  async #fail(
    job: Job,
    err: unknown,
    handler: Registered | undefined,
    signal: AbortSignal,
    log: Logger,
  ): Promise<JobEvent['outcome']> {
    const message = errorText(err);
    const fence = sql`id = ${job.id} and attempts = ${job.attempts} and state = 'running' and locked_by = ${this.workerId}`;
    if (err instanceof RetryLaterError) {
      await sql`update bridge_jobs set state = 'ready', attempts = attempts - 1, last_error = ${message},
          run_at = now() + make_interval(secs => ${Math.max(0, err.delayMs) / 1000}), locked_by = null, locked_until = null, updated_at = now()
        where ${fence}`.execute(this.#qdb);
      log.debug({ delayMs: err.delayMs, reason: message }, 'job deferred');
      return 'deferred';
    }
    if (err instanceof PauseJobError) {
      await sql`update bridge_jobs set state = 'paused', attempts = attempts - 1, last_error = ${message},
          locked_by = null, locked_until = null, updated_at = now()
        where ${fence}`.execute(this.#qdb);
      log.warn({ reason: message }, 'job paused');
      return 'paused';
    }
    if (isFinalFailure(job, err)) {
      // A dead job no longer holds back its ordering key: promote the next one.
      const markDead = (db: Db) =>
        sql<{ n: number }>`
          with f as (
            update bridge_jobs set state = 'dead', last_error = ${message}, finished_at = now(),
              locked_by = null, locked_until = null, updated_at = now()
            where ${fence}
            returning ordering_key
          ), p as (${promoteNextSql(sql`select ordering_key from f where ordering_key is not null`)})
          select count(*)::int as n from f`.execute(db);
      const failed = handler?.failed;
      if (!failed) await markDead(this.opts.db);
      else {
        // The kind's onFailed runs in the transaction that marks the job dead, and only if this worker still held
        // the job: exactly once per dead job.
        await this.opts.db.transaction().execute(async (trx) => {
          const r = await markDead(trx);
          if (!Number(r.rows[0]?.n)) return;
          await this.#onFailedIn(trx, failed, job, err, { signal, log, db: trx });
        });
      }
      log.error({ err }, `job dead after ${job.attempts} attempt(s)`);
      return 'dead';
    }
    const delay = backoffDelay(job.attempts, handler?.backoff ?? this.opts.backoff);
    const r = await sql`update bridge_jobs set state = 'ready', last_error = ${message},
        run_at = now() + make_interval(secs => ${delay / 1000}), locked_by = null, locked_until = null, updated_at = now()
      where ${fence}`.execute(this.#qdb);
    log.warn({ err, retryInMs: delay }, 'job failed; will retry');
    if (handler?.retried && Number(r.numAffectedRows ?? 0) > 0)
      await handler
        .retried(job, err, { signal, log, db: this.opts.db })
        .catch((e: unknown) => log.warn({ err: e }, 'onRetry of a job failed'));
    return 'retry';
  }

  #scheduleFlush(): void {
    if (!this.#flushing) void this.#flush().catch(() => {});
  }

  /**
   * Group commit: one DELETE removes every job finished since the previous flush. Completions
   * that arrive while a flush runs go into the next one. On a database error they are kept and
   * retried; if that never succeeds the leases expire and the jobs run again (at-least-once).
   */
  async #flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = (async () => {
      let failures = 0;
      while (this.#completions.length) {
        const batch = this.#completions;
        this.#completions = [];
        const ids = batch.map((b) => b.id);
        const attempts = batch.map((b) => b.attempts);
        try {
          // Delete the finished jobs and, in the same statement, promote the next blocked job of
          // each of their ordering keys.
          await prepared(sql`
            with d as (
              delete from bridge_jobs
              where id = any(${ids}::bigint[])
                and attempts = (${attempts}::int[])[array_position(${ids}::bigint[], id)]
                and state = 'running' and locked_by = ${this.workerId}
              returning ordering_key
            )
            ${promoteNextSql(sql`select ordering_key from d where ordering_key is not null`)}`).execute(this.#qdb);
          failures = 0;
          this.notify(); // ordering-key successors may now be claimable
        } catch (e) {
          this.#completions.unshift(...batch);
          if (++failures === 1) this.opts.log.warn({ err: e }, 'recording job completions failed; retrying');
          if (this.#stopping && failures >= 3) throw e;
          await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** failures)));
        }
      }
    })().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  /** Resolves once every completion recorded so far is committed (tests, shutdown). */
  async drained(): Promise<void> {
    while (this.#flushing || this.#completions.length) await this.#flush();
  }
}

/**
 * Buffered jobs in the order they should start: by priority, then round-robin across scopes (each scope's first job,
 * then each scope's second, …), otherwise in the order they were claimed. A scope that just got a job is not queued
 * behind a batch of another scope's jobs claimed before it.
 */
function interleaveScopes(jobs: Job[]): Job[] {
  const seen = new Map<string, number>();
  const ranked = jobs.map((job, i) => {
    const key = job.scope ?? `#${job.id}`;
    const rank = seen.get(key) ?? 0;
    seen.set(key, rank + 1);
    return { job, rank, i };
  });
  ranked.sort((a, b) => a.job.priority - b.job.priority || a.rank - b.rank || a.i - b.i);
  return ranked.map((r) => r.job);
}

function scopeKey(job: Pick<Job, 'kind' | 'scope'>): string {
  return `${job.kind}\0${job.scope ?? ''}`;
}

/** UPDATE that makes the oldest blocked job of each key in `keys` (a subquery) ready. */
function promoteNextSql(keys: ReturnType<typeof sql>) {
  return sql`update bridge_jobs b set state = 'ready', updated_at = now()
    where b.id in (select min(x.id) from bridge_jobs x where x.state = 'blocked' and x.ordering_key in (${keys}) group by x.ordering_key)`;
}

function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`.slice(0, 4000);
  return String(err).slice(0, 4000);
}
