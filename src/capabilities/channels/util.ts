import { ChannelRetryableError } from './types.js';

/** Minimal structured logger; a pino `Logger` satisfies it. */
export interface ChannelLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => undefined;
export const silentLogger: ChannelLogger = { debug: noop, info: noop, warn: noop, error: noop };

/** First value of a Node-style header (case-insensitive name). */
export function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== lower) continue;
    return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

/** `Retry-After` (delta-seconds or HTTP-date) → ms; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value == null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Caller's signal plus a per-request deadline that GC cannot lose (see src/infra/util/deadline.ts). */
export { withDeadline } from '../../infra/util/deadline.js';

/**
 * Turn a fetch()/body-read exception into a ChannelRetryableError. The request may or may not have reached the
 * channel, which is why every attempt reuses the same idempotency key.
 */
export function networkError(err: unknown, what: string, callerSignal?: AbortSignal): ChannelRetryableError {
  if (callerSignal?.aborted) {
    return new ChannelRetryableError('aborted', `${what}: aborted by caller`, { cause: err });
  }
  const name = err instanceof Error ? err.name : '';
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new ChannelRetryableError('timeout', `${what}: timed out`, { cause: err });
  }
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return new ChannelRetryableError('network', `${what}: network error${cause}`, { cause: err });
}

/** Read at most `limit` characters of a response body (receivers can be chatty; we only need a short message). */
export async function readText(res: Response, limit = 64 * 1024): Promise<string> {
  const text = await res.text();
  return text.length > limit ? text.slice(0, limit) : text;
}

export function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Keep channel-provided text short and single-line before it goes into GHL or logs. */
export function clip(s: string, max = 300): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}
