/**
 * Runs `fn` with an AbortSignal that aborts when `ms` have passed or when the caller's `signal` aborts, whichever
 * comes first, and clears the timer when `fn` settles.
 *
 * Why not `AbortSignal.any([signal, AbortSignal.timeout(ms)])`: on Node 20 the timeout signal is only weakly held by
 * its timer and by `any()`, so a full garbage collection before it fires can collect it and the deadline is silently
 * lost (nodejs/node#57736). Here the timer is ours (Node keeps an armed timer and its closure alive) and it holds the
 * AbortController strongly, so the deadline fires whatever the GC does.
 *
 * The timeout aborts with a DOMException named "TimeoutError", like `AbortSignal.timeout`; a caller abort passes the
 * caller's reason through.
 */
export async function withDeadline<T>(
  ms: number,
  signal: AbortSignal | undefined,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')), ms);
  const onAbort = () => ac.abort(signal?.reason);
  if (signal?.aborted) ac.abort(signal.reason);
  else signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn(ac.signal);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
