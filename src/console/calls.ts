import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../app.js';
import { errorResponses, idString, timestamp } from '../infra/http/schemas.js';
import { MASK, maskSecrets } from './mask.js';

/** Keys whose values are personal data in a workflow payload (GHL's standard payload carries the whole contact). */
const PII_KEY =
  /^(first_?name|last_?name|full_?name|name|email|phone|address\d?|address_?line\d?|city|postal_?code|zip|date_of_birth|dob|company_?name|website|ssn|ip)$/i;
const EMAIL = /[^\s@"]+@[^\s@"]+\.[^\s@"]+/g;
/** A phone number: an international one (+…) anywhere in a text, or a whole value of 7–15 digits with separators. */
const PHONE_IN_TEXT = /\+\d[\d\s().-]{5,}\d/g;
const isPhone = (s: string) => !/^\d{4}-\d{2}-\d{2}$/.test(s) && /^\+?\d{7,15}$/.test(s.replace(/[\s().-]/g, ''));

/** A payload as an operator may see it: secrets (mask.ts) and personal data (names, emails, phones) masked. */
export function maskPersonal(value: unknown, depth = 0): unknown {
  const v = depth === 0 ? maskSecrets(value) : value;
  if (depth > 20) return MASK;
  if (typeof v === 'string') return isPhone(v) ? MASK : v.replace(EMAIL, MASK).replace(PHONE_IN_TEXT, MASK);
  if (Array.isArray(v)) return v.map((x) => maskPersonal(x, depth + 1));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v))
      out[k] = PII_KEY.test(k) && x !== null && x !== '' && typeof x !== 'object' ? MASK : maskPersonal(x, depth + 1);
    return out;
  }
  return v;
}

/** The masked payload as one line, cut to `max` characters. */
export function payloadExcerpt(value: unknown, max = 400): string {
  const s = JSON.stringify(maskPersonal(value)) ?? '';
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** The console's "Call payloads" screen: calls' rejected workflow payloads, masked (when the calls module runs). */
export function registerCallPayloadsApi(app: FastifyInstance, ctx: AppContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const state = z.enum(['unmappable', 'forged', 'failed']);
  r.get(
    '/admin/api/calls/rejected',
    {
      schema: {
        tags: ['admin: console'],
        summary: 'Workflow payloads and call events that made no call: unmappable, forged (not confirmed), failed',
        description: 'Newest first. The payload excerpt has secrets and personal data masked.',
        querystring: z.object({
          state: state.optional(),
          locationId: idString.optional(),
          before: z.coerce.number().int().min(1).optional().describe('page: entries with a smaller id (nextBefore)'),
          limit: z.coerce.number().int().min(1).max(200).default(50),
        }),
        response: {
          200: z.object({
            available: z.boolean().describe('false: the calls module does not run in this bridge'),
            entries: z.array(
              z.object({
                id: z.number().int(),
                receivedAt: timestamp,
                locationId: z.string(),
                source: z.enum(['workflow', 'app']),
                state,
                reason: z.string().nullable(),
                excerpt: z.string().describe('the payload, masked, cut to 400 characters'),
              }),
            ),
            nextBefore: z.number().int().nullable(),
          }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (req) => {
      const calls = ctx.services.find('calls');
      if (!calls) return { available: false, entries: [], nextBefore: null };
      const { entries, nextBefore } = await calls.rejected(req.query);
      return {
        available: true,
        entries: entries.map(({ payload, ...e }) => ({ ...e, excerpt: payloadExcerpt(payload) })),
        nextBefore,
      };
    },
  );
}
