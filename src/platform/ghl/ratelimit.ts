import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import type { Logger } from '../../infra/log/logger.js';
import './tables.js';

export type Lane = 'live' | 'bulk';

export interface RateLimitOptions {
  /** Requests per interval (GHL: 100 per 10 s per app per location/company). */
  burst: number;
  intervalMs: number;
  /** Requests per UTC day (GHL: 200,000). */
  daily: number;
  /** Extra spacing on top of the interval (clock drift between us and GHL). */
  marginMs: number;
  /**
   * A granted slot is held until its response arrives and then stamped with that time (GHL counted
   * the request before we saw the answer). Held slots of a crashed replica free after this.
   */
  holdMs: number;
  /** One reservation grants the slots that free within this horizon (callers wait locally). */
  horizonMs: number;
  /** Bulk only gets a slot this long after it frees, so a live call asking meanwhile gets it first. */
  bulkDelayMs: number;
  /** Share of the daily budget the bulk lane may use; the rest is kept for live traffic. */
  bulkDailyShare: number;
  /**
   * Share of the burst the bulk lane leaves free for live calls (rounded down to whole slots): while bulk saturates a
   * resource, a live call finds a free slot at once instead of waiting for the next one to free (up to a horizon).
   */
  liveReserveShare: number;
}

export const GHL_LIMITS: RateLimitOptions = {
  burst: 100,
  intervalMs: 10_000,
  daily: 200_000,
  marginMs: 25,
  holdMs: 60_000,
  horizonMs: 500,
  bulkDelayMs: 25,
  bulkDailyShare: 0.9,
  liveReserveShare: 0.01,
};

const DAY_MS = 86_400_000;
const MAX_GRANT = 50;
/** Rows keep at most this many slots; a larger burst makes each slot stand for several requests. */
const MAX_SLOTS = 128;
/** Unused requests of a multi-request slot are given up this long after its send time. */
const SHARE_TTL_MS = 250;

export class RateLimitAbortedError extends Error {
  override name = 'RateLimitAbortedError';
}

/** acquire() with `maxQueuedMs`: no slot was granted within that time (the caller was taken out of the queue). */
export class RateLimitWaitTimeout extends Error {
  override name = 'RateLimitWaitTimeout';
  constructor(
    readonly resourceId: string,
    readonly waitedMs: number,
  ) {
    super(`no GHL rate-limit slot for ${resourceId} within ${waitedMs} ms`);
  }
}

/** A granted slot; call done() as soon as GHL's response (or the failure) is in. */
export interface RateTicket {
  done(): void;
}

/** One reserved slot as handed out in this process: `unit` requests, stamped when the last one finished. */
interface Share {
  held: number;
  notBeforeLocal: number;
  left: number;
  outstanding: number;
  lastAt: number;
  closed: boolean;
}

interface Waiter {
  grant: (share: Share) => void;
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
  /** Finished requests not yet written back: held marker → local time the response arrived. */
  completions: Array<{ held: number; at: number }>;
  flushTimer: NodeJS.Timeout | undefined;
  /** Free slots after our last reservation and the daily count then (to spot GHL disagreeing). */
  lastFree: number;
  lastDailyUsed: number;
  /** Slots with requests left over (slot unit > 1), usable until they expire. */
  shares: Share[];
  /** Our last written copy of the row: the fast path updates it in one statement if nobody else wrote since. */
  cached: { row: Omit<Row, 'now'>; rowDay: number; cap: number; version: number; skew: number } | undefined;
}

interface Grant {
  /** Live grants first, then bulk: held marker and send-not-before (database clock). */
  live: Array<{ held: number; at: number }>;
  bulk: Array<{ held: number; at: number }>;
  liveWaitMs: number;
  bulkWaitMs: number;
  free: number;
  dailyUsed: number;
  skew: number;
}

interface Row {
  slots: number[];
  cap: number;
  day: number;
  dailyUsed: number;
  dailyLimit: number;
  bulkNextAt: number;
  now: number;
}

