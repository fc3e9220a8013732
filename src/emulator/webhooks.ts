import { createSign, sign as edSign } from 'node:crypto';
import type { Clock } from './clock.js';
import type { IdGen } from './ids.js';
import type { SigningKeys } from './keys.js';
import type { ResolvedOptions } from './options.js';
import type { Delivery, State } from './state.js';
import { takeDrop } from './drop-rules.js';

export interface EnqueueArgs {
  kind: 'app' | 'provider';
  appId: string;
  url: string;
  eventType: string;
  payload: Record<string, unknown>;
  /** Add webhookId + timestamp to the body (GHL envelope fields, flat at top level). */
  envelope: boolean;
  locationId?: string;
  companyId?: string;
}

/**
 * Outgoing webhooks: body = JSON.stringify(payload) and the signatures cover exactly those UTF-8 bytes
 * (docs/ghl-behaviour.md#signed-bytes). Retry policy (#webhook-retries): only a 429 answer is retried, up to N times, interval + jitter; 2xx done;
 * other 4xx, 5xx, timeouts and connection errors are final.
 */
export class WebhookDispatcher {
  private inFlight = 0;
  private waiters: (() => void)[] = [];
  private timers = new Set<NodeJS.Timeout>();
  private controllers = new Set<AbortController>();
  private dropNext = 0;
  private delayMs = 0;
  private closed = false;

  constructor(
    private readonly state: State,
    private readonly clock: Clock,
    private readonly ids: IdGen,
    private readonly keys: SigningKeys,
    private readonly opts: ResolvedOptions,
  ) {}

  sign(body: string): Record<string, string> {
    const bytes = Buffer.from(body, 'utf8');
    const h: Record<string, string> = {};
    if (this.opts.signWithEd25519)
      h['x-ghl-signature'] = edSign(null, bytes, this.keys.ed25519Private).toString('base64');
    if (this.opts.signWithRsa)
      h['x-wh-signature'] = createSign('SHA256').update(bytes).sign(this.keys.rsaPrivate, 'base64');
    return h;
  }

  dropWebhooks(n: number): void {
    this.dropNext += n;
  }

  delayWebhooks(ms: number): void {
    this.delayMs = ms;
  }

  enqueue(a: EnqueueArgs): Delivery {
    const webhookId = a.envelope ? this.ids.uuid() : undefined;
    const payload = a.envelope ? { ...a.payload, timestamp: this.clock.iso(), webhookId } : a.payload;
    const body = JSON.stringify(payload);
    const d: Delivery = {
      id: this.ids.id(),
      kind: a.kind,
      appId: a.appId,
      url: a.url,
      eventType: a.eventType,
      payload,
      body,
      // Delivery-URL calls are unsigned unless signProviderDeliveries (as real GHL's: observed #224).
      headers: {
        'content-type': 'application/json',
        ...(a.kind === 'app' || this.opts.signProviderDeliveries ? this.sign(body) : {}),
      },
      attempts: [],
      state: 'scheduled',
      createdAt: this.clock.now(),
      ...(webhookId !== undefined ? { webhookId } : {}),
      ...(a.locationId !== undefined ? { locationId: a.locationId } : {}),
      ...(a.companyId !== undefined ? { companyId: a.companyId } : {}),
    };
    this.state.deliveries.push(d);
    if (this.dropNext > 0 || takeDrop(this, d)) {
      if (this.dropNext > 0) this.dropNext--;
      d.state = 'dropped';
      return d;
    }
    this.schedule(d, this.delayMs);
    return d;
  }

  private begin(): void {
    this.inFlight++;
  }

  private end(): void {
    this.inFlight--;
    if (this.inFlight === 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    }
  }

  /** Always async so the API response that triggered a webhook is not blocked by it. */
  private schedule(d: Delivery, ms: number): void {
    this.begin();
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.attempt(d).finally(() => this.end());
    }, ms);
    this.timers.add(t);
  }

  private async attempt(d: Delivery): Promise<void> {
    if (this.closed) return;
    d.state = 'in_flight';
    const started = Date.now();
    const ac = new AbortController();
    this.controllers.add(ac);
    const timer = setTimeout(() => ac.abort(new Error('timeout')), this.opts.webhookTimeoutMs);
    try {
      const res = await fetch(d.url, { method: 'POST', headers: d.headers, body: d.body, signal: ac.signal });
      const text = await res.text().catch(() => '');
      d.attempts.push({
        at: this.clock.now(),
        status: res.status,
        responseBody: text.slice(0, 2000),
        durationMs: Date.now() - started,
      });
      if (res.status >= 200 && res.status < 300) d.state = 'delivered';
      else if (res.status === 429 && d.attempts.length <= this.opts.webhookMaxRetries && !this.closed) {
        d.state = 'retry_scheduled';
        const jitter = Math.floor(this.ids.random() * (this.opts.webhookRetryJitterMs + 1));
        this.schedule(d, this.opts.webhookRetryIntervalMs + jitter);
      } else d.state = 'failed';
    } catch (err) {
      const msg = ac.signal.aborted
        ? 'timeout'
        : err instanceof Error
          ? err.cause instanceof Error
            ? err.cause.message
            : err.message
          : String(err);
      d.attempts.push({ at: this.clock.now(), error: msg, durationMs: Date.now() - started });
      d.state = 'failed';
    } finally {
      clearTimeout(timer);
      this.controllers.delete(ac);
    }
  }

  /** Resolves when nothing is in flight or scheduled (including 429 retries). */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  reset(): void {
    this.dropNext = 0;
    this.delayMs = 0;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) {
      clearTimeout(t);
      this.end();
    }
    this.timers.clear();
    for (const c of this.controllers) c.abort(new Error('emulator closed'));
  }
}
