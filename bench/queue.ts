/**
 * npm run bench:queue — jobs/s of the durable queue on PGlite (on disk) and PostgreSQL, with
 * 10 concurrent producers / 10 worker slots, against a baseline measured in the same run: a
 * naive queue on the same table (claim one job per statement, complete with its own UPDATE),
 * which is what a hand-rolled "SELECT … FOR UPDATE SKIP LOCKED LIMIT 1" loop does.
 *
 *   npm run bench:queue -- --jobs 20000 --stores pglite,postgres
 */
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { createLogger } from '../src/infra/log/logger.js';
import { enqueue, WorkerPool } from '../src/infra/queue/index.js';
import { benchStore, postgresAvailable, table } from './common.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '10' },
    stores: { type: 'string', default: 'pglite,postgres' },
  },
});
const N = Number(values.jobs);
const C = Number(values.concurrency);
const log = createLogger({ level: 'silent' });

async function run<T>(fn: () => Promise<T>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

async function producers(db: Parameters<typeof enqueue>[0], n: number, c: number, batch = 1): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        const take = Math.min(batch, n - next);
        next += take;
        await enqueue(
          db,
          Array.from({ length: take }, (_, i) => ({ kind: 'bench', payload: { i } })),
        );
      }
    }),
  );
}

async function drain(handle: Awaited<ReturnType<typeof benchStore>>['handle'], n: number): Promise<void> {
  const pool = new WorkerPool({
    db: handle.db,
    log,
    concurrency: C,
    leaseMs: 30_000,
    pollMs: 50,
    ...(process.env.BENCH_BATCH ? { batchSize: Number(process.env.BENCH_BATCH) } : {}),
  });
  let done = 0;
  let resolve!: () => void;
  const all = new Promise<void>((r) => (resolve = r));
  pool.register('bench', async () => {
    if (++done === n) resolve();
  });
  await pool.start();
  await all;
  await pool.stop(5000);
}

/** Baseline: one claim statement and one completion statement per job. */
async function naiveDrain(handle: Awaited<ReturnType<typeof benchStore>>['handle'], n: number): Promise<void> {
  let done = 0;
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (done < n) {
        const r = await sql<{ id: number }>`
          update bridge_jobs set state = 'running', attempts = attempts + 1, locked_until = now() + interval '30 seconds'
          where id = (select id from bridge_jobs where state = 'ready' and run_at <= now() order by priority, run_at, id limit 1 for update skip locked)
          returning id`.execute(handle.db);
        const id = r.rows[0]?.id;
        if (id === undefined) continue;
        await sql`delete from bridge_jobs where id = ${id}`.execute(handle.db);
        done++;
      }
    }),
  );
}

const rows: Array<Array<string | number>> = [];
const stores = values.stores.split(',') as Array<'pglite' | 'postgres'>;
for (const kind of stores) {
  if (kind === 'postgres' && !(await postgresAvailable())) {
    console.log('PostgreSQL not reachable; skipping its rows');
    continue;
  }
  const s = await benchStore(kind);
  try {
    const tEnq = await run(() => producers(s.handle.db, N, C));
    const tEnqBatch = await run(() => producers(s.handle.db, N, C, 100));
    await sql`delete from bridge_jobs`.execute(s.handle.db);
    await producers(s.handle.db, N, C, 500);
    const tNaive = await run(() => naiveDrain(s.handle, N));
    await sql`delete from bridge_jobs`.execute(s.handle.db);
    await producers(s.handle.db, N, C, 500);
    const tDrain = await run(() => drain(s.handle, N));
    const target = kind === 'postgres' ? 5000 : 2000;
    rows.push([s.name, 'enqueue (1 job / statement)', N / tEnq, '', '']);
    rows.push([s.name, 'enqueue (100 jobs / statement)', N / tEnqBatch, '', '']);
    rows.push([s.name, 'claim+complete, naive baseline', N / tNaive, '1.00×', '']);
    rows.push([
      s.name,
      'claim+complete, ghl-bridge queue',
      N / tDrain,
      `${(tNaive / tDrain).toFixed(2)}×`,
      `${N / tDrain >= target ? '✓' : '✗'} ≥ ${target.toLocaleString()}`,
    ]);
  } finally {
    await s.dispose();
  }
}
console.log(`\nqueue benchmark: ${N.toLocaleString()} jobs, concurrency ${C}, node ${process.version}\n`);
console.log(table(['store', 'operation', 'jobs/s', 'vs baseline', 'target'], rows));
