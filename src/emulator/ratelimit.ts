import type { Clock } from './clock.js';

interface Bucket {
  windowStart: number;
  count: number;
  dayStart: number;
  dailyCount: number;
}

export interface RateDecision {
  allowed: boolean;
  headers: Record<string, string>;
  retryAfterSec: number;
}

const DAY_MS = 86_400_000;

/**
 * GHL limits (docs/ghl-behaviour.md#rate-limits): N requests per interval and a daily cap, per app per resource (location or company).
 * Fixed windows: the burst window opens on the first request after the previous one closed; likewise the daily
 * window is 24 h from its first request (GHL's reset time zone is UNCONFIRMED; this keeps tests deterministic).
 * Rejected (429) calls do not consume quota.
 */
export class RateLimiter {
  private buckets = new Map<string, Bucket>();

  constructor(
    private readonly clock: Clock,
    private readonly limits: { burst: number; intervalMs: number; daily: number },
  ) {}

  private bucket(key: string, now: number): Bucket {
    let b = this.buckets.get(key);
    if (!b) {
      b = { windowStart: now, count: 0, dayStart: now, dailyCount: 0 };
      this.buckets.set(key, b);
    }
    if (now - b.windowStart >= this.limits.intervalMs) {
      b.windowStart = now;
      b.count = 0;
    }
    if (now - b.dayStart >= DAY_MS) {
      b.dayStart = now;
      b.dailyCount = 0;
    }
    return b;
  }

  private headers(b: Bucket | undefined): Record<string, string> {
    const l = this.limits;
    return {
      'x-ratelimit-limit-daily': String(l.daily),
      'x-ratelimit-daily-remaining': String(Math.max(0, l.daily - (b?.dailyCount ?? 0))),
      'x-ratelimit-interval-milliseconds': String(l.intervalMs),
      'x-ratelimit-max': String(l.burst),
      'x-ratelimit-remaining': String(Math.max(0, l.burst - (b?.count ?? 0))),
    };
  }

  /** Count one request for `key`; key undefined = unauthenticated call, headers show full quota. */
  take(key: string | undefined): RateDecision {
    if (key === undefined) return { allowed: true, headers: this.headers(undefined), retryAfterSec: 0 };
    const now = this.clock.now();
    const b = this.bucket(key, now);
    if (b.count >= this.limits.burst) {
      const ms = b.windowStart + this.limits.intervalMs - now;
      return { allowed: false, headers: this.headers(b), retryAfterSec: Math.max(1, Math.ceil(ms / 1000)) };
    }
    if (b.dailyCount >= this.limits.daily) {
      const ms = b.dayStart + DAY_MS - now;
      return { allowed: false, headers: this.headers(b), retryAfterSec: Math.max(1, Math.ceil(ms / 1000)) };
    }
    b.count++;
    b.dailyCount++;
    return { allowed: true, headers: this.headers(b), retryAfterSec: 0 };
  }

  reset(): void {
    this.buckets.clear();
  }
}
