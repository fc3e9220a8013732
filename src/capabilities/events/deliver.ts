import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { sql } from 'kysely';
import { createHmac } from 'node:crypto';
import type { Db } from '../../infra/db/index.js';
import type { KeyRing } from '../../infra/crypto/aes.js';
import type { Logger } from '../../infra/log/logger.js';
import { hostOf, type SsrfGuard } from './ssrf.js';
import { signingSecrets } from './service.js';
import type { SubscriptionRow } from './tables.js';
import './tables.js';

/**
 * The retry schedule: the delay before attempt n+1 after attempt n failed (attempt 1 is immediate). Each delay gets
 * ±10 % jitter; a Retry-After answer that asks for longer wins (capped at 24 h). After the last attempt the delivery
 * is dead-lettered with the reason.
 */
export const RETRY_SCHEDULE_MS: readonly number[] = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3600_000,
  5 * 3600_000,
  10 * 3600_000,
  10 * 3600_000,
];
export const MAX_ATTEMPTS = RETRY_SCHEDULE_MS.length;
const MAX_RETRY_AFTER_MS = 24 * 3600_000;
const RESPONSE_HEAD_BYTES = 512;

export function retryDelay(attemptsDone: number, rnd: () => number, retryAfterMs?: number): number {
  const base = RETRY_SCHEDULE_MS[Math.min(attemptsDone, RETRY_SCHEDULE_MS.length - 1)]!;
  const jittered = Math.round(base * (0.9 + 0.2 * rnd()));
  return retryAfterMs !== undefined ? Math.max(jittered, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS)) : jittered;
}

/** Retry-After: delta-seconds or an HTTP date. */
export function parseRetryAfter(v: string | undefined, now: number): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

export interface EngineSettings {
  concurrency: number;
  /** After a partial round, wait this long before claiming again (batching under a steady stream). */
  batchMs: number;
  timeoutMs: number;
  pollMs: number;
  breakerThreshold: number;
  breakerCooldownMs: number;
  disableAfterMs: number;
}

export interface EngineDeps {
  db: Db;
  log: Logger;
  ring: KeyRing;
  guard: SsrfGuard;
  now: () => number;
  rnd: () => number;
  settings: EngineSettings;
  /** Disables a subscription (state enabled → disabled, by 'system') and publishes endpoint.disabled, in one transaction. */
  disable(subId: string, url: string, reason: string): Promise<void>;
  onAttempt?: (outcome: 'delivered' | 'retry' | 'dead', latencyMs: number) => void;
  /** After each read of the subscriptions: how many are enabled. */
  /** After each applied reading of the subscriptions: how many are enabled, and the reading's generation. */
  onSubscriptions?: (enabled: number, generation: number) => void;
}

interface Claimed {
  id: number;
  subscription_id: string;
  event_id: string;
  attempts: number;
}

interface ClaimedEvent {
  id: string;
  type: string;
  version: number;
  source: string;
  locationId: string | null;
  contactId: string | null;
  receivedMs: number;
  data: unknown;
}

type SubRow = SubscriptionRow;

/** An enabled subscription as this replica delivers to it: its row, what is in flight, its sockets. */
interface Endpoint {
  row: SubRow;
  inflight: number;
  /** Dropped from the engine (disabled, deleted): its sockets close once nothing is in flight. */
  removed: boolean;
  keys: { tag: string; keys: Buffer[] } | undefined;
  agent: http.Agent | undefined;
  httpsAgent: https.Agent | undefined;
}

interface Result {
  ep: Endpoint;
  d: Claimed;
  at: number;
  status: number | null;
  latencyMs: number;
  head: string | null;
  error: string | null;
  retryAfterMs?: number | undefined;
}

/** Standard Webhooks v1: base64 HMAC-SHA256 of `id.timestamp.body` with the secret's bytes (after whsec_). */
export function signWebhook(key: Buffer, msgId: string, ts: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${msgId}.${ts}.${body}`).digest('base64')}`;
}

