import { sql } from 'kysely';
import type { Db } from '../db/index.js';
import type { Logger } from '../log/logger.js';
import '../installations/tables.js';

export type Lane = 'live' | 'bulk';

export interface RateLimitOptions {
  /** Requests per interval (GHL: 100 per 10 s per app per location/company). */
  burst: number;
  intervalMs: number;
  /** Requests per UTC day (GHL: 200,000). */
  daily: number;
  /** Extra spacing on top of the interval for clock/latency jitter between our send and GHL's count. */
  marginMs: number;
  /** A reserved slot must be used within this time; it is recorded as used at reservation + lease. */
  leaseMs: number;
  /** Bulk only takes a slot once it has been free this long, so a waiting live call gets it first. */
  bulkDelayMs: number;
  /** Share of the daily budget the bulk lane may use; the rest is kept for live traffic. */
  bulkDailyShare: number;
}

export const GHL_LIMITS: RateLimitOptions = {
  burst: 100,
  intervalMs: 10_000,
  daily: 200_000,
  marginMs: 50,
  leaseMs: 30,
  bulkDelayMs: 50,
  bulkDailyShare: 0.9,
};

const DAY_MS = 86_400_000;
const MAX_GRANT = 25;

export class RateLimitAbortedError extends Error {
  override name = 'RateLimitAbortedError';
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

interface ResourceState {
  live: Waiter[];
  bulk: Waiter[];
  pumping: boolean;
  again: boolean;
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
  /** Free slots left after our last reservation and the daily count then (to spot GHL disagreeing). */
  lastFree: number;
  lastDailyUsed: number;
}

interface Grant {
  live: number;
  bulk: number;
  /** ms until the next slot may be available for each lane (when not all demand was met). */
  liveWaitMs: number;
  bulkWaitMs: number;
  free: number;
  dailyUsed: number;
}

/**
 * Client-side limiter for GHL's per app × resource limits, shared by all replicas through
 * ghl_rate_buckets. It is a sliding log rather than a refilling bucket: GHL's burst window is
 * fixed (emulator) or sliding (unknown for real GHL), and "at most `burst` sends in any
 * `interval`" is safe against both, while a refilling bucket can send 2× burst in one window.
 *
 * The row holds `burst` slot timestamps. A reservation takes the oldest slots that are older than
 * interval + margin and stamps them "now + lease" (the latest moment the caller may send), so every
 * slot's consecutive uses are at least one interval apart and no interval sees more than `burst`.
 * One transaction reserves slots for every waiter of that resource in this process (the fast path:
 * one round trip for many calls). Lanes: live takes any free slot; bulk only slots free for
 * `bulkDelayMs`, and at most ~burst/5 per interval/5, so it spreads out and leaves gaps live uses.
 */
export class RateLimiter {
  readonly #state = new Map<string, ResourceState>();
  readonly #known = new Set<string>();
  #closed = false;

  constructor(
    private readonly db: Db,
    private readonly clientId: string,
    private readonly opts: RateLimitOptions = GHL_LIMITS,
    private readonly log?: Logger,
    private readonly onWait?: (lane: Lane, ms: number) => void,
  ) {}

  /** Resolves when one request for `resourceId` may be sent now. */
  acquire(resourceId: string, lane: Lane = 'bulk', signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(new RateLimitAbortedError('rate limiter closed'));
    if (signal?.aborted) return Promise.reject(signal.reason ?? new RateLimitAbortedError('aborted'));
    const st = this.#get(resourceId);
    const started = Date.now();
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        resolve: () => {
          this.onWait?.(lane, Date.now() - started);
          resolve();
        },
        reject,
        signal,
        onAbort: undefined,
      };
      if (signal) {
        w.onAbort = () => {
          const q = st[lane];
          const i = q.indexOf(w);
          if (i >= 0) q.splice(i, 1);
          reject(signal.reason ?? new RateLimitAbortedError('aborted'));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      st[lane].push(w);
      // A live call must not wait for a timer set for bulk: pump now.
      if (lane === 'live' || !st.timer) this.#kick(resourceId, st);
    });
  }

