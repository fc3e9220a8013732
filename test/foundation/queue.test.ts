import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import {
  backoffDelay,
  cancelScope,
  enqueue,
  getJob,
  listJobs,
  pauseScope,
  promoteStranded,
  PauseJobError,
  PermanentJobError,
  resumeScope,
  retryJobs,
  RetryLaterError,
  WorkerPool,
  type JobHandler,
} from '../../src/infra/queue/index.js';
import { openTestStore, quietLog, STORE, waitFor, type TestStore } from '../helpers/store.js';
import { spawnTs } from '../fixtures/child.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function store(opts: { onDisk?: boolean } = {}): Promise<TestStore> {
  const s = await openTestStore(opts);
  cleanups.push(() => s.close());
  return s;
}

function pool(s: TestStore, opts: Partial<ConstructorParameters<typeof WorkerPool>[0]> = {}): WorkerPool {
  const p = new WorkerPool({ db: s.db, log: quietLog, concurrency: 10, leaseMs: 5000, pollMs: 20, ...opts });
  cleanups.push(() => p.stop(1000));
  return p;
}

async function state(s: TestStore, id: number) {
  return (await getJob(s.db, id)) ?? { state: 'done' as const };
}

/** Completed jobs are deleted. */
async function isDone(s: TestStore, id: number): Promise<boolean> {
  return (await getJob(s.db, id)) === undefined;
}

