import { sql, type Kysely, type Migration } from 'kysely';

export const queueMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      create table bridge_jobs (
        id bigserial primary key,
        kind text not null,
        payload jsonb not null default '{}'::jsonb,
        state text not null default 'ready'
          check (state in ('ready', 'blocked', 'running', 'dead', 'paused', 'cancelled')),
        priority smallint not null default 100,
        ordering_key text,
        scope text,
        dedupe_key text,
        run_at timestamptz not null default now(),
        attempts integer not null default 0,
        max_attempts integer not null default 10,
        last_error text,
        locked_by text,
        locked_until timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        finished_at timestamptz
      )`.execute(db);
    // Claim path: only ready rows, in priority / due-time order.
    await sql`create index bridge_jobs_claim on bridge_jobs (priority, run_at, id) where state = 'ready'`.execute(db);
    // Lease reaper.
    await sql`create index bridge_jobs_lease on bridge_jobs (locked_until) where state = 'running'`.execute(db);
    // "Is an earlier job of this ordering key still unfinished?"
    await sql`create index bridge_jobs_order on bridge_jobs (ordering_key, id)
      where ordering_key is not null and state in ('ready', 'blocked', 'running', 'paused')`.execute(db);
    // Promotion: the next blocked job of a key.
    await sql`create index bridge_jobs_blocked on bridge_jobs (ordering_key, id) where state = 'blocked'`.execute(db);
    await sql`create unique index bridge_jobs_dedupe on bridge_jobs (dedupe_key) where dedupe_key is not null`.execute(
      db,
    );
    await sql`create index bridge_jobs_scope on bridge_jobs (scope, state) where scope is not null`.execute(db);
    // Deliberately few indexes: every index a state change touches costs a write per job. Completed
    // jobs are deleted (a delete maintains no index), operator queries by state scan the table.
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table bridge_jobs`.execute(db);
  },
};
