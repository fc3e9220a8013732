import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
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
  onSubscriptions?: (enabled: number) => void;
}

interface Claimed {
  id: number;
  event_id: string;
  attempts: number;
  type: string;
  version: number;
  source: string;
  location_id: string | null;
  contact_id: string | null;
  received_at: Date;
  data: unknown;
}

interface Result {
  d: Claimed;
  at: number;
  status: number | null;
  latencyMs: number;
  head: string | null;
  error: string | null;
  retryAfterMs?: number | undefined;
}

type SubRow = SubscriptionRow;

/**
 * Delivers pending deliveries, one loop per enabled subscription in each replica. A loop claims due deliveries of its
 * subscription under a lease (FOR UPDATE SKIP LOCKED, so replicas never deliver the same row at once and a crashed
 * one's rows are delivered again once the lease ends), posts up to `concurrency` at a time, then records every attempt
 * and outcome in one statement. Loops are independent: a hanging endpoint holds only its own loop and sockets,
 * never a healthy subscription's. After `breakerThreshold` consecutive failures the circuit opens for
 * `breakerCooldownMs` (nothing is sent), then one probe decides whether it closes.
 */
export class DeliveryEngine {
  readonly #loops = new Map<string, SubscriptionLoop>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  readonly #refreshing = new Set<Promise<void>>();
  #polling = false;

  constructor(readonly deps: EngineDeps) {}

