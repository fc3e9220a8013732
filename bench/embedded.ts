/**
 * npm run bench:embedded — where the embedded store (PGlite) should run: in the bridge's own thread (`main`, the
 * baseline), in a worker thread (`worker`, the default) or in a child process (`process`), with PostgreSQL as the
 * reference, all in the same run.
 *
 * Each store gets the bridge's own durable queue as its workload (10 producers enqueue jobs, a 10-slot worker pool
 * claims and completes them, each job also writes a row), while the same process answers HTTP: a probe sends GET
 * /ping every 5 ms and records the answer time, and the event loop's delay is sampled. Printed per store: jobs/s,
 * probe p50/p99, event-loop delay p99 and utilisation, and the ratios to `main` and to PostgreSQL.
 *
 *   npm run bench:embedded -- --jobs 6000 --stores main,worker,process,postgres
 */
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { sql } from 'kysely';
import { createLogger } from '../src/infra/log/logger.js';
import { enqueue, WorkerPool } from '../src/infra/queue/index.js';
import { benchStore, PG_URL, postgresAvailable, table } from './common.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '6000' },
    stores: { type: 'string', default: 'main,worker,process,postgres' },
  },
});
const N = Number(values.jobs);
const log = createLogger({ level: 'silent' });
type Kind = 'main' | 'worker' | 'process' | 'postgres';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

async function measure(kind: Kind) {
  const store =
    kind === 'postgres' ? await benchStore('postgres') : await benchStore('pglite', { embeddedThread: kind });
  const { handle } = store;
  await sql`create table bench_rows (id bigserial primary key, job int not null, at timestamptz not null default now())`.execute(
    handle.db,
  );
  const app = Fastify({ logger: false });
  app.get('/ping', async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;

  const pool = new WorkerPool({ db: handle.db, log, concurrency: 10, leaseMs: 30_000, pollMs: 50 });
  let done = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  pool.register<{ i: number }>('bench', async (job) => {
    await sql`insert into bench_rows (job) values (${job.payload.i})`.execute(handle.db);
    if (++done === N) finish();
  });

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const t = performance.now();
      await new Promise<void>((resolve, reject) =>
        http
          .get({ host: '127.0.0.1', port, path: '/ping', agent }, (res) => {
            res.resume();
            res.on('end', () => resolve());
          })
          .on('error', reject),
      );
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  await pool.start();
  let next = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < N) {
        const i = next++;
        await enqueue(handle.db, [{ kind: 'bench', payload: { i } }]);
      }
    }),
  );
  await all;
  const seconds = (performance.now() - t0) / 1000;
  const elu = performance.eventLoopUtilization(elu0).utilization;
  loop.disable();
  probing = false;
  await probe;
  agent.destroy();
  await pool.stop(5000);
  await app.close();
  await store.dispose();
  return {
    kind,
    jobsPerS: N / seconds,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    loopP99: loop.percentile(99) / 1e6,
    elu,
  };
}

const kinds = values.stores.split(',').map((s) => s.trim()) as Kind[];
if (kinds.includes('postgres') && !(await postgresAvailable())) {
  console.log(`PostgreSQL at ${PG_URL} is not reachable: measuring the embedded store only`);
  kinds.splice(kinds.indexOf('postgres'), 1);
}
const results = [];
for (const k of kinds) {
  process.stdout.write(`measuring ${k} … `);
  const r = await measure(k);
  console.log(`${r.jobsPerS.toFixed(0)} jobs/s`);
  results.push(r);
}
const base = results.find((r) => r.kind === 'main');
const ref = results.find((r) => r.kind === 'postgres');
console.log(`\n${N.toLocaleString('en-US')} jobs, 10 producers, 10 worker slots; GET /ping every 5 ms meanwhile\n`);
console.log(
  table(
    ['store', 'jobs/s', 'vs main', 'vs PostgreSQL', 'ping p50 ms', 'ping p99 ms', 'loop delay p99 ms', 'loop busy'],
    results.map((r) => [
      r.kind === 'postgres' ? 'PostgreSQL' : `PGlite, ${r.kind}`,
      r.jobsPerS,
      base ? `${(r.jobsPerS / base.jobsPerS).toFixed(2)}×` : '–',
      ref ? `${((100 * r.jobsPerS) / ref.jobsPerS).toFixed(0)} %` : '–',
      r.p50,
      r.p99,
      r.loopP99,
      `${(100 * r.elu).toFixed(0)} %`,
    ]),
  ),
);