/**
 * Client-side limiter for GHL's per app × resource limits, shared by all replicas through
 * ghl_rate_buckets. It is a sliding log rather than a refilling bucket: GHL's burst window may be
 * fixed (the emulator's) or sliding, and "at most `burst` requests in any `interval`" is safe
 * against both, while a refilling bucket can put 2 × burst into one fixed window.
 *
 * The row holds `burst` slots. A slot is either stamped (the time its last response arrived; free
 * again interval + margin later) or held by an in-flight request. Reserving marks slots held and
 * tells each caller when it may send; when the response arrives the slot is stamped with that
 * moment, which is after GHL counted the request — so GHL sees consecutive uses of a slot at least
 * one interval apart whatever the network or event-loop delays. Stamps are written back with the
 * next reservation (group commit), and one reservation grants every slot freeing within
 * `horizonMs` to this process's waiters, so a resource costs a few transactions per second.
 *
 * Lanes: live takes slots first (free now, else the soonest); bulk gets a slot only `bulkDelayMs`
 * after it frees, is paced to burst/interval, and passes over the soonest-freeing
 * `liveReserveShare` of the slots, which therefore stay free: while bulk saturates a resource a
 * live call is granted at once (from the reserve) instead of waiting for a slot to free.
 */
export class RateLimiter {
  readonly #state = new Map<string, ResourceState>();
  readonly #known = new Set<string>();
  #closed = false;
  /** Counters for tests, the benchmark and metrics. */
  readonly stats = { reservations: 0, adjustments: 0, blocked429: 0, fastPath: 0, slowPath: 0 };
  /** Requests per slot (1 for GHL's 100 / 10 s) and slots per row. */
  readonly #unit: number;
  readonly #slotCount: number;

  constructor(
    private readonly db: Db,
    private readonly clientId: string,
    private readonly opts: RateLimitOptions = GHL_LIMITS,
    private readonly log?: Logger,
    private readonly onWait?: (lane: Lane, ms: number) => void,
  ) {
    this.#unit = Math.max(1, Math.ceil(opts.burst / MAX_SLOTS));
    this.#slotCount = Math.floor(opts.burst / this.#unit);
  }