  /** Starts the delivery loops (`deliver`), or only the periodic read of the subscriptions. */
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
  }

  /** Re-reads subscriptions (new, changed, disabled) and kicks every loop. */
  async refresh(): Promise<void> {
    const run = (async () => {
      try {
        const rows = await this.deps.db.selectFrom('event_subscriptions').selectAll().execute();
        this.deps.onSubscriptions?.(rows.filter((r) => r.state === 'enabled').length);
        const seen = new Set<string>();
        for (const r of rows) {
          if (r.state !== 'enabled') continue;
          seen.add(r.id);
          if (!this.#running) continue;
          let l = this.#loops.get(r.id);
          if (!l) {
            l = new SubscriptionLoop(this.deps, r);
            this.#loops.set(r.id, l);
            l.start();
          } else l.update(r);
          l.kick();
        }
        for (const [id, l] of this.#loops)
          if (!seen.has(id)) {
            this.#loops.delete(id);
            void l.stop();
          }
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
    for (const l of this.#loops.values()) l.kick();
  }

  /**
   * One pass for one subscription, without the background loop (tests with an injected clock, the CLI): claims what
   * is due now and delivers it. Returns how many were attempted.
   */
  async runOnce(subId: string): Promise<number> {
    const r = await this.deps.db
      .selectFrom('event_subscriptions')
      .selectAll()
      .where('id', '=', subId)
      .executeTakeFirst();
    if (!r || r.state !== 'enabled') return 0;
    const l = this.#loops.get(subId) ?? new SubscriptionLoop(this.deps, r);
    l.update(r);
    let total = 0;
    for (;;) {
      const n = await l.round();
      total += n;
      if (n < this.deps.settings.concurrency || l.blocked()) return total;
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearInterval(this.#timer);
    await Promise.all([...this.#refreshing]);
    await Promise.all([...this.#loops.values()].map((l) => l.stop()));
    this.#loops.clear();
  }
}

class SubscriptionLoop {
  #row: SubRow;
  #secrets: { key: string; hooks: Webhook[] } | undefined;
  #kicked = false;
  #wakeUp: (() => void) | undefined;
  #stopped = false;
  #done: Promise<void> | undefined;
  readonly #agent: http.Agent;
  readonly #httpsAgent: https.Agent;

  constructor(
    private readonly deps: EngineDeps,
    row: SubRow,
  ) {
    this.#row = row;
    const c = deps.settings.concurrency;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: c });
    this.#httpsAgent = new https.Agent({ keepAlive: true, maxSockets: c });
  }

  update(row: SubRow): void {
    this.#row = row;
  }

  start(): void {
    this.#done = this.#run();
  }

  kick(): void {
    this.#kicked = true;
    this.#wakeUp?.();
  }

  /** Circuit open: nothing may be sent before circuit_open_until. */
  blocked(): boolean {
    const until = this.#row.circuit_open_until;
    return until !== null && until.getTime() > this.deps.now();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wakeUp?.();
    await this.#done;
    this.#agent.destroy();
    this.#httpsAgent.destroy();
  }

  async #run(): Promise<void> {
    const { settings, log } = this.deps;
    while (!this.#stopped) {
      this.#kicked = false;
      let n = 0;
      try {
        n = await this.round();
      } catch (e) {
        log.warn({ err: e, subscription: this.#row.id }, 'event delivery round failed; trying again');
      }
      if (this.#stopped || this.#row.state !== 'enabled') return;
      if (n >= settings.concurrency && !this.blocked()) continue; // a full round: more are likely due
      if ((n > 0 || this.#kicked) && !this.blocked()) {
        // Fewer than a full round: gather what arrives for a moment, so a steady stream is claimed, sent and
        // recorded in rounds (two statements each) rather than one round per event.
        if (settings.batchMs > 0) await new Promise((r) => setTimeout(r, settings.batchMs));
        continue;
      }
      const until = this.#row.circuit_open_until?.getTime();
      const wait =
        until && until > this.deps.now() ? Math.min(settings.pollMs, until - this.deps.now()) : settings.pollMs;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        this.#wakeUp = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wakeUp = undefined;
    }
  }

  #hooks(): Webhook[] {
    const r = this.#row;
    const key = `${r.secret_enc}|${r.previous_secret_enc ?? ''}|${r.previous_secret_until?.getTime() ?? ''}|${
      r.previous_secret_until && r.previous_secret_until.getTime() > this.deps.now()
    }`;
    if (this.#secrets?.key !== key)
      this.#secrets = {
        key,
        hooks: signingSecrets(this.deps.ring, r.id, r, this.deps.now()).map((s) => new Webhook(s)),
      };
    return this.#secrets.hooks;
  }

  /** Claims up to `concurrency` due deliveries (1 when the circuit is half-open), delivers, records. */
  async round(): Promise<number> {
    const { db, settings } = this.deps;
    const row = this.#row;
    if (row.state !== 'enabled' || this.blocked()) return 0;
    const now = this.deps.now();
    const halfOpen = row.consecutive_failures >= settings.breakerThreshold;
    const limit = halfOpen ? 1 : settings.concurrency;
    const leaseUntil = new Date(now + settings.timeoutMs + 5_000);
    const ordered = row.ordering !== 'none';
    const claimed = await sql<Claimed>`
      with c as (
        update event_deliveries set leased_until = ${leaseUntil}
        where id in (
          select d.id from event_deliveries d
          where d.subscription_id = ${row.id} and d.status = 'pending' and d.next_at <= ${new Date(now)}
            and (d.leased_until is null or d.leased_until < ${new Date(now)})
            ${
              ordered
                ? sql`and (d.order_key is null or not exists (
                    select 1 from event_deliveries p
                    where p.subscription_id = d.subscription_id and p.order_key = d.order_key
                      and p.status = 'pending' and p.id < d.id))`
                : sql``
            }
          order by d.next_at, d.id
          limit ${limit}
          for update skip locked)
        returning id, event_id, attempts
      )
      select c.id, c.event_id, c.attempts, e.type, e.version, e.source, e.location_id, e.contact_id, e.received_at, e.data
      from c join event_log e on e.id = c.event_id
      order by c.id`.execute(db);
    const batch = claimed.rows.map((r) => ({ ...r, id: Number(r.id), attempts: Number(r.attempts) }));
    if (!batch.length) return 0;
    const hooks = this.#hooks();
    const results = await Promise.all(batch.map((d) => this.#post(d, hooks)));
    await this.#record(results);
    return batch.length;
  }

  async #post(d: Claimed, hooks: Webhook[]): Promise<Result> {
    const at = this.deps.now();
    const started = performance.now();
    const body = JSON.stringify({
      id: d.event_id,
      type: d.type,
      version: d.version,
      source: d.source,
      locationId: d.location_id,
      contactId: d.contact_id,
      receivedAt: new Date(d.received_at).toISOString(),
      data: d.data,
    });
    const ts = new Date();
    const signature = hooks.map((h) => h.sign(d.event_id, ts, body)).join(' ');
    const url = new URL(this.#row.url);
    const done = (r: Omit<Result, 'd' | 'at' | 'latencyMs'>): Result => ({
      d,
      at,
      latencyMs: Math.round(performance.now() - started),
      ...r,
    });
    const host = hostOf(this.#row.url);
    if (isIP(host)) {
      const why = this.deps.guard.refusal(host);
      if (why) return done({ status: null, head: null, error: `refused: ${why}` });
    }
    const mod = url.protocol === 'https:' ? https : http;
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
          agent: url.protocol === 'https:' ? this.#httpsAgent : this.#agent,
          lookup: this.deps.guard.lookup as never,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'user-agent': 'ghl-bridge-events/1',
            'webhook-id': d.event_id,
            'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)),
            'webhook-signature': signature,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            if (size < RESPONSE_HEAD_BYTES) {
              chunks.push(c);
              size += c.length;
            }
          });
          const end = () =>
            finish(
              done({
                status: res.statusCode ?? 0,
                head: Buffer.concat(chunks).subarray(0, RESPONSE_HEAD_BYTES).toString('utf8'),
                error: null,
                retryAfterMs: parseRetryAfter(res.headers['retry-after'] as string | undefined, Date.now()),
              }),
            );
          res.on('end', end);
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

  async #record(results: Result[]): Promise<void> {
    const { db, rnd, settings } = this.deps;
    const row = this.#row;
    const now = this.deps.now();
    let gone = false;
    let ok = 0;
    const updates = results.map((r) => {
      const attempt = r.d.attempts + 1;
      const success = r.status !== null && r.status >= 200 && r.status < 300;
      const why =
        r.error ?? (r.status !== null ? `HTTP ${r.status}${r.head ? `: ${r.head.slice(0, 200)}` : ''}` : 'failed');
      let status: 'delivered' | 'pending' | 'dead' = 'delivered';
      let nextAt = now;
      let deadReason: string | null = null;
      if (success) ok++;
      else if (r.status === 410) {
        gone = true;
        status = 'dead';
        deadReason = 'the endpoint answered 410 Gone: subscription disabled';
      } else if (attempt >= MAX_ATTEMPTS) {
        status = 'dead';
        deadReason = `failed ${attempt} attempts; last: ${why}`.slice(0, 1000);
      } else {
        status = 'pending';
        nextAt = now + retryDelay(attempt, rnd, r.retryAfterMs);
      }
      this.deps.onAttempt?.(status === 'pending' ? 'retry' : status, r.latencyMs);
      return {
        id: r.d.id,
        status,
        attempts: attempt,
        next_at: new Date(nextAt).toISOString(),
        last_status: r.status,
        last_error: success ? null : why.slice(0, 1000),
        dead_reason: deadReason,
        finished: status === 'pending' ? null : new Date(now).toISOString(),
        sub: row.id,
        event_id: r.d.event_id,
        at: new Date(r.at).toISOString(),
        latency: r.latencyMs,
        head: r.head,
        error: r.error,
      };
    });
    await sql`
      with v as (
        select * from json_to_recordset(${JSON.stringify(updates)}::json) as v(
          id bigint, status text, attempts int, next_at timestamptz, last_status int, last_error text, dead_reason text,
          finished timestamptz, sub text, event_id text, at timestamptz, latency int, head text, error text)
      ),
      a as (
        insert into event_delivery_attempts
          (delivery_id, subscription_id, event_id, attempt, at, status_code, latency_ms, response_head, error)
        select v.id, v.sub, v.event_id, v.attempts, v.at, v.last_status, v.latency, v.head, v.error from v
        where exists (select 1 from event_deliveries d where d.id = v.id)
      )
      update event_deliveries d set
        status = v.status, attempts = v.attempts, next_at = v.next_at, last_status = v.last_status,
        last_error = v.last_error, dead_reason = v.dead_reason, finished_at = v.finished, leased_until = null
      from v where d.id = v.id`.execute(db);

    // Circuit breaker and "failing too long", on the subscription row.
    const failures = results.length - ok;
    if (ok > 0 && (row.consecutive_failures > 0 || row.failing_since || row.circuit_open_until)) {
      await this.#setHealth({ consecutive_failures: 0, failing_since: null, circuit_open_until: null });
    } else if (ok === 0 && failures > 0) {
      const consecutive = row.consecutive_failures + failures;
      const failingSince = row.failing_since ?? new Date(results[0]!.at);
      const open = consecutive >= settings.breakerThreshold ? new Date(now + settings.breakerCooldownMs) : null;
      await this.#setHealth({
        consecutive_failures: consecutive,
        failing_since: failingSince,
        circuit_open_until: open,
      });
      if (!gone && settings.disableAfterMs > 0 && now - failingSince.getTime() >= settings.disableAfterMs) {
        const days = Math.round((settings.disableAfterMs / 86_400_000) * 10) / 10;
        await this.deps.disable(row.id, row.url, `failing for ${days} days (EVENTS_DISABLE_AFTER_DAYS)`);
        this.#row = { ...this.#row, state: 'disabled' };
      }
    }
    if (gone) {
      await this.deps.disable(row.id, row.url, 'the endpoint answered 410 Gone');
      this.#row = { ...this.#row, state: 'disabled' };
    }
  }

  async #setHealth(h: Pick<SubRow, 'consecutive_failures' | 'failing_since' | 'circuit_open_until'>): Promise<void> {
    this.#row = { ...this.#row, ...h };
    await this.deps.db.updateTable('event_subscriptions').set(h).where('id', '=', this.#row.id).execute();
  }
}