/**
 * Delivers pending deliveries for every enabled subscription from one dispatcher per replica, with two kinds of
 * statement, each covering every subscription and delivery at hand (claims and records run side by side; neither
 * waits for the other):
 *
 * - **claim** — one statement takes, for every subscription with free slots, up to (its per-endpoint concurrency −
 *   what is in flight) due deliveries (LATERAL … LIMIT k FOR UPDATE SKIP LOCKED, so replicas never send the same row
 *   at once), puts them under a lease (a crashed replica's rows are sent again once it ends), and returns them with
 *   their events, each event once however many subscriptions it goes to. Ordered subscriptions get a delivery only
 *   when no earlier one with its ordering key is pending.
 * - **record** — one statement (at most one in flight, `batchMs` after the first result, to gather) writes every
 *   attempt that finished since the last one: the delivery rows
 *   (UPDATE … FROM a JSON record set), the attempt log (one multi-row INSERT) and the endpoints' health.
 *
 * Requests are not awaited by the round: a slow or hanging endpoint holds only its own slots and sockets, never a
 * round, so it cannot delay a healthy one. After `breakerThreshold` consecutive failures the circuit opens for
 * `breakerCooldownMs` (nothing is sent), then one probe at a time decides whether it closes.
 */
export class DeliveryEngine {
  /** Statements the engine sent and delivery attempts it recorded (bench:fanout reads the ratio). */
  readonly stats = { statements: 0, attempts: 0, rounds: 0 };
  readonly #eps = new Map<string, Endpoint>();
  readonly #all = new Set<Endpoint>();
  #results: Result[] = [];
  /** The recorder: at most one record statement in flight; what finishes meanwhile goes into the next. */
  #flushing: Promise<void> | undefined;
  readonly #posts = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #closed = false;
  #loop: Promise<void> | undefined;
  #kicked = false;
  #wakeUp: (() => void) | undefined;
  readonly #refreshing = new Set<Promise<void>>();
  #gen = 0;
  #appliedGen = 0;
  #polling = false;

  constructor(readonly deps: EngineDeps) {}

