/** One field-level problem in a 400: where (`body.config.token`, `params.locationId`) and what was expected. */
export interface ErrorDetail {
  path: string;
  message: string;
}

/**
 * The one error shape of the bridge's own API (admin API, inbound channel endpoints, OAuth JSON answers):
 * `{ statusCode, error, message, requestId, details? }`. Routes throw `httpError(...)` (or fail their zod route
 * schema); the server's error handler (server.ts) answers it, adding the request id.
 */
export interface ApiError {
  statusCode: number;
  error: string;
  message: string;
  requestId: string;
  details?: ErrorDetail[];
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

export const reasonPhrase = (status: number) =>
  REASONS[status] ?? (status >= 500 ? 'Internal Server Error' : 'Bad Request');

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly details?: ErrorDetail[],
    /** Overrides the reason phrase in `error` (e.g. a machine-readable code a caller already depends on). */
    readonly errorCode?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function httpError(status: number, message: string, details?: ErrorDetail[], errorCode?: string): HttpError {
  return new HttpError(status, message, details, errorCode);
}

/** The one shape for an error answered directly (when headers such as Retry-After go with it). */
export function errorBody(
  requestId: string,
  status: number,
  message: string,
  opts: { errorCode?: string; details?: ErrorDetail[] } = {},
): ApiError {
  return {
    statusCode: status,
    error: opts.errorCode ?? reasonPhrase(status),
    message,
    requestId,
    ...(opts.details?.length ? { details: opts.details } : {}),
  };
}
