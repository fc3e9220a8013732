import { z } from 'zod';
import { ID_PATTERN } from './ids.js';

/**
 * Shared pieces of route schemas (zod, through fastify-type-provider-zod): the same declaration validates requests,
 * serializes answers and feeds the OpenAPI document.
 */

/** A GHL (or other system's) id in a path or query string: known alphabet, bounded (ids.ts). */
export const idString = z.string().regex(new RegExp(ID_PATTERN), 'expected an id: 1–64 of A-Z a-z 0-9 _ -');

/** `:locationId` path parameter. */
export const locationIdParams = z.object({ locationId: idString.describe('GHL location id') });

/** A timestamp in an answer (a Date from the store, written as ISO 8601). */
export const timestamp = z.date();

/** The one error shape (errors.ts ApiError), for the document's error answers. */
export const apiErrorSchema = z
  .object({
    statusCode: z.number().int(),
    error: z.string().describe('reason phrase, or a stable machine-readable code where a caller depends on one'),
    message: z.string(),
    requestId: z.string(),
    details: z
      .array(z.object({ path: z.string().describe('e.g. body.config.token, query.limit'), message: z.string() }))
      .optional(),
  })
  .meta({ id: 'ApiError' });

/** Error answers in the one shape, for `response` (codes the route can give besides 2xx). */
export function errorResponses<const C extends readonly number[]>(...codes: C) {
  return Object.fromEntries(codes.map((c) => [c, apiErrorSchema])) as Record<C[number], typeof apiErrorSchema>;
}
