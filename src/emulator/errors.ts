/**
 * GHL error bodies (common-schemas.json): 400 {statusCode,message}, 401 {statusCode,message,error},
 * 422 {statusCode,message:[...],error}. Thrown from handlers and rendered by the app's error handler.
 */
export class GhlError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body.message === 'string' ? body.message : `HTTP ${statusCode}`);
  }
}

export const badRequest = (message: string, extra: Record<string, unknown> = {}) =>
  new GhlError(400, { statusCode: 400, message, ...extra });

export const unauthorized = (message = 'Invalid token: access token is invalid') =>
  new GhlError(401, { statusCode: 401, message, error: 'Unauthorized' });

export const forbidden = (message: string) => new GhlError(403, { statusCode: 403, message, error: 'Forbidden' });

export const notFound = (message: string) => new GhlError(404, { statusCode: 404, message, error: 'Not Found' });

export const unprocessable = (messages: string[]) =>
  new GhlError(422, { statusCode: 422, message: messages, error: 'Unprocessable Entity' });

export const tooManyRequests = (retryAfterSec: number) =>
  new GhlError(429, { statusCode: 429, message: 'Too Many Requests' }, { 'retry-after': String(retryAfterSec) });

export const internalError = () => new GhlError(500, { statusCode: 500, message: 'Internal Server Error' });