describe(`queue on ${STORE}`, () => {
  it('enqueues inside the caller transaction: a rolled-back transaction leaves no job', async () => {
    const s = await store();
    await expect(
      s.db.transaction().execute(async (trx) => {
        await enqueue(trx, { kind: 'k', payload: { a: 1 } });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await listJobs(s.db)).toHaveLength(0);
    await s.db.transaction().execute((trx) => enqueue(trx, { kind: 'k', payload: { a: 2 } }));
    const jobs = await listJobs(s.db);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.payload).toEqual({ a: 2 });
  });

  it('dedupe keys make enqueue idempotent', async () => {
    const s = await store();
    const a = await enqueue(s.db, { kind: 'k', payload: {}, dedupeKey: 'evt-1' });
    const b = await enqueue(s.db, { kind: 'k', payload: {}, dedupeKey: 'evt-1' });
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(0);
  });

  it('runs every job exactly once with two worker pools (N jobs → N completions, never concurrently)', async () => {
    const s = await store();
    // A second, independent connection pool on the same database (another "replica").
    const s2 = STORE === 'postgres' ? await openTestStoreSameSchema(s) : s;
    const N = 400;
    await enqueue(
      s.db,
      Array.from({ length: N }, (_, i) => ({ kind: 'count', payload: { i } })),
    );
    const running = new Set<number>();
    const runs = new Map<number, number>();
    let overlaps = 0;
    const handler: JobHandler = async (job) => {
      if (running.has(job.id)) overlaps++;
      running.add(job.id);
      await new Promise((r) => setImmediate(r));
      runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
      running.delete(job.id);
    };
    const p1 = pool(s).register('count', handler);
    const p2 = pool(s2).register('count', handler);
    await Promise.all([p1.start(), p2.start()]);
    await waitFor(
      async () =>
        (
          await s.db
            .selectFrom('bridge_jobs')
            .select(sql<number>`count(*)`.as('n'))
            .executeTakeFirst()
        )?.n === 0,
      {
        what: 'all jobs done',
      },
    );
    expect(overlaps).toBe(0);
    expect(runs.size).toBe(N);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  });

  it('keeps per-key order under concurrency: one job of a key at a time, in enqueue order', async () => {
    const s = await store();
    const keys = 8;
    const perKey = 25;
    const jobs = [];
    for (let n = 0; n < perKey; n++)
      for (let k = 0; k < keys; k++) jobs.push({ kind: 'ordered', payload: { k, n }, orderingKey: `conv-${k}` });
    await enqueue(s.db, jobs);
    const seen = new Map<number, number[]>();
    const busy = new Set<number>();
    let violations = 0;
    const handler: JobHandler<{ k: number; n: number }> = async (job) => {
      const { k, n } = job.payload;
      if (busy.has(k)) violations++;
      busy.add(k);
      await new Promise((r) => setTimeout(r, Math.random() * 3)); // let other keys interleave
      seen.set(k, [...(seen.get(k) ?? []), n]);
      busy.delete(k);
    };
    const p1 = pool(s, { concurrency: 6 }).register('ordered', handler);
    const p2 = pool(s, { concurrency: 6 }).register('ordered', handler);
    await Promise.all([p1.start(), p2.start()]);
    await waitFor(() => [...seen.values()].reduce((a, v) => a + v.length, 0) === keys * perKey, {
      what: 'all ordered jobs',
    });
    expect(violations).toBe(0);
    for (let k = 0; k < keys; k++) expect(seen.get(k)).toEqual(Array.from({ length: perKey }, (_, i) => i));
  });

  it('parks successors of an ordering key as blocked and promotes the next one when the head finishes or dies', async () => {
    const s = await store();
    const [a, b, c] = await enqueue(s.db, { kind: 'chain', payload: { n: 1 }, orderingKey: 'conv-x' }).then(
      async (x) => [
        ...x,
        ...(await enqueue(s.db, { kind: 'chain', payload: { n: 2 }, orderingKey: 'conv-x' })),
        ...(await enqueue(s.db, { kind: 'chain', payload: { n: 3 }, orderingKey: 'conv-x' })),
      ],
    );
    const [other] = await enqueue(s.db, { kind: 'chain', payload: { n: 9 }, orderingKey: 'conv-y' });
    expect([
      (await state(s, a!)).state,
      (await state(s, b!)).state,
      (await state(s, c!)).state,
      (await state(s, other!)).state,
    ]).toEqual(['ready', 'blocked', 'blocked', 'ready']);
    const order: number[] = [];
    const p = pool(s).register<{ n: number }>('chain', async (job) => {
      order.push(job.payload.n);
      if (job.payload.n === 2) throw new PermanentJobError('second fails for good');
    });
    await p.start();
    await waitFor(async () => (await isDone(s, c!)) && (await isDone(s, other!)));
    expect(order.filter((n) => n !== 9)).toEqual([1, 2, 3]); // the dead job released its successor
    expect((await state(s, b!)).state).toBe('dead');
  });

  it('promotes a job left blocked by a race (its head finished before it was committed)', async () => {
    const s = await store();
    // Simulate the race's outcome directly: a blocked job whose key has nothing unfinished ahead.
    // Two of them on one key: the sweep frees only the oldest; the second still waits for it, then follows in order.
    const [id] = await enqueue(s.db, { kind: 'stranded', payload: { n: 1 }, orderingKey: 'conv-z' });
    const [id2] = await enqueue(s.db, { kind: 'stranded', payload: { n: 2 }, orderingKey: 'conv-z' });
    await sql`update bridge_jobs set state = 'blocked' where id in (${id!}, ${id2!})`.execute(s.db);
    expect(await promoteStranded(s.db)).toBe(1);
    expect((await state(s, id!)).state).toBe('ready');
    expect((await state(s, id2!)).state).toBe('blocked');
    await sql`update bridge_jobs set state = 'blocked' where id = ${id!}`.execute(s.db);
    const ran: number[] = [];
    const handler: JobHandler<{ n: number }> = async (j) => {
      ran.push(j.payload.n);
    };
    const p = pool(s).register('stranded', handler);
    await p.start();
    await waitFor(async () => (await isDone(s, id!)) && (await isDone(s, id2!)), {
      what: 'stranded jobs promoted by the sweep and run',
    });
    expect(ran).toEqual([1, 2]);
  });

  it('caps a kind at maxConcurrent so a backlog of slow jobs never takes every slot', async () => {
    const s = await store();
    let releaseSlow!: () => void;
    const gate = new Promise<void>((r) => (releaseSlow = r));
    let slowRunning = 0;
    let maxSlow = 0;
    const p = pool(s, { concurrency: 4 });
    p.register(
      'slow',
      async () => {
        maxSlow = Math.max(maxSlow, ++slowRunning);
        await gate;
        slowRunning--;
      },
      { maxConcurrent: 2 },
    );
    let fast = 0;
    p.register('fast', async () => {
      fast++;
    });
    await enqueue(
      s.db,
      Array.from({ length: 30 }, () => ({ kind: 'slow', payload: {} })),
    );
    await enqueue(
      s.db,
      Array.from({ length: 20 }, () => ({ kind: 'fast', payload: {} })),
    );
    await p.start();
    // All fast jobs finish while the slow ones hold their two slots.
    await waitFor(() => fast === 20, { what: 'fast jobs done despite the slow backlog' });
    expect(maxSlow).toBe(2);
    releaseSlow();
    await waitFor(async () => (await listJobs(s.db)).length === 0, { what: 'slow backlog drained' });
    expect(maxSlow).toBe(2);
  });

  it('runs ownSlots kinds beside the shared pool: waiting jobs never take a shared slot', async () => {
    const s = await store();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let waiting = 0;
    let maxWaiting = 0;
    const p = pool(s, { concurrency: 2 });
    p.register(
      'waits',
      async () => {
        maxWaiting = Math.max(maxWaiting, ++waiting);
        await gate;
        waiting--;
      },
      { maxConcurrent: 3, ownSlots: true },
    );
    let fast = 0;
    p.register('fast', async () => {
      fast++;
    });
    await enqueue(
      s.db,
      Array.from({ length: 10 }, () => ({ kind: 'waits', payload: {} })),
    );
    await enqueue(
      s.db,
      Array.from({ length: 10 }, () => ({ kind: 'fast', payload: {} })),
    );
    await p.start();
    await waitFor(() => fast === 10 && waiting === 3, {
      what: 'fast jobs done while three waiters hold their own slots',
    });
    expect(p.inFlightCount).toBe(3); // more than the shared concurrency of 2
    release();
    await waitFor(async () => (await listJobs(s.db)).length === 0);
    expect(maxWaiting).toBe(3);
  });

  it('backs off exponentially with jitter, then marks the job dead keeping its error', async () => {
    const s = await store();
    const base = 200;
    const p = pool(s, { backoff: { baseMs: base, maxMs: 10_000 } });
    const attemptsSeen: number[] = [];
    p.register('flaky', async (job) => {
      attemptsSeen.push(job.attempts);
      throw new Error(`boom ${job.attempts}`);
    });
    const [id] = await enqueue(s.db, { kind: 'flaky', payload: {}, maxAttempts: 3 });
    const failedAt: Array<{ attempts: number; delayMs: number }> = [];
    p.events.on('job', () => {
      void getJob(s.db, id!).then((j) => {
        if (j && j.state === 'ready')
          failedAt.push({ attempts: j.attempts, delayMs: j.run_at.getTime() - j.updated_at.getTime() });
      });
    });
    await p.start();
    const dead = await waitFor(async () => {
      const j = await getJob(s.db, id!);
      return j?.state === 'dead' ? j : null;
    });
    expect(attemptsSeen).toEqual([1, 2, 3]);
    expect(dead.attempts).toBe(3);
    expect(dead.last_error).toContain('boom 3');
    expect(dead.finished_at).not.toBeNull();
    // Retry n waits between base*2^(n-1)/2 and base*2^(n-1).
    expect(failedAt.length).toBeGreaterThanOrEqual(1);
    for (const f of failedAt) {
      const exp = base * 2 ** (f.attempts - 1);
      expect(f.delayMs).toBeGreaterThanOrEqual(exp / 2 - 5);
      expect(f.delayMs).toBeLessThanOrEqual(exp + 5);
    }
  });

  it('backoffDelay stays within [exp/2, exp] and is capped', () => {
    const policy = { baseMs: 1000, maxMs: 30_000 };
    expect(backoffDelay(1, policy, () => 0)).toBe(500);
    expect(backoffDelay(1, policy, () => 1)).toBe(1000);
    expect(backoffDelay(4, policy, () => 0)).toBe(4000);
    expect(backoffDelay(4, policy, () => 1)).toBe(8000);
    expect(backoffDelay(20, policy, () => 1)).toBe(30_000);
  });

  it('retries a dead job by id after the cause is fixed', async () => {
    const s = await store();
    let fixed = false;
    let runsAfterFix = 0;
    const p = pool(s).register('fragile', async (job) => {
      if (!fixed) throw new PermanentJobError('downstream rejected the payload');
      runsAfterFix++;
      expect(job.attempts).toBe(1); // fresh attempt budget
    });
    const [id] = await enqueue(s.db, { kind: 'fragile', payload: {} });
    await p.start();
    await waitFor(async () => (await state(s, id!)).state === 'dead');
    expect((await getJob(s.db, id!))!.last_error).toContain('downstream rejected');
    fixed = true;
    expect(await retryJobs(s.db, { ids: [id!] })).toBe(1);
    p.notify();
    await waitFor(() => isDone(s, id!), { what: 'retried job done' });
    expect(runsAfterFix).toBe(1);
  });

  it('defers without using an attempt, pauses, resumes and cancels by scope', async () => {
    const s = await store();
    let deferrals = 0;
    let lastAttempt = 0;
    let mode: 'defer' | 'pause' | 'ok' = 'defer';
    const p = pool(s).register('scoped', async (job) => {
      lastAttempt = job.attempts;
      if (mode === 'defer' && deferrals < 3) {
        deferrals++;
        throw new RetryLaterError(10, 'rate limited');
      }
      if (mode === 'pause') throw new PauseJobError('installation needs re-authorization');
    });
    const [a] = await enqueue(s.db, { kind: 'scoped', payload: {}, scope: 'loc:A', maxAttempts: 1 });
    await p.start();
    await waitFor(() => isDone(s, a!));
    expect(deferrals).toBe(3);
    expect(lastAttempt).toBe(1); // deferrals did not use up the single attempt

    mode = 'pause';
    const [b] = await enqueue(s.db, { kind: 'scoped', payload: {}, scope: 'loc:A' });
    p.notify();
    await waitFor(async () => (await state(s, b!)).state === 'paused');
    expect((await getJob(s.db, b!))!.attempts).toBe(0);
    mode = 'ok';
    expect(await resumeScope(s.db, 'loc:A')).toBe(1);
    p.notify();
    await waitFor(() => isDone(s, b!));

    await p.stop(1000);
    const [c] = await enqueue(s.db, { kind: 'scoped', payload: {}, scope: 'loc:B' });
    const [d] = await enqueue(s.db, { kind: 'scoped', payload: {}, scope: 'loc:B' });
    await pauseScope(s.db, 'loc:B', 'reauth');
    expect((await state(s, d!)).state).toBe('paused');
    expect(await cancelScope(s.db, 'loc:B', 'uninstalled')).toBe(2);
    expect((await state(s, c!)).state).toBe('cancelled');
  });

  it('re-runs a job after its worker process is SIGKILLed mid-job, and completes it once', async () => {
    const s = await store({ onDisk: true });
    const [id] = await enqueue(s.db, { kind: 'hang', payload: {} });
    if (STORE === 'pglite') await s.close(); // one process at a time on the embedded store
    const child = spawnTs('test/fixtures/queue-worker.ts', [], { ...s.env, JOB_LEASE_MS: '1000' });
    await child.waitForLine(new RegExp(`STARTED ${id}`));
    child.proc.kill('SIGKILL');
    await child.exited;

    const again = STORE === 'pglite' ? await openTestStoreAt(s) : s;
    const mid = await state(again, id!);
    expect(mid.state).toBe('running'); // the dead worker still "holds" it until the lease expires
    const runs: Array<{ attempts: number; lastError: string | null }> = [];
    const p = pool(again, { leaseMs: 1000 }).register('hang', async (job) => {
      runs.push({ attempts: job.attempts, lastError: job.lastError });
    });
    await p.start();
    await waitFor(() => isDone(again, id!), { what: 'job completed by the second worker' });
    await p.stop(1000);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.attempts).toBe(2);
    expect(runs[0]!.lastError).toContain('lease expired');
  });

  it('graceful stop finishes quick jobs and releases slow ones without losing them', async () => {
    const s = await store();
    let release!: () => void;
    const slowStarted = new Promise<void>((r) => (release = r));
    const p = pool(s);
    p.register('quick', async () => {});
    p.register('slow', async (_job, { signal }) => {
      release();
      await new Promise((_r, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    });
    const [slow] = await enqueue(s.db, { kind: 'slow', payload: {} });
    await p.start();
    await slowStarted;
    const [quick] = await enqueue(s.db, { kind: 'quick', payload: {} });
    p.notify();
    await waitFor(() => isDone(s, quick!));
    const res = await p.stop(200);
    expect(res.released).toBe(1);
    const j = (await getJob(s.db, slow!))!;
    expect(j.state).toBe('ready');
    expect(j.attempts).toBe(0);
    expect(j.locked_by).toBeNull();
    // Another worker picks it up afterwards.
    const p2 = pool(s).register('slow', async () => {});
    await p2.start();
    await waitFor(() => isDone(s, slow!));
  });
});

/** Another connection pool onto the same PostgreSQL schema (a second replica). */
async function openTestStoreSameSchema(s: TestStore): Promise<TestStore> {
  const { openDatabase } = await import('../../src/infra/db/index.js');
  const h = await openDatabase({ url: s.env.DATABASE_URL, schema: s.schema, poolMax: 12 });
  cleanups.push(() => h.close());
  return { ...h, env: s.env };
}

/** Re-opens the embedded store after the test closed it for a child process. */
async function openTestStoreAt(s: TestStore): Promise<TestStore> {
  const { openDatabase } = await import('../../src/infra/db/index.js');
  const h = await openDatabase({ schema: s.schema, dataDir: s.env.DATA_DIR });
  cleanups.push(() => h.close());
  return { ...h, env: s.env };
}
