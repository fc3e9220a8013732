import type { ColumnType, Generated } from 'kysely';

/**
 * A completed job is deleted, so there is no 'done' state: absence after enqueue means success.
 * 'blocked': waiting behind an unfinished job with the same ordering key; finishing that job
 * promotes the next blocked one to 'ready'.
 */
export type JobState = 'ready' | 'blocked' | 'running' | 'dead' | 'paused' | 'cancelled';
export const JOB_STATES: readonly JobState[] = ['ready', 'blocked', 'running', 'dead', 'paused', 'cancelled'];

export interface JobsTable {
  id: Generated<number>;
  kind: string;
  payload: ColumnType<unknown, string, string>;
  state: Generated<JobState>;
  priority: Generated<number>;
  ordering_key: string | null;
  scope: string | null;
  dedupe_key: string | null;
  run_at: Generated<Date>;
  attempts: Generated<number>;
  max_attempts: number;
  last_error: string | null;
  locked_by: string | null;
  locked_until: Date | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  finished_at: Date | null;
}

declare module '../db/schema.js' {
  interface Database {
    bridge_jobs: JobsTable;
  }
}