  /**
   * Feeds GHL's answer back: a 429 blocks the resource until GHL's window rolls; X-RateLimit-*
   * headers showing less quota than we think (another client of the same app, a restart of GHL's
   * counters) shrink ours. Cheap when they agree (no database work).
   */
  async observe(resourceId: string, status: number, headers: Headers): Promise<void> {
    const st = this.#get(resourceId);
    const num = (n: string): number | undefined => {
      const v = headers.get(n);
      return v === null || v === '' || !Number.isFinite(Number(v)) ? undefined : Number(v);
    };
    const remaining = num('x-ratelimit-remaining');
    const max = num('x-ratelimit-max');
    const dailyRemaining = num('x-ratelimit-daily-remaining');
    const intervalMs = num('x-ratelimit-interval-milliseconds') ?? this.opts.intervalMs;
    if (status === 429) {
      const retryAfter = num('retry-after');
      const waitMs = retryAfter !== undefined ? retryAfter * 1000 : intervalMs;
      await this.#adjust(resourceId, { blockMs: waitMs });
      this.log?.warn({ resourceId, waitMs }, 'GHL rate limit hit (429); holding this resource');
      return;
    }
    const adj: { freeNow?: number; cap?: number; dailyUsed?: number } = {};
    if (remaining !== undefined && remaining < st.lastFree - 1) adj.freeNow = remaining;
    if (max !== undefined && max < this.opts.burst) adj.cap = max;
    const dailyLimit = num('x-ratelimit-limit-daily') ?? this.opts.daily;
    if (dailyRemaining !== undefined && dailyLimit - dailyRemaining > st.lastDailyUsed + 10) adj.dailyUsed = dailyLimit - dailyRemaining;
    if (adj.freeNow !== undefined || adj.cap !== undefined || adj.dailyUsed !== undefined) await this.#adjust(resourceId, adj);
  }

  close(): void {
    this.#closed = true;
    for (const st of this.#state.values()) {
      clearTimeout(st.timer);
      for (const w of [...st.live, ...st.bulk]) w.reject(new RateLimitAbortedError('rate limiter closed'));
      st.live.length = 0;
      st.bulk.length = 0;
    }
  }

