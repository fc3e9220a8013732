import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { z } from 'zod';
import {
  defineJob,
  enqueue,
  getJob,
  jobsNotifySql,
  listJobs,
  PermanentJobError,
  PRIORITY,
  RetryLaterError,
  WorkerPool,
} from '../../src/infra/queue/index.js';
import { sendJob, statusJob } from '../../src/capabilities/provider/outbound.js';
import { openTestStore, quietLog, STORE, waitFor, type TestStore } from '../helpers/store.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function store(): Promise<TestStore> {
  const s = await openTestStore();
  cleanups.push(() => s.close());
  return s;
}

function pool(s: TestStore): WorkerPool {
  const p = new WorkerPool({
    db: s.db,
    log: quietLog,
    concurrency: 4,
    leaseMs: 5000,
    pollMs: 20,
    backoff: { baseMs: 20, maxMs: 40 },
  });
  cleanups.push(() => p.stop(1000));
  return p;
}

const deadJob = (s: TestStore, id: number) =>
  waitFor(async () => {
    const j = await getJob(s.db, id);
    return j?.state === 'dead' ? j : null;
  });

/** What a test job saw, in order. */
type Log = string[];

const greet = defineJob<{ name: string; times: number }, Log>({
  kind: 'test.greet',
  payload: z.object({ name: z.string(), times: z.number().int() }),
  orderingKey: (p) => `greet:${p.name}`,
  scope: (p) => `scope:${p.name}`,
  dedupeKey: (p) => `greet:${p.name}:${p.times}`,
  priority: PRIORITY.live,
  maxAttempts: 4,
  perform: async (p, job, ctx) => {
    ctx.deps.push(`perform ${p.name}x${p.times} attempt ${job.attempts}`);
  },
  onFailed: async (p, job, _err, ctx) => {
    ctx.deps.push(`failed ${p.name} attempt ${job.attempts}`);
  },
});

