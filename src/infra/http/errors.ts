import type { z } from 'zod';

/** One field-level problem in a 400: where (`body.config.token`, `params.locationId`) and what was expected. */
export interface ErrorDetail {
  path: string;
  message: string;
}

/**
 * The one error shape of the bridge's own API (admin API, inbound channel endpoints, OAuth JSON answers):
 * `{ statusCode, error, message, requestId, details? }`. Routes throw `httpError(...)`; the server's error
 * handler (server.ts) answers it, adding the request id.
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

/** zod issues → details naming each field (prefixed with where it came from: body, query, params). */
export function zodDetails(where: string, error: z.ZodError): ErrorDetail[] {
  return error.issues.map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message }));
}

/** Parses `value` with `schema` or throws a 400 naming every failing field. */
export function parseOr400<T extends z.ZodType>(
  schema: T,
  value: unknown,
  where: 'body' | 'query' | 'params',
): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const details = zodDetails(where, r.error);
  throw httpError(400, details.map((d) => `${d.path}: ${d.message}`).join('; '), details);
}
