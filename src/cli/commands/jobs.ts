import type { Command } from 'commander';
import { JOB_STATES, type JobState } from '../../infra/queue/tables.js';
import { listJobs, retryJobs } from '../../infra/queue/index.js';
import { configOrExit, fail, openStore } from '../common.js';

export function registerJobsCommand(program: Command): void {
  const jobs = program.command('jobs').description('inspect and retry background jobs');
  jobs
    .command('list')
    .description('list jobs, newest first')
    .option('--dead', 'only dead jobs (failed after all attempts)')
    .option('--state <state>', `only jobs in this state (${JOB_STATES.join(', ')})`)
    .option('--kind <kind>', 'only jobs of this kind')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON lines')
    .action(async (o: { dead?: boolean; state?: string; kind?: string; limit: string; json?: boolean }) => {
      const state = (o.dead ? 'dead' : o.state) as JobState | undefined;
      if (state && !JOB_STATES.includes(state)) fail(new Error(`--state must be one of ${JOB_STATES.join(', ')}`));
      const config = configOrExit();
      const store = await openStore(config);
      try {
        const rows = await listJobs(store.db, {
          ...(state ? { state } : {}),
          ...(o.kind ? { kind: o.kind } : {}),
          limit: Number(o.limit) || 50,
        });
        if (o.json) for (const r of rows) console.log(JSON.stringify(r));
        else if (!rows.length) console.log('no jobs');
        else
          for (const r of rows)
            console.log(
              `${r.id}\t${r.state}\t${r.kind}\tattempts=${r.attempts}/${r.max_attempts}\t${r.run_at.toISOString()}${r.last_error ? `\t${r.last_error.slice(0, 160)}` : ''}`,
            );
      } finally {
        await store.close();
      }
    });
  jobs
    .command('retry')
    .description('put dead jobs back in the queue')
    .argument('[ids...]', 'job ids')
    .option('--all-dead', 'retry every dead job')
    .option('--kind <kind>', 'with --all-dead: only this kind')
    .action(async (ids: string[], o: { allDead?: boolean; kind?: string }) => {
      if (!ids.length && !o.allDead) fail(new Error('name job ids or use --all-dead'));
      const nums = ids.map(Number);
      if (nums.some((n) => !Number.isInteger(n) || n <= 0)) fail(new Error('job ids are positive whole numbers'));
      const config = configOrExit();
      const store = await openStore(config);
      try {
        const n = await retryJobs(
          store.db,
          ids.length ? { ids: nums } : { allDead: true, ...(o.kind ? { kind: o.kind } : {}) },
        );
        console.log(`${n} job(s) queued again`);
      } finally {
        await store.close();
      }
    });
}