describe(`defineJob on ${STORE}`, () => {
  it('enqueues with the definition keys and defaults, and hands perform the parsed payload', async () => {
    const s = await store();
    const [id] = await greet.enqueue(s.db, { name: 'ann', times: 2 });
    const row = (await getJob(s.db, id!))!;
    expect(row).toMatchObject({
      kind: 'test.greet',
      payload: { name: 'ann', times: 2 },
      ordering_key: 'greet:ann',
      scope: 'scope:ann',
      dedupe_key: 'greet:ann:2',
      priority: PRIORITY.live,
      max_attempts: 4,
    });
    // Overrides win; the dedupe key from the payload makes a second enqueue a no-op.
    expect(await greet.enqueue(s.db, { name: 'ann', times: 2 })).toEqual([]);
    const [id2] = await greet.enqueue(s.db, { name: 'bo', times: 1 }, { scope: null, maxAttempts: 9 });
    expect(await getJob(s.db, id2!)).toMatchObject({ scope: null, max_attempts: 9, ordering_key: 'greet:bo' });

    // @ts-expect-error the compiler ties the payload to the definition
    greet.job({ name: 'ann' });

    const seen: Log = [];
    const p = pool(s).register(greet, { deps: seen });
    await p.start();
    await waitFor(async () => (await listJobs(s.db)).length === 0, { what: 'both jobs done' });
    expect(seen.sort()).toEqual(['perform annx2 attempt 1', 'perform box1 attempt 1']);
  });

  it('a payload that does not parse is dead at once, its reason naming the field; perform and onFailed never run', async () => {
    const s = await store();
    const seen: Log = [];
    const p = pool(s).register(greet, { deps: seen });
    // Written by something that bypassed the definition (an older version, a hand-made row).
    const [id] = await enqueue(s.db, { kind: greet.kind, payload: { name: 'ann', times: 'twice' }, maxAttempts: 4 });
    await p.start();
    const dead = await deadJob(s, id!);
    expect(dead.attempts).toBe(1);
    expect(dead.last_error).toContain('PermanentJobError');
    expect(dead.last_error).toContain('invalid payload for job kind "test.greet"');
    expect(dead.last_error).toMatch(/times: .*number/i);
    expect(seen).toEqual([]);
  });

  it('calls onFailed exactly once, on the final attempt, inside the transaction that marks the job dead', async () => {
    const s = await store();
    const seen: Log = [];
    const followUp = defineJob<{ of: number }>({
      kind: 'test.follow_up',
      payload: z.object({ of: z.number() }),
      perform: async () => {},
    });
    const flaky = defineJob<{ n: number }, Log>({
      kind: 'test.flaky',
      payload: z.object({ n: z.number() }),
      maxAttempts: 3,
      perform: async (p, job, ctx) => {
        ctx.deps.push(`perform attempt ${job.attempts}`);
        // A deferral neither uses up an attempt nor is a failure.
        if (job.attempts === 1 && !ctx.deps.includes('deferred')) {
          ctx.deps.push('deferred');
          throw new RetryLaterError(10, 'not yet');
        }
        throw new Error(`boom ${p.n}/${job.attempts}`);
      },
      onFailed: async (p, job, err, ctx) => {
        ctx.deps.push(`failed attempt ${job.attempts}: ${(err as Error).message}`);
        // Its writes commit with the dead mark.
        await followUp.enqueue(ctx.db, { of: p.n });
      },
      onRetry: async (_p, job, _err, ctx) => {
        ctx.deps.push(`retry after attempt ${job.attempts}`);
      },
    });
    const p = pool(s).register(flaky, { deps: seen });
    const [id] = await flaky.enqueue(s.db, { n: 7 });
    await p.start();
    const dead = await deadJob(s, id!);
    await waitFor(() => seen.some((l) => l.startsWith('failed')), { what: 'onFailed' });
    expect(seen).toEqual([
      'perform attempt 1',
      'deferred',
      'perform attempt 1',
      'retry after attempt 1',
      'perform attempt 2',
      'retry after attempt 2',
      'perform attempt 3',
      'failed attempt 3: boom 7/3',
    ]);
    expect(dead.attempts).toBe(3);
    const follow = (await listJobs(s.db, { kind: followUp.kind }))[0];
    expect(follow?.payload).toEqual({ of: 7 });
  });

  it('a PermanentJobError is final at once; an onFailed that throws rolls back its writes and the job is still dead', async () => {
    const s = await store();
    const seen: Log = [];
    const other = defineJob<Record<string, never>>({
      kind: 'test.other',
      payload: z.object({}),
      perform: async () => {},
    });
    const doomed = defineJob<{ n: number }, Log>({
      kind: 'test.doomed',
      payload: z.object({ n: z.number() }),
      maxAttempts: 5,
      perform: async () => {
        throw new PermanentJobError('cannot ever work');
      },
      onFailed: async (p, job, _err, ctx) => {
        ctx.deps.push(`failed ${p.n} attempt ${job.attempts}`);
        await other.enqueue(ctx.db, {});
        if (p.n === 2) throw new Error('onFailed broke');
      },
    });
    const p = pool(s).register(doomed, { deps: seen });
    const [a] = await doomed.enqueue(s.db, { n: 1 });
    const [b] = await doomed.enqueue(s.db, { n: 2 });
    await p.start();
    const deadA = await deadJob(s, a!);
    const deadB = await deadJob(s, b!);
    expect(deadA.attempts).toBe(1);
    expect(deadB.attempts).toBe(1);
    expect(deadB.last_error).toContain('cannot ever work');
    expect(seen.sort()).toEqual(['failed 1 attempt 1', 'failed 2 attempt 1']);
    // Only the first onFailed's write survived.
    expect(await listJobs(s.db, { kind: other.kind })).toHaveLength(1);
  });

  it('a last attempt whose worker died (lease expired) is dead and gets its onFailed once', async () => {
    const s = await store();
    const seen: Log = [];
    const p = pool(s).register(greet, { deps: seen });
    const [id] = await greet.enqueue(s.db, { name: 'cy', times: 1 }, { maxAttempts: 2 });
    // As a crashed worker leaves it: running, on its last attempt, lease in the past.
    await sql`update bridge_jobs set state = 'running', attempts = 2, locked_by = 'gone',
      locked_until = now() - interval '1 second' where id = ${id!}`.execute(s.db);
    expect(await p.reapExpired()).toBe(1);
    expect(await p.reapExpired()).toBe(0);
    const dead = (await getJob(s.db, id!))!;
    expect(dead.state).toBe('dead');
    expect(dead.last_error).toContain('lease expired');
    expect(seen).toEqual(['failed cy attempt 2']);
  });

  it('provider payloads queued before they carried their key ids still parse; a missing messageId is named', () => {
    expect(sendJob.parse({ messageId: 'm1' })).toEqual({ messageId: 'm1', locationId: '', contactId: '' });
    expect(statusJob.parse({ messageId: 'm1', locationId: 'L' })).toEqual({ messageId: 'm1', locationId: 'L' });
    expect(() => statusJob.parse({ locationId: 'L' })).toThrow(
      /invalid payload for job kind "provider.status": messageId: /,
    );
  });

  it('enqueue joins the caller transaction: a rollback leaves no job; fromSql inserts inside a statement', async () => {
    const s = await store();
    await expect(
      s.db.transaction().execute(async (trx) => {
        await greet.enqueue(trx, { name: 'dee', times: 1 });
        expect(await listJobs(trx)).toHaveLength(1);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await listJobs(s.db)).toHaveLength(0);

    await s.db.transaction().execute((trx) => greet.enqueue(trx, { name: 'dee', times: 1 }));
    expect(await listJobs(s.db)).toHaveLength(1);

    // One job per row of a CTE, with the definition's columns (a row the `where` excludes gets none).
    await sql`
      with u as (select * from (values (1), (2)) v(n)),
      j as (${greet.fromSql('u', { name: 'eve', times: 3 }, { dedupeKey: null }, sql`u.n = 1`)}),
      w as (${jobsNotifySql(['j'])})
      select (select count(*) from w) as woke`.execute(s.db);
    const eve = await listJobs(s.db, { scope: 'scope:eve' });
    expect(eve).toHaveLength(1);
    expect(eve[0]).toMatchObject({ kind: 'test.greet', ordering_key: 'greet:eve', priority: PRIORITY.live });
  });
});
