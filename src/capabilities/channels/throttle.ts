import { ChannelRetryableError } from './types.js';

/**
 * Async token bucket. `take()` reserves a token immediately (the balance may go negative) and waits until the
 * reservation is covered, so concurrent callers are served in arrival order at `ratePerSecond`.
 * Default burst is 1 (evenly spaced sends): Cast's window algorithm is undocumented, and a full-size burst followed by
 * refills can put up to 2× the rate into one sliding second.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number = 1,
  ) {
    this.tokens = burst;
    this.last = Date.now();
  }

  async take(signal?: AbortSignal): Promise<void> {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSecond) / 1000);
    this.last = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return;
    const waitMs = Math.ceil((-this.tokens * 1000) / this.ratePerSecond);
    try {
      await delay(waitMs, signal);
    } catch (err) {
      this.tokens += 1; // give the reservation back
      throw new ChannelRetryableError('aborted', 'throttle wait aborted by caller', { cause: err });
    }
  }
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** One bucket per key (e.g. per Cast account), shared by every adapter instance in this process. */
export class BucketRegistry {
  private readonly buckets = new Map<string, TokenBucket>();
  get(key: string, ratePerSecond: number): TokenBucket {
    let b = this.buckets.get(key);
    if (!b || b.ratePerSecond !== ratePerSecond) {
      b = new TokenBucket(ratePerSecond);
      this.buckets.set(key, b);
    }
    return b;
  }
}
