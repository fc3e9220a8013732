import type { ColumnType, Generated } from 'kysely';

/**
 * Shared rate-limit state per (app client, location/company), used by ratelimit.ts. The table is
 * created by the installations migration (0002_installations, applied before this type moved here).
 */
export interface RateBucketsTable {
  client_id: string;
  resource_id: string;
  slots: ColumnType<number[], string, string>;
  cap: number;
  day: Generated<number>;
  daily_used: Generated<number>;
  daily_limit: number;
  bulk_next_at: Generated<number>;
  version: Generated<number>;
  updated_at: Generated<Date>;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    ghl_rate_buckets: RateBucketsTable;
  }
}
