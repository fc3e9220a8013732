/** A non-2xx answer from GHL (or a transport failure, status 0), with what GHL said about it. */
export class GhlApiError extends Error {
  override name = 'GhlApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly traceId: string | undefined,
    readonly body: unknown,
    readonly operation: string,
    /** True when the request may have been applied by GHL (timeout / 5xx on a non-idempotent call). */
    readonly maybeApplied = false,
  ) {
    super(
      `${operation}: ${status ? `HTTP ${status}` : 'network error'}: ${message}${traceId ? ` (traceId ${traceId})` : ''}`,
    );
  }
}

/** GHL's own message from an error body: string, array of validation messages (422) or error/detail. */
export function ghlMessage(body: unknown, fallback: string): string {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    const m = b.message ?? b.error_description ?? b.error ?? b.detail;
    if (Array.isArray(m)) return m.map(String).join(', ');
    if (typeof m === 'string' && m) return m;
  }
  if (typeof body === 'string' && body) return body.slice(0, 300);
  return fallback;
}

export function traceIdOf(body: unknown, headers?: Headers): string | undefined {
  const h = headers?.get('x-trace-id') ?? headers?.get('traceid') ?? undefined;
  if (h) return h;
  if (body && typeof body === 'object' && typeof (body as { traceId?: unknown }).traceId === 'string')
    return (body as { traceId: string }).traceId;
  return undefined;
}
