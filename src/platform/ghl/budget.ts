import type { Db } from '../../infra/db/index.js';
import './tables.js';

export interface RateBudget {
  resourceId: string;
  dailyUsed: number;
  dailyLimit: number;
  /** Burst slots of the current window that are taken (in flight or used within the interval). */
  burstUsed: number;
  burstCap: number;
  updatedAt: Date;
}

/**
 * GHL rate-limit budget per location/company as the shared limiter last wrote it (ghl_rate_buckets), for the console.
 * A slot is taken when it is held (negative marker) or was stamped within `intervalMs`.
 */
export async function rateBudgets(db: Db, intervalMs = 10_000, now = Date.now()): Promise<RateBudget[]> {
  const rows = await db
    .selectFrom('ghl_rate_buckets')
    .select(['resource_id', 'slots', 'cap', 'daily_used', 'daily_limit', 'updated_at'])
    .orderBy('daily_used', 'desc')
    .limit(500)
    .execute();
  return rows.map((r) => {
    const slots: number[] = typeof r.slots === 'string' ? (JSON.parse(r.slots) as number[]) : r.slots;
    return {
      resourceId: r.resource_id,
      dailyUsed: r.daily_used,
      dailyLimit: r.daily_limit,
      burstUsed: slots.filter((s) => s < 0 || now - s < intervalMs).length,
      burstCap: r.cap,
      updatedAt: r.updated_at,
    };
  });
}