  #get(resourceId: string): ResourceState {
    let st = this.#state.get(resourceId);
    if (!st) {
      st = { live: [], bulk: [], pumping: false, again: false, timer: undefined, timerAt: 0, lastFree: this.opts.burst, lastDailyUsed: 0 };
      this.#state.set(resourceId, st);
    }
    return st;
  }

  #kick(resourceId: string, st: ResourceState): void {
    if (st.timer) {
      clearTimeout(st.timer);
      st.timer = undefined;
    }
    if (st.pumping) {
      st.again = true;
      return;
    }
    void this.#pump(resourceId, st);
  }

  async #pump(resourceId: string, st: ResourceState): Promise<void> {
    st.pumping = true;
    try {
      for (;;) {
        st.again = false;
        const want = { live: Math.min(st.live.length, MAX_GRANT), bulk: Math.min(st.bulk.length, MAX_GRANT) };
        if (!want.live && !want.bulk || this.#closed) return;
        let g: Grant;
        try {
          g = await this.#reserve(resourceId, want);
        } catch (e) {
          if (this.#closed) return;
          this.log?.warn({ err: e, resourceId }, 'rate limiter: reservation failed; retrying');
          this.#schedule(resourceId, st, 200);
          return;
        }
        st.lastFree = g.free;
        st.lastDailyUsed = g.dailyUsed;
        for (let i = 0; i < g.live; i++) this.#release(st.live.shift());
        for (let i = 0; i < g.bulk; i++) this.#release(st.bulk.shift());
        if (st.again) continue;
        const waits: number[] = [];
        if (st.live.length) waits.push(g.live < want.live ? g.liveWaitMs : 0);
        if (st.bulk.length) waits.push(g.bulk < want.bulk ? g.bulkWaitMs : 0);
        if (!waits.length) return;
        const ms = Math.min(...waits);
        if (ms <= 0) continue;
        this.#schedule(resourceId, st, ms);
        return;
      }
    } finally {
      st.pumping = false;
      if (st.again && !st.timer) void this.#pump(resourceId, st);
    }
  }

  #release(w: Waiter | undefined): void {
    if (!w) return;
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    w.resolve();
  }

  #schedule(resourceId: string, st: ResourceState, ms: number): void {
    clearTimeout(st.timer);
    st.timerAt = Date.now() + ms;
    st.timer = setTimeout(() => {
      st.timer = undefined;
      this.#kick(resourceId, st);
    }, Math.max(1, Math.ceil(ms)));
  }

  async #ensureRow(resourceId: string): Promise<void> {
    if (this.#known.has(resourceId)) return;
    const slots = JSON.stringify(new Array<number>(this.opts.burst).fill(0));
    await this.db
      .insertInto('ghl_rate_buckets')
      .values({ client_id: this.clientId, resource_id: resourceId, slots, cap: this.opts.burst, daily_limit: this.opts.daily })
      .onConflict((oc) => oc.columns(['client_id', 'resource_id']).doNothing())
      .execute();
    this.#known.add(resourceId);
  }

  async #locked<T>(resourceId: string, fn: (row: { slots: number[]; cap: number; day: number; dailyUsed: number; dailyLimit: number; now: number }) => { slots: number[]; cap?: number; dailyUsed: number; day: number; result: T }): Promise<T> {
    await this.#ensureRow(resourceId);
    return this.db.transaction().execute(async (trx) => {
      const r = await sql<{ slots: unknown; cap: number; day: number; daily_used: number; daily_limit: number; now_ms: number }>`
        select slots, cap, day, daily_used, daily_limit, (extract(epoch from clock_timestamp()) * 1000)::float8 as now_ms
        from ghl_rate_buckets where client_id = ${this.clientId} and resource_id = ${resourceId} for update`.execute(trx);
      const row = r.rows[0];
      if (!row) throw new Error('rate bucket row missing');
      const slots = (typeof row.slots === 'string' ? JSON.parse(row.slots) : row.slots) as number[];
      const now = Number(row.now_ms);
      const day = Math.floor(now / DAY_MS);
      const out = fn({ slots, cap: row.cap, day, dailyUsed: day === row.day ? row.daily_used : 0, dailyLimit: row.daily_limit, now });
      await trx
        .updateTable('ghl_rate_buckets')
        .set({ slots: JSON.stringify(out.slots), daily_used: out.dailyUsed, day: out.day, ...(out.cap !== undefined ? { cap: out.cap } : {}), updated_at: sql`now()` })
        .where('client_id', '=', this.clientId)
        .where('resource_id', '=', resourceId)
        .execute();
      return out.result;
    });
  }

  #reserve(resourceId: string, want: { live: number; bulk: number }): Promise<Grant> {
    const o = this.opts;
    const span = o.intervalMs + o.marginMs;
    return this.#locked(resourceId, ({ slots, cap, day, dailyUsed, dailyLimit, now }) => {
      slots.sort((a, b) => a - b);
      // Sliding log with capacity `cap`: slots beyond cap (GHL lowered X-RateLimit-Max) count as busy.
      const inWindow = slots.filter((s) => s > now - span).length;
      const busy = inWindow + Math.max(0, slots.length - cap);
      let free = Math.max(0, slots.length - busy);
      const dailyLeftLive = Math.max(0, dailyLimit - dailyUsed);
      const dailyLeftBulk = Math.max(0, Math.floor(dailyLimit * o.bulkDailyShare) - dailyUsed);
      const live = Math.min(want.live, free, dailyLeftLive);
      let taken = live;
      free -= live;
      // Bulk: only slots free for bulkDelayMs, paced to ~burst/5 per interval/5.
      const eligible = slots.slice(taken, taken + free).filter((s) => s <= now - span - o.bulkDelayMs).length;
      const paceWindow = o.intervalMs / 5;
      const recent = slots.filter((s) => s > now - paceWindow).length + live;
      const paceLimit = Math.ceil(cap / 5) + 1;
      const bulk = Math.max(0, Math.min(want.bulk, eligible, paceLimit - recent, dailyLeftBulk - live));
      taken += bulk;
      free -= bulk;
      const stamp = now + o.leaseMs;
      for (let i = 0; i < taken; i++) slots[i] = stamp;
      slots.sort((a, b) => a - b);
      const nextDay = (day + 1) * DAY_MS - now;
      // Earliest time a slot frees (the oldest stamp leaves the window).
      const oldestBusy = slots.find((s) => s > now - span) ?? now;
      const liveWaitMs = dailyLeftLive - live <= 0 ? nextDay : free > 0 ? 0 : oldestBusy + span - now;
      let bulkWaitMs = dailyLeftBulk - live - bulk <= 0 ? nextDay : Math.max(1, (free > 0 ? slots[0]! : oldestBusy) + span + o.bulkDelayMs - now);
      if (recent + bulk >= paceLimit) {
        const recentSorted = slots.filter((s) => s > now - paceWindow);
        bulkWaitMs = Math.max(bulkWaitMs, (recentSorted[0] ?? now) + paceWindow - now);
      }
      return {
        slots,
        day,
        dailyUsed: dailyUsed + taken,
        result: { live, bulk, liveWaitMs: Math.max(1, liveWaitMs), bulkWaitMs: Math.max(1, bulkWaitMs), free, dailyUsed: dailyUsed + taken },
      };
    });
  }

  async #adjust(resourceId: string, a: { blockMs?: number; freeNow?: number; cap?: number; dailyUsed?: number }): Promise<void> {
    const o = this.opts;
    const span = o.intervalMs + o.marginMs;
    const st = this.#get(resourceId);
    await this.#locked(resourceId, ({ slots, cap, day, dailyUsed, now }) => {
      if (a.blockMs !== undefined) {
        // Every slot frees no earlier than now + blockMs.
        const until = now + a.blockMs - span;
        for (let i = 0; i < slots.length; i++) slots[i] = Math.max(slots[i]!, until);
      }
      if (a.freeNow !== undefined) {
        slots.sort((x, y) => x - y);
        const free = slots.filter((s) => s <= now - span).length;
        for (let i = 0; i < free - a.freeNow && i < slots.length; i++) slots[i] = now;
      }
      return {
        slots,
        day,
        ...(a.cap !== undefined && a.cap < cap ? { cap: Math.max(1, a.cap) } : {}),
        dailyUsed: a.dailyUsed !== undefined ? Math.max(dailyUsed, a.dailyUsed) : dailyUsed,
        result: undefined,
      };
    });
    st.lastFree = a.freeNow ?? (a.blockMs !== undefined ? 0 : st.lastFree);
    if (a.blockMs !== undefined && (st.live.length || st.bulk.length)) this.#schedule(resourceId, st, a.blockMs);
  }
}