  /** Starts the dispatcher (`deliver`), or only the periodic read of the subscriptions. */
  async start(deliver = true): Promise<void> {
    this.#running = deliver;
    await this.refresh();
    this.#timer = setInterval(() => {
      if (this.#polling) return;
      this.#polling = true;
      void this.refresh().finally(() => {
        this.#polling = false;
      });
    }, this.deps.settings.pollMs);
    this.#timer.unref();
    if (deliver) this.#loop = this.#run();
  }

  /** Re-reads subscriptions (new, changed, disabled) and wakes the dispatcher. */
  /** Refreshes started so far: a reading is applied only if no later-started refresh was applied before it. */
  get generation(): number {
    return this.#gen;
  }

  async refresh(): Promise<void> {
    const gen = ++this.#gen;
    const run = (async () => {
      try {
        const rows = await this.deps.db.selectFrom('event_subscriptions').selectAll().execute();
        // A slower, older reading must not undo a newer one (it would drop a subscription created in between).
        if (gen < this.#appliedGen) return;
        this.#appliedGen = gen;
        this.deps.onSubscriptions?.(rows.filter((r) => r.state === 'enabled').length, gen);
        const seen = new Set<string>();
        for (const r of rows) {
          if (r.state !== 'enabled') continue;
          seen.add(r.id);
          const ep = this.#eps.get(r.id);
          if (ep) ep.row = r;
          else this.#eps.set(r.id, this.#endpoint(r));
        }
        for (const [id, ep] of this.#eps)
          if (!seen.has(id)) {
            this.#eps.delete(id);
            ep.removed = true;
            this.#release(ep);
          }
        this.wake();
      } catch (e) {
        this.deps.log.warn({ err: e }, 'reading event subscriptions failed; trying again');
      }
    })();
    this.#refreshing.add(run);
    try {
      await run;
    } finally {
      this.#refreshing.delete(run);
    }
  }

  wake(): void {
    this.#kicked = true;
    this.#wakeUp?.();
  }

  /**
   * Rounds for one subscription, awaiting each one's requests, without the dispatcher (tests with an injected clock,
   * the CLI): claims what is due now and delivers it, until less than a full round is due. Returns how many were
   * attempted.
   */
  async runOnce(subId: string): Promise<number> {
    const r = await this.deps.db
      .selectFrom('event_subscriptions')
      .selectAll()
      .where('id', '=', subId)
      .executeTakeFirst();
    if (!r || r.state !== 'enabled') return 0;
    let ep = this.#eps.get(subId);
    if (ep) ep.row = r;
    else this.#eps.set(subId, (ep = this.#endpoint(r)));
    let total = 0;
    for (;;) {
      const free = this.#limit(ep) - ep.inflight;
      const posts = await this.#claim([ep]);
      await Promise.all(posts);
      await this.#drain();
      total += posts.length;
      if (posts.length < free || ep.row.state !== 'enabled' || this.#blocked(ep)) return total;
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearInterval(this.#timer);
    this.#wakeUp?.();
    await Promise.all([...this.#refreshing]);
    await this.#loop;
    try {
      await this.#drain();
    } catch (e) {
      this.deps.log.warn({ err: e }, 'recording the last delivery attempts failed; they will be sent again');
    }
    // What is still in flight is dropped unrecorded: its lease ends and it is sent again (at-least-once).
    this.#closed = true;
    for (const ep of this.#all) this.#destroy(ep);
    await Promise.allSettled([...this.#posts]);
    this.#eps.clear();
  }

  #endpoint(row: SubRow): Endpoint {
    const ep: Endpoint = { row, inflight: 0, removed: false, keys: undefined, agent: undefined, httpsAgent: undefined };
    this.#all.add(ep);
    return ep;
  }

  #release(ep: Endpoint): void {
    if (ep.removed && ep.inflight === 0) {
      this.#destroy(ep);
      this.#all.delete(ep);
    }
  }

  #destroy(ep: Endpoint): void {
    ep.agent?.destroy();
    ep.httpsAgent?.destroy();
    ep.agent = ep.httpsAgent = undefined;
  }

  /** Circuit open: nothing may be sent before circuit_open_until. */
  #blocked(ep: Endpoint): boolean {
    const until = ep.row.circuit_open_until;
    return until !== null && until.getTime() > this.deps.now();
  }

  /** In flight at once: the endpoint concurrency, or 1 (the probe) while the circuit is half-open. */
  #limit(ep: Endpoint): number {
    return ep.row.consecutive_failures >= this.deps.settings.breakerThreshold ? 1 : this.deps.settings.concurrency;
  }

  async #run(): Promise<void> {
    const { settings, log } = this.deps;
    while (this.#running) {
      this.#kicked = false;
      let claimed = 0;
      let full = false;
      if (this.#results.length) this.#flushSoon();
      try {
        // Claims do not wait for the recorder (a delivery being recorded is still under its lease, so a claim cannot
        // take it again): the two statements run side by side (two connections on PostgreSQL).
        const c = await this.#claim([...this.#eps.values()]);
        claimed = c.length;
        full = c.full === true;
        this.stats.rounds++;
      } catch (e) {
        log.warn({ err: e }, 'event delivery round failed; trying again');
        await this.#sleep(Math.min(settings.pollMs, 1000));
        continue;
      }
      if (!this.#running) return;
      if (claimed > 0 && full) continue; // an endpoint took all it may: more are likely due
      if (claimed > 0) {
        // Gather what arrives for a moment, so a steady stream is claimed, sent and recorded in rounds of many
        // deliveries rather than a statement per event.
        if (settings.batchMs > 0) await this.#sleep(settings.batchMs, false);
        continue;
      }
      if (this.#kicked) continue;
      const now = this.deps.now();
      let wait = settings.pollMs;
      for (const ep of this.#eps.values()) {
        const until = ep.row.circuit_open_until?.getTime();
        if (until && until > now) wait = Math.min(wait, until - now);
      }
      await this.#sleep(wait);
    }
  }

  /**
   * Starts the recorder unless it runs: after `batchMs` (to gather), record statements until nothing is left. On a
   * failure the results stay queued (their leases outlast a retry) and it tries again after a pause.
   */
  #flushSoon(): void {
    if (this.#flushing || this.#closed) return;
    this.#flushing = (async () => {
      try {
        const { batchMs } = this.deps.settings;
        if (batchMs > 0 && this.#running) await new Promise((r) => setTimeout(r, batchMs));
        while (this.#results.length) await this.#flush();
      } catch (e) {
        this.deps.log.warn({ err: e }, 'recording event delivery attempts failed; trying again');
        await new Promise((r) => setTimeout(r, Math.min(this.deps.settings.pollMs, 1000)));
      } finally {
        this.#flushing = undefined;
      }
      if (this.#results.length && this.#running) this.#flushSoon();
    })();
  }

  /** Until everything finished is recorded (runOnce, stop); a failure is thrown. */
  async #drain(): Promise<void> {
    while (this.#flushing || this.#results.length) {
      if (this.#flushing) await this.#flushing;
      else await this.#flush();
    }
  }

  /** Waits `ms`, or until woken (`wakeable`). */
  async #sleep(ms: number, wakeable = true): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      if (wakeable)
        this.#wakeUp = () => {
          clearTimeout(t);
          resolve();
        };
    });
    this.#wakeUp = undefined;
  }

  #keys(ep: Endpoint): Buffer[] {
    const r = ep.row;
    const now = this.deps.now();
    const tag = `${r.secret_enc}|${r.previous_secret_enc ?? ''}|${r.previous_secret_until?.getTime() ?? ''}|${
      r.previous_secret_until && r.previous_secret_until.getTime() > now
    }`;
    if (ep.keys?.tag !== tag)
      ep.keys = {
        tag,
        keys: signingSecrets(this.deps.ring, r.id, r, now).map((s) => Buffer.from(s.slice('whsec_'.length), 'base64')),
      };
    return ep.keys.keys;
  }

  /**
   * The claim statement for every endpoint given that has free slots and a closed (or half-open) circuit; starts
   * the requests and returns them (each settles once its result is queued for the next record statement); `full`:
   * some endpoint got all it asked for (more are likely due).
   */
  async #claim(eps: Endpoint[]): Promise<Promise<void>[] & { full?: boolean }> {
    const { db, settings } = this.deps;
    const want: Array<{ id: string; k: number; ordered: boolean }> = [];
    for (const ep of eps) {
      if (ep.removed || ep.row.state !== 'enabled' || this.#blocked(ep)) continue;
      const k = this.#limit(ep) - ep.inflight;
      if (k > 0) want.push({ id: ep.row.id, k, ordered: ep.row.ordering !== 'none' });
    }
    if (!want.length) return [];
    const asked = new Map(want.map((w) => [w.id, w.k]));
    const now = new Date(this.deps.now());
    const leaseUntil = new Date(now.getTime() + settings.timeoutMs + 5_000);
    this.stats.statements++;
    const r = await sql<{ out: { d: Claimed[] | null; e: ClaimedEvent[] | null } }>`
      with w as (
        select * from json_to_recordset(${JSON.stringify(want)}::json) as w(id text, k int, ordered boolean)
      ), c as (
        update event_deliveries d set leased_until = ${leaseUntil}
        from (
          select x.id from w cross join lateral (
            select q.id from event_deliveries q
            where q.subscription_id = w.id and q.status = 'pending' and q.next_at <= ${now}
              and (q.leased_until is null or q.leased_until < ${now})
              and (not w.ordered or q.order_key is null or not exists (
                select 1 from event_deliveries p
                where p.subscription_id = q.subscription_id and p.order_key = q.order_key
                  and p.status = 'pending' and p.id < q.id))
            order by q.next_at, q.id
            limit w.k
            for update of q skip locked) x
        ) pick
        where d.id = pick.id
        returning d.id, d.subscription_id, d.event_id, d.attempts
      )
      select json_build_object(
        'd', (select json_agg(c order by c.id) from c),
        'e', (select json_agg(json_build_object(
                'id', e.id, 'type', e.type, 'version', e.version, 'source', e.source, 'locationId', e.location_id,
                'contactId', e.contact_id, 'receivedMs', floor(extract(epoch from e.received_at) * 1000),
                'data', e.data))
              from event_log e where e.id in (select event_id from c))
      ) as out`.execute(db);
    const out = r.rows[0]?.out;
    const claimed = out?.d ?? [];
    if (!claimed.length) return [];
    // The body is the same for every subscription an event goes to: built once.
    const bodies = new Map<string, string>();
    for (const e of out?.e ?? [])
      bodies.set(
        e.id,
        JSON.stringify({
          id: e.id,
          type: e.type,
          version: e.version,
          source: e.source,
          locationId: e.locationId,
          contactId: e.contactId,
          receivedAt: new Date(Number(e.receivedMs)).toISOString(),
          data: e.data,
        }),
      );
    const posts: Promise<void>[] & { full?: boolean } = [];
    for (const raw of claimed) {
      const left = (asked.get(raw.subscription_id) ?? 0) - 1;
      asked.set(raw.subscription_id, left);
      if (left === 0) posts.full = true;
      const ep = this.#eps.get(raw.subscription_id) ?? eps.find((x) => x.row.id === raw.subscription_id);
      const body = bodies.get(raw.event_id);
      const d: Claimed = { ...raw, id: Number(raw.id), attempts: Number(raw.attempts) };
      if (!ep || body === undefined) continue; // removed meanwhile: the lease ends and it is claimed again
      ep.inflight++;
      const p = this.#post(ep, d, body).then((res) => {
        const wasFull = ep.inflight >= this.#limit(ep);
        ep.inflight--;
        this.#posts.delete(p);
        if (this.#closed) return;
        this.#results.push(res);
        this.#release(ep);
        if (this.#running) this.#flushSoon();
        if (wasFull) this.wake(); // a slot freed where there were none
      });
      this.#posts.add(p);
      posts.push(p);
    }
    return posts;
  }

  async #post(ep: Endpoint, d: Claimed, body: string): Promise<Result> {
    const at = this.deps.now();
    const started = performance.now();
    const tsSec = Math.floor(Date.now() / 1000);
    const signature = this.#keys(ep)
      .map((k) => signWebhook(k, d.event_id, tsSec, body))
      .join(' ');
    const urlText = ep.row.url;
    const url = new URL(urlText);
    const done = (r: Omit<Result, 'ep' | 'd' | 'at' | 'latencyMs'>): Result => ({
      ep,
      d,
      at,
      latencyMs: Math.round(performance.now() - started),
      ...r,
    });
    const host = hostOf(urlText);
    if (isIP(host)) {
      const why = this.deps.guard.refusal(host);
      if (why) return done({ status: null, head: null, error: `refused: ${why}` });
    }
    const secure = url.protocol === 'https:';
    const c = this.deps.settings.concurrency;
    const agent = secure
      ? (ep.httpsAgent ??= new https.Agent({ keepAlive: true, maxSockets: c }))
      : (ep.agent ??= new http.Agent({ keepAlive: true, maxSockets: c }));
    const mod = secure ? https : http;
    return new Promise<Result>((resolve) => {
      let settled = false;
      const finish = (r: Result) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const req = mod.request(
        {
          method: 'POST',
          protocol: url.protocol,
          hostname: host,
          port: url.port || undefined,
          path: `${url.pathname}${url.search}`,
          agent,
          lookup: this.deps.guard.lookup as never,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'user-agent': 'ghl-bridge-events/1',
            'webhook-id': d.event_id,
            'webhook-timestamp': String(tsSec),
            'webhook-signature': signature,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (ch: Buffer) => {
            if (size < RESPONSE_HEAD_BYTES) {
              chunks.push(ch);
              size += ch.length;
            }
          });
          res.on('end', () =>
            finish(
              done({
                status: res.statusCode ?? 0,
                head: Buffer.concat(chunks).subarray(0, RESPONSE_HEAD_BYTES).toString('utf8'),
                error: null,
                retryAfterMs: parseRetryAfter(res.headers['retry-after'] as string | undefined, Date.now()),
              }),
            ),
          );
          res.on('error', (e) => finish(done({ status: res.statusCode ?? null, head: null, error: e.message })));
        },
      );
      const timer = setTimeout(() => {
        req.destroy(new Error(`timed out after ${this.deps.settings.timeoutMs} ms`));
      }, this.deps.settings.timeoutMs);
      req.on('error', (e) => finish(done({ status: null, head: null, error: e.message.slice(0, 500) })));
      req.end(body);
    });
  }

  /**
   * The record statement: every attempt finished since the last one (delivery rows, attempt log, endpoint health).
   * Returns how many. If it fails the results are kept for the next round (their leases outlast it).
   */
  async #flush(): Promise<number> {
    if (!this.#results.length) return 0;
    const { db, rnd, settings } = this.deps;
    const results = this.#results;
    this.#results = [];
    const now = this.deps.now();
    const nowIso = new Date(now).toISOString();
    const outcomes: Array<'delivered' | 'retry' | 'dead'> = [];
    const byEp = new Map<Endpoint, { ok: number; failed: number; gone: boolean; firstAt: number }>();
    const updates = results.map((r) => {
      const attempt = r.d.attempts + 1;
      const success = r.status !== null && r.status >= 200 && r.status < 300;
      const why =
        r.error ?? (r.status !== null ? `HTTP ${r.status}${r.head ? `: ${r.head.slice(0, 200)}` : ''}` : 'failed');
      let status: 'delivered' | 'pending' | 'dead' = 'delivered';
      let nextAt = now;
      let deadReason: string | null = null;
      const h = byEp.get(r.ep) ?? { ok: 0, failed: 0, gone: false, firstAt: r.at };
      byEp.set(r.ep, h);
      if (success) h.ok++;
      else {
        h.failed++;
        if (r.status === 410) {
          h.gone = true;
          status = 'dead';
          deadReason = 'the endpoint answered 410 Gone: subscription disabled';
        } else if (attempt >= MAX_ATTEMPTS) {
          status = 'dead';
          deadReason = `failed ${attempt} attempts; last: ${why}`.slice(0, 1000);
        } else {
          status = 'pending';
          nextAt = now + retryDelay(attempt, rnd, r.retryAfterMs);
        }
      }
      outcomes.push(status === 'pending' ? 'retry' : status);
      return {
        id: r.d.id,
        status,
        attempts: attempt,
        next_at: new Date(nextAt).toISOString(),
        last_status: r.status,
        last_error: success ? null : why.slice(0, 1000),
        dead_reason: deadReason,
        finished: status === 'pending' ? null : nowIso,
        sub: r.ep.row.id,
        event_id: r.d.event_id,
        at: new Date(r.at).toISOString(),
        latency: r.latencyMs,
        head: r.head,
        error: r.error,
      };
    });

    // Circuit breaker and "failing too long": the endpoints' new health, written in the same statement.
    type Health = Pick<SubRow, 'consecutive_failures' | 'failing_since' | 'circuit_open_until'>;
    const health = new Map<Endpoint, Health>();
    const disable: Array<{ ep: Endpoint; reason: string }> = [];
    for (const [ep, h] of byEp) {
      const row = ep.row;
      if (h.ok > 0) {
        if (row.consecutive_failures > 0 || row.failing_since || row.circuit_open_until)
          health.set(ep, { consecutive_failures: 0, failing_since: null, circuit_open_until: null });
      } else if (h.failed > 0) {
        const consecutive = row.consecutive_failures + h.failed;
        const failingSince = row.failing_since ?? new Date(h.firstAt);
        const open = consecutive >= settings.breakerThreshold ? new Date(now + settings.breakerCooldownMs) : null;
        health.set(ep, { consecutive_failures: consecutive, failing_since: failingSince, circuit_open_until: open });
        if (!h.gone && settings.disableAfterMs > 0 && now - failingSince.getTime() >= settings.disableAfterMs) {
          const days = Math.round((settings.disableAfterMs / 86_400_000) * 10) / 10;
          disable.push({ ep, reason: `failing for ${days} days (EVENTS_DISABLE_AFTER_DAYS)` });
        }
      }
      if (h.gone) disable.push({ ep, reason: 'the endpoint answered 410 Gone' });
    }
    const healthRows = [...health].map(([ep, h]) => ({
      id: ep.row.id,
      cf: h.consecutive_failures,
      fs: h.failing_since?.toISOString() ?? null,
      co: h.circuit_open_until?.toISOString() ?? null,
    }));

    this.stats.statements++;
    try {
      await sql`
        with v as (
          select * from json_to_recordset(${JSON.stringify(updates)}::json) as v(
            id bigint, status text, attempts int, next_at timestamptz, last_status int, last_error text,
            dead_reason text, finished timestamptz, sub text, event_id text, at timestamptz, latency int, head text,
            error text)
        ),
        a as (
          insert into event_delivery_attempts
            (delivery_id, subscription_id, event_id, attempt, at, status_code, latency_ms, response_head, error)
          select v.id, v.sub, v.event_id, v.attempts, v.at, v.last_status, v.latency, v.head, v.error from v
          where exists (select 1 from event_deliveries d where d.id = v.id)
        ),
        h as (
          update event_subscriptions s set
            consecutive_failures = h.cf, failing_since = h.fs, circuit_open_until = h.co
          from json_to_recordset(${JSON.stringify(healthRows)}::json) as h(id text, cf int, fs timestamptz, co timestamptz)
          where s.id = h.id
        )
        update event_deliveries d set
          status = v.status, attempts = v.attempts, next_at = v.next_at, last_status = v.last_status,
          last_error = v.last_error, dead_reason = v.dead_reason, finished_at = v.finished, leased_until = null
        from v where d.id = v.id`.execute(db);
    } catch (e) {
      this.#results = results.concat(this.#results);
      throw e;
    }
    this.stats.attempts += results.length;
    results.forEach((r, i) => this.deps.onAttempt?.(outcomes[i]!, r.latencyMs));
    for (const [ep, h] of health) ep.row = { ...ep.row, ...h };
    // Claimable now: the successors of ordered deliveries, and more than the probe once a circuit closes.
    if (health.size || results.some((r) => r.ep.row.ordering !== 'none')) this.wake();
    for (const { ep, reason } of disable) {
      if (ep.row.state !== 'enabled') continue;
      ep.row = { ...ep.row, state: 'disabled' };
      await this.deps.disable(ep.row.id, ep.row.url, reason);
    }
    return results.length;
  }
}
