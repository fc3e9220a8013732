/** Thrown by a handler: try again after `delayMs` without using up an attempt (e.g. rate limited). */
export class RetryLaterError extends Error {
  constructor(
    readonly delayMs: number,
    reason: string,
  ) {
    super(reason);
    this.name = 'RetryLaterError';
  }
}

/** Thrown by a handler: retrying cannot help; the job goes straight to dead with this reason. */
export class PermanentJobError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'PermanentJobError';
  }
}

/**
 * Thrown by a handler: the job cannot run until an operator or another event acts (e.g. the
 * installation needs re-authorization). The job is parked as 'paused' — not failed, not retried
 * in a loop — and `resumeScope` puts it back.
 */
export class PauseJobError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'PauseJobError';
  }
}