  /**
   * Resolves when one request for `resourceId` may be sent; call `done()` on the ticket after the response.
   * With `maxQueuedMs`, a caller still queued (no slot granted) after that long is taken out of the queue and gets a
   * RateLimitWaitTimeout; a slot once granted is always used, so giving up never wastes budget.
   */
  acquire(resourceId: string, lane: Lane = 'bulk', signal?: AbortSignal, maxQueuedMs?: number): Promise<RateTicket> {
    if (this.#closed) return Promise.reject(new RateLimitAbortedError('rate limiter closed'));
    if (signal?.aborted) return Promise.reject(signal.reason ?? new RateLimitAbortedError('aborted'));
    const st = this.#get(resourceId);
    const started = Date.now();
    return new Promise<RateTicket>((resolve, reject) => {
      let settled = false;
      let queuedTimer: NodeJS.Timeout | undefined;
      const w: Waiter = {
        grant: (share) => {
          clearTimeout(queuedTimer);
          let finished = false;
          share.outstanding++;
          const ticket: RateTicket = {
            done: () => {
              if (finished) return;
              finished = true;
              share.outstanding--;
              share.lastAt = Date.now();
              this.#settle(resourceId, st, share);
            },
          };
          const notBeforeLocal = share.notBeforeLocal;
          const go = () => {
            if (signal) signal.removeEventListener('abort', onAbortWaiting);
            if (settled) return ticket.done();
            settled = true;
            this.onWait?.(lane, Date.now() - started);
            resolve(ticket);
          };
          // Aborted while sleeping towards the send time: the slot is released (stamped now).
          const onAbortWaiting = () => {
            clearTimeout(t);
            if (settled) return;
            settled = true;
            ticket.done();
            reject(signal?.reason ?? new RateLimitAbortedError('aborted'));
          };
          const delay = notBeforeLocal - Date.now();
          const t = delay > 0 ? setTimeout(go, delay) : undefined;
          if (signal) signal.addEventListener('abort', onAbortWaiting, { once: true });
          if (!t) go();
        },
        reject: (e) => {
          clearTimeout(queuedTimer);
          if (settled) return;
          settled = true;
          reject(e);
        },
        signal,
        onAbort: undefined,
      };
      if (signal) {
        w.onAbort = () => {
          const q = st[lane];
          const i = q.indexOf(w);
          if (i >= 0) q.splice(i, 1);
          w.reject(signal.reason ?? new RateLimitAbortedError('aborted'));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      // A slot reserved for several requests (large bursts) may still have some left.
      const share = st.shares.find((x) => !x.closed && x.left > 0);
      if (share) {
        share.left--;
        w.grant(share);
        return;
      }
      st[lane].push(w);
      if (maxQueuedMs !== undefined)
        queuedTimer = setTimeout(() => {
          const q = st[lane];
          const i = q.indexOf(w);
          if (i < 0) return; // granted meanwhile
          q.splice(i, 1);
          if (signal && w.onAbort) signal.removeEventListener('abort', w.onAbort);
          w.reject(new RateLimitWaitTimeout(resourceId, maxQueuedMs));
        }, maxQueuedMs);
      // A live call must not wait for a timer set for bulk: pump now.
      if (lane === 'live' || !st.timer) this.#kick(resourceId, st);
    });
  }

  /**
   * Feeds GHL's answer back: a 429 holds the resource until GHL's window rolls; X-RateLimit-*
   * headers showing less quota than we think (another client of the same app, GHL's own
   * accounting) shrink ours. No database work when they agree.
   */
  async observe(resourceId: string, status: number, headers: Headers): Promise<void> {
    const st = this.#get(resourceId);
    const num = (n: string): number | undefined => {
      const v = headers.get(n);
      return v === null || v === '' || !Number.isFinite(Number(v)) ? undefined : Number(v);
    };
    const intervalMs = num('x-ratelimit-interval-milliseconds') ?? this.opts.intervalMs;
    if (status === 429) {
      const retryAfter = num('retry-after');
      const waitMs = retryAfter !== undefined ? retryAfter * 1000 : intervalMs;
      await this.#adjust(resourceId, { blockMs: waitMs });
      this.log?.warn({ resourceId, waitMs }, 'GHL rate limit hit (429); holding this resource');
      return;
    }
    const remaining = num('x-ratelimit-remaining');
    const max = num('x-ratelimit-max');
    const dailyRemaining = num('x-ratelimit-daily-remaining');
    const dailyLimit = num('x-ratelimit-limit-daily') ?? this.opts.daily;
    const adj: { freeNow?: number; cap?: number; dailyUsed?: number } = {};
    if (remaining !== undefined && remaining < st.lastFree - 1) adj.freeNow = remaining;
    if (max !== undefined && max < this.opts.burst) adj.cap = max;
    if (dailyRemaining !== undefined && dailyLimit - dailyRemaining > st.lastDailyUsed + 10)
      adj.dailyUsed = dailyLimit - dailyRemaining;
    if (adj.freeNow !== undefined || adj.cap !== undefined || adj.dailyUsed !== undefined)
      await this.#adjust(resourceId, adj);
  }

  /** Rejects waiting callers and writes back pending stamps. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const flushes: Promise<unknown>[] = [];
    for (const [id, st] of this.#state) {
      clearTimeout(st.timer);
      clearTimeout(st.flushTimer);
      for (const w of [...st.live, ...st.bulk]) w.reject(new RateLimitAbortedError('rate limiter closed'));
      st.live.length = 0;
      st.bulk.length = 0;
      if (st.completions.length)
        flushes.push(this.#locked(id, (r) => ({ row: r, result: undefined })).catch(() => undefined));
    }
    await Promise.all(flushes);
  }

  #get(resourceId: string): ResourceState {
    let st = this.#state.get(resourceId);
    if (!st) {
      st = {
        live: [],
        bulk: [],
        pumping: false,
        again: false,
        timer: undefined,
        completions: [],
        flushTimer: undefined,
        lastFree: this.opts.burst,
        lastDailyUsed: 0,
        cached: undefined,
        shares: [],
      };
      this.#state.set(resourceId, st);
    }
    return st;
  }

  /** Stamps ride along with the next reservation; without waiters they are written within a second. */
  #scheduleFlush(resourceId: string, st: ResourceState): void {
    if (st.flushTimer || this.#closed) return;
    st.flushTimer = setTimeout(() => {
      st.flushTimer = undefined;
      if (!st.completions.length || this.#closed) return;
      if (st.pumping || st.live.length || st.bulk.length) return this.#scheduleFlush(resourceId, st);
      this.#locked(resourceId, (r) => ({ row: r, result: undefined })).catch((e: unknown) =>
        this.log?.warn({ err: e, resourceId }, 'rate limiter: writing back slot stamps failed'),
      );
    }, 1000);
    st.flushTimer.unref?.();
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
        const want = {
          live: Math.min(Math.ceil(st.live.length / this.#unit), MAX_GRANT),
          bulk: Math.min(Math.ceil(st.bulk.length / this.#unit), MAX_GRANT),
        };
        if ((!want.live && !want.bulk) || this.#closed) return;
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
        for (const x of g.live) this.#hand(resourceId, st, 'live', x.held, x.at - g.skew);
        for (const x of g.bulk) this.#hand(resourceId, st, 'bulk', x.held, x.at - g.skew);
        if (st.again) continue;
        const waits: number[] = [];
        if (st.live.length) waits.push(g.live.length < want.live ? g.liveWaitMs : 0);
        if (st.bulk.length) waits.push(g.bulk.length < want.bulk ? g.bulkWaitMs : 0);
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

  /** Hands a reserved slot's requests to this lane's waiters (then the other lane's); keeps the rest briefly. */
  #hand(resourceId: string, st: ResourceState, lane: Lane, held: number, notBeforeLocal: number): void {
    const share: Share = { held, notBeforeLocal, left: this.#unit, outstanding: 0, lastAt: 0, closed: false };
    for (const q of lane === 'live' ? [st.live, st.bulk] : [st.bulk, st.live]) {
      while (share.left > 0 && q.length) {
        const w = q.shift()!;
        if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
        share.left--;
        w.grant(share);
      }
    }
    if (share.left > 0) {
      st.shares.push(share);
      const t = setTimeout(
        () => {
          share.left = 0;
          this.#settle(resourceId, st, share);
        },
        Math.max(0, notBeforeLocal - Date.now()) + SHARE_TTL_MS,
      );
      t.unref?.();
    }
  }

  /** A slot is stamped once none of its requests is left to hand out or still in flight. */
  #settle(resourceId: string, st: ResourceState, share: Share): void {
    if (share.closed || share.left > 0 || share.outstanding > 0) return;
    share.closed = true;
    const i = st.shares.indexOf(share);
    if (i >= 0) st.shares.splice(i, 1);
    st.completions.push({ held: share.held, at: share.lastAt || Date.now() });
    this.#scheduleFlush(resourceId, st);
  }

  #schedule(resourceId: string, st: ResourceState, ms: number): void {
    clearTimeout(st.timer);
    st.timer = setTimeout(
      () => {
        st.timer = undefined;
        this.#kick(resourceId, st);
      },
      Math.max(1, Math.ceil(ms)),
    );
  }

  async #ensureRow(resourceId: string): Promise<void> {
    if (this.#known.has(resourceId)) return;
    const slots = JSON.stringify(new Array<number>(this.#slotCount).fill(0));
    await this.db
      .insertInto('ghl_rate_buckets')
      .values({
        client_id: this.clientId,
        resource_id: resourceId,
        slots,
        cap: this.opts.burst,
        daily_limit: this.opts.daily,
      })
      .onConflict((oc) => oc.columns(['client_id', 'resource_id']).doNothing())
      .execute();
    // A row written under other limits (another build, or a deployment given other limits) would be read with
    // this process's slot unit and could grant nothing at all. Re-shape it to these limits. Every slot is stamped with
    // the database's now, so the first interval after the change stays within what GHL may already have counted.
    await sql`
      update ghl_rate_buckets
      set slots = (select coalesce(jsonb_agg(to_jsonb((extract(epoch from clock_timestamp()) * 1000)::float8)), '[]'::jsonb)
                   from generate_series(1, ${this.#slotCount})),
          cap = ${this.opts.burst}, daily_limit = ${this.opts.daily}, version = version + 1, updated_at = now()
      where client_id = ${this.clientId} and resource_id = ${resourceId}
        and (jsonb_array_length(slots) <> ${this.#slotCount} or daily_limit <> ${this.opts.daily} or cap > ${this.opts.burst})`.execute(
      this.db,
    );
    this.#known.add(resourceId);
  }

  /**
   * Runs `fn` on the resource's row and writes the result back. Fast path: when our cached copy is
   * current (its version unchanged — nobody else wrote), one conditional UPDATE does it. Otherwise a
   * short transaction reads the row FOR UPDATE first. Pending stamps are applied either way.
   */
  async #locked<T>(
    resourceId: string,
    fn: (row: Row, skew: number) => { row: Row; cap?: number; result: T },
  ): Promise<T> {
    const st = this.#get(resourceId);
    const c = st.cached;
    if (c) {
      const now = Date.now() + c.skew;
      const slots = c.row.slots.slice();
      const done = this.#applyCompletions(st, slots, now, c.skew);
      const day = Math.floor(now / DAY_MS);
      try {
        const out = fn({ ...c.row, slots, day, dailyUsed: day === c.rowDay ? c.row.dailyUsed : 0, now }, c.skew);
        const r = await this.db
          .updateTable('ghl_rate_buckets')
          .set(this.#values(out))
          .where('client_id', '=', this.clientId)
          .where('resource_id', '=', resourceId)
          .where('version', '=', c.version)
          .returning('version')
          .executeTakeFirst();
        if (r) {
          this.stats.fastPath++;
          st.cached = this.#cache(out, Number(r.version), c.skew);
          return out.result;
        }
      } catch (e) {
        st.completions.unshift(...done);
        throw e;
      }
      st.completions.unshift(...done); // someone else wrote: redo on the fresh row
      st.cached = undefined;
    }
    this.stats.slowPath++;
    await this.#ensureRow(resourceId);
    return this.db.transaction().execute(async (trx) => {
      const r = await sql<{
        slots: unknown;
        cap: number;
        day: number;
        daily_used: number;
        daily_limit: number;
        bulk_next_at: number;
        version: number;
        now_ms: number;
      }>`
        select slots, cap, day, daily_used, daily_limit, bulk_next_at, version, (extract(epoch from clock_timestamp()) * 1000)::float8 as now_ms
        from ghl_rate_buckets where client_id = ${this.clientId} and resource_id = ${resourceId} for update`.execute(
        trx,
      );
      const row = r.rows[0];
      if (!row) throw new Error('rate bucket row missing');
      const slots = (typeof row.slots === 'string' ? JSON.parse(row.slots) : row.slots) as number[];
      const now = Number(row.now_ms);
      // Database clock minus ours: slot times are database time, shared by every replica.
      const skew = now - Date.now();
      const done = this.#applyCompletions(st, slots, now, skew);
      try {
        const day = Math.floor(now / DAY_MS);
        const out = fn(
          {
            slots,
            cap: row.cap,
            day,
            dailyUsed: day === row.day ? row.daily_used : 0,
            dailyLimit: row.daily_limit,
            bulkNextAt: Number(row.bulk_next_at),
            now,
          },
          skew,
        );
        const u = await trx
          .updateTable('ghl_rate_buckets')
          .set(this.#values(out))
          .where('client_id', '=', this.clientId)
          .where('resource_id', '=', resourceId)
          .returning('version')
          .executeTakeFirstOrThrow();
        st.cached = this.#cache(out, Number(u.version), skew);
        return out.result;
      } catch (e) {
        st.completions.unshift(...done); // rolled back: they go with the next write
        st.cached = undefined;
        throw e;
      }
    });
  }

  /** Finished requests: held marker → response time (database clock). Returns them for a rollback. */
  #applyCompletions(
    st: ResourceState,
    slots: number[],
    now: number,
    skew: number,
  ): Array<{ held: number; at: number }> {
    const done = st.completions.splice(0);
    for (const c of done) {
      const i = slots.indexOf(c.held);
      if (i >= 0) slots[i] = Math.min(now, c.at + skew);
    }
    return done;
  }

  #values(out: { row: Row; cap?: number }) {
    return {
      slots: JSON.stringify(out.row.slots),
      daily_used: out.row.dailyUsed,
      day: out.row.day,
      bulk_next_at: out.row.bulkNextAt,
      ...(out.cap !== undefined ? { cap: out.cap } : {}),
      version: sql<number>`version + 1`,
      updated_at: sql<Date>`now()`,
    };
  }

  #cache(out: { row: Row; cap?: number }, version: number, skew: number): NonNullable<ResourceState['cached']> {
    const { now: _now, ...row } = out.row;
    const cap = out.cap ?? row.cap;
    return { row: { ...row, cap }, rowDay: row.day, cap, version, skew };
  }

  #reserve(resourceId: string, want: { live: number; bulk: number }): Promise<Grant> {
    this.stats.reservations++;
    const o = this.opts;
    const span = o.intervalMs + o.marginMs;
    return this.#locked(resourceId, (row, skew) => {
      const { slots, now } = row;
      const unit = this.#unit;
      // Everything below counts slots; the row's cap and daily figures count requests.
      const cap = Math.floor(row.cap / unit);
      const horizon = now + o.horizonMs;
      // When each slot frees: stamped slots `span` after the stamp; held ones (stamp > now) unknown.
      const order = slots.map((v, i) => ({ i, free: v > now ? Infinity : v + span })).sort((a, b) => a.free - b.free);
      // At most `cap` slots busy at once (GHL may lower X-RateLimit-Max below our slot count).
      const room = Math.max(0, cap - order.filter((x) => x.free > horizon).length);
      const usable = order.filter((x) => x.free <= horizon).slice(0, room);
      const freeNow = usable.filter((x) => x.free <= now).length;
      const dailyLeftLive = Math.floor(Math.max(0, row.dailyLimit - row.dailyUsed) / unit);
      const dailyLeftBulk = Math.floor(
        Math.max(0, Math.floor(row.dailyLimit * o.bulkDailyShare) - row.dailyUsed) / unit,
      );
      const mark = (i: number, at: number) => (slots[i] = at + o.holdMs + Math.random());
      const live: Grant['live'] = [];
      let k = 0;
      while (live.length < want.live && k < usable.length && live.length < dailyLeftLive) {
        const x = usable[k++]!;
        const at = Math.max(now, x.free);
        live.push({ held: mark(x.i, at), at });
      }
      const bulk: Grant['bulk'] = [];
      const paceMs = o.intervalMs / Math.max(1, cap);
      let pace = Math.max(row.bulkNextAt, now - o.horizonMs);
      // Bulk passes over the soonest-freeing slots that live left, so they stay free for the next live call.
      const reserve = Math.min(Math.floor(cap * o.liveReserveShare), Math.max(0, cap - 1));
      let b = k + reserve;
      while (bulk.length < want.bulk && b < usable.length && live.length + bulk.length < dailyLeftBulk) {
        const x = usable[b]!;
        const at = Math.max(now, x.free + o.bulkDelayMs, pace);
        if (at > horizon) break;
        b++;
        bulk.push({ held: mark(x.i, at), at });
        pace = at + paceMs;
      }
      if (bulk.length) row.bulkNextAt = pace;
      const taken = live.length + bulk.length;
      // When to ask again: shortly before the next slot frees (or soon, if all are in flight). Asking
      // then, not when it enters the horizon, lets one reservation grant a horizon's worth of slots.
      const lead = 20;
      const next = order.filter((x) => slots[x.i]! <= now && x.free > horizon)[0]?.free;
      const untilNext = next !== undefined ? next - now - lead : 25;
      const nextDay = (row.day + 1) * DAY_MS - now;
      const liveWaitMs = live.length >= dailyLeftLive ? nextDay : k < usable.length ? 0 : untilNext;
      const bulkWaitMs =
        live.length + bulk.length >= dailyLeftBulk
          ? nextDay
          : Math.max(
              b < usable.length
                ? Math.max(usable[b]!.free + o.bulkDelayMs, pace) - now - lead
                : untilNext + o.bulkDelayMs,
              1,
            );
      row.dailyUsed += taken * unit;
      return {
        row,
        result: {
          live,
          bulk,
          liveWaitMs: Math.max(1, liveWaitMs),
          bulkWaitMs: Math.max(1, bulkWaitMs),
          free: Math.max(0, freeNow - taken) * unit,
          dailyUsed: row.dailyUsed,
          skew,
        },
      };
    });
  }

  async #adjust(
    resourceId: string,
    a: { blockMs?: number; freeNow?: number; cap?: number; dailyUsed?: number },
  ): Promise<void> {
    this.stats.adjustments++;
    if (a.blockMs !== undefined) this.stats.blocked429++;
    const span = this.opts.intervalMs + this.opts.marginMs;
    const st = this.#get(resourceId);
    await this.#locked(resourceId, (row) => {
      const { slots, now } = row;
      if (a.blockMs !== undefined) {
        // Every stamped slot frees no earlier than now + blockMs (held ones get stamped later anyway).
        const until = now + a.blockMs - span;
        for (let i = 0; i < slots.length; i++) if (slots[i]! <= now) slots[i] = Math.max(slots[i]!, until);
      }
      if (a.freeNow !== undefined) {
        const free = slots.map((v, i) => ({ v, i })).filter((x) => x.v <= now - span);
        const keep = Math.floor(a.freeNow / this.#unit);
        for (let j = 0; j < free.length - keep; j++) slots[free[j]!.i] = now;
      }
      if (a.dailyUsed !== undefined) row.dailyUsed = Math.max(row.dailyUsed, a.dailyUsed);
      return { row, ...(a.cap !== undefined && a.cap < row.cap ? { cap: Math.max(1, a.cap) } : {}), result: undefined };
    });
    st.lastFree = a.freeNow ?? (a.blockMs !== undefined ? 0 : st.lastFree);
    if (a.blockMs !== undefined && (st.live.length || st.bulk.length))
      this.#schedule(resourceId, st, Math.min(a.blockMs, 1000));
  }
}
