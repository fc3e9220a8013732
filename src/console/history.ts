import { EventEmitter } from 'node:events';
import type { AppContext } from '../app.js';
import { countByState } from '../infra/queue/index.js';

/** One point of the console's own time series (this replica's view; queue depth is the whole store's). */
export interface Sample {
  /** End of the interval (epoch ms). */
  t: number;
  /** Messages whose status GHL accepted during the interval, scaled to one minute. */
  relayedPerMin: number;
  /** Relay latency (webhook stored → GHL accepted the status) of those messages, ms; null without any. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Job runs that failed (retry, dead) during the interval. */
  failures: number;
  /** Webhook deliveries received during the interval, per minute. */
  webhooksPerMin: number;
  queue: Record<string, number>;
}

export function percentile(sorted: number[], p: number): number | null {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

async function counterSum(ctx: AppContext, name: string): Promise<number> {
  const m = ctx.metrics.registry.getSingleMetric(name);
  if (!m) return 0;
  const v = await m.get();
  return v.values.reduce((s, x) => s + x.value, 0);
}

/**
 * A small ring buffer of samples taken every `everyMs` (default 10 s, 360 points = one hour), so the console draws
 * charts without Prometheus. Relay timings come from the provider's relay events; failures and webhook intake from the
 * bridge's own counters; queue depth from the store. Each new sample is emitted ('sample') for the SSE stream.
 */
export class History extends EventEmitter<{ sample: [Sample] }> {
  readonly #points: Sample[] = [];
  readonly #received = new Map<string, number>();
  #latencies: number[] = [];
  #relayed = 0;
  #lastFailures = 0;
  #lastIntake = 0;
  #lastAt = Date.now();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: AppContext,
    readonly everyMs = 10_000,
    private readonly size = 360,
  ) {
    super();
    this.setMaxListeners(200);
  }

  /** Relay events of the provider (when it is loaded). */
  onSend(e: { messageId: string; receivedAt: number; attempt: number }): void {
    if (e.attempt !== 1) return;
    if (this.#received.size > 20_000) this.#received.clear();
    this.#received.set(e.messageId, e.receivedAt);
  }

  onReported(e: { messageId: string; at: number }): void {
    const from = this.#received.get(e.messageId);
    this.#relayed++;
    if (from !== undefined) {
      this.#received.delete(e.messageId);
      if (this.#latencies.length < 50_000) this.#latencies.push(Math.max(0, e.at - from));
    }
  }

  async start(): Promise<void> {
    this.#lastFailures = await counterSum(this.ctx, 'ghl_bridge_job_failures_total');
    this.#lastIntake = await counterSum(this.ctx, 'ghl_bridge_webhook_intake_total');
    this.#lastAt = Date.now();
    await this.sample();
    this.#timer = setInterval(() => void this.sample().catch(() => {}), this.everyMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Takes one sample now (also called by the interval). */
  async sample(): Promise<Sample> {
    const now = Date.now();
    const minutes = Math.max(1, now - this.#lastAt) / 60_000;
    const failures = await counterSum(this.ctx, 'ghl_bridge_job_failures_total');
    const intake = await counterSum(this.ctx, 'ghl_bridge_webhook_intake_total');
    const lat = this.#latencies.sort((a, b) => a - b);
    const s: Sample = {
      t: now,
      relayedPerMin: round(this.#relayed / minutes),
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      failures: Math.max(0, failures - this.#lastFailures),
      webhooksPerMin: round(Math.max(0, intake - this.#lastIntake) / minutes),
      queue: await countByState(this.ctx.db),
    };
    this.#latencies = [];
    this.#relayed = 0;
    this.#lastFailures = failures;
    this.#lastIntake = intake;
    this.#lastAt = now;
    this.#points.push(s);
    if (this.#points.length > this.size) this.#points.splice(0, this.#points.length - this.size);
    this.emit('sample', s);
    return s;
  }

  points(): Sample[] {
    return [...this.#points];
  }
}

const round = (n: number) => Math.round(n * 100) / 100;
