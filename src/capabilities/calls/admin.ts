import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { MASK, maskSecrets } from '../../console/mask.js';
import type { Db } from '../../infra/db/index.js';
import { errorResponses, idString, timestamp } from '../../infra/http/schemas.js';
import type { WorkflowEndpoints } from './endpoints.js';
import { DEFAULT_MAPPING, fieldMappingSchema } from './mapping.js';

const tags = ['admin: calls'];
const endpointView = z.object({
  locationId: z.string(),
  integrationType: z.enum(['internal', 'client']),
  mapping: z.record(z.string(), z.array(z.string())).nullable().describe('null: the default mapping'),
  maskedUrl: z
    .string()
    .describe('the workflow webhook URL with its token masked (`ghl-bridge calls workflow-url` prints it)'),
  previousValidUntil: timestamp.nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
});

/** Keys whose values are personal data in a workflow payload (GHL's standard payload carries the whole contact). */
const PII_KEY =
  /^(first_?name|last_?name|full_?name|name|email|phone|address\d?|address_?line\d?|city|postal_?code|zip|date_of_birth|dob|company_?name|website|ssn|ip)$/i;
const EMAIL = /[^\s@"]+@[^\s@"]+\.[^\s@"]+/g;
/** A phone number: an international one (+…) anywhere in a text, or a whole value of 7–15 digits with separators. */
const PHONE_IN_TEXT = /\+\d[\d\s().-]{5,}\d/g;
const isPhone = (s: string) => !/^\d{4}-\d{2}-\d{2}$/.test(s) && /^\+?\d{7,15}$/.test(s.replace(/[\s().-]/g, ''));

/** A payload as an operator may see it: secrets (console/mask.ts) and personal data (names, emails, phones) masked. */
export function maskPayload(value: unknown, depth = 0): unknown {
  const v = depth === 0 ? maskSecrets(value) : value;
  if (depth > 20) return MASK;
  if (typeof v === 'string') return isPhone(v) ? MASK : v.replace(EMAIL, MASK).replace(PHONE_IN_TEXT, MASK);
  if (Array.isArray(v)) return v.map((x) => maskPayload(x, depth + 1));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v))
      out[k] = PII_KEY.test(k) && x !== null && x !== '' && typeof x !== 'object' ? MASK : maskPayload(x, depth + 1);
    return out;
  }
  return v;
}

/** The masked payload as one line, cut to `max` characters. */
export function payloadExcerpt(value: unknown, max = 400): string {
  const s = JSON.stringify(maskPayload(value)) ?? '';
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Operator API of calls: endpoints (integration type, mapping) and the inbox (unmappable and forged payloads). */
export async function registerCallsAdminRoutes(app: FastifyInstance, rt: { db: Db; endpoints: WorkflowEndpoints }) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/admin/calls/endpoints',
    {
      schema: {
        tags,
        summary: 'Workflow webhook endpoints per location, and the default mapping',
        response: {
          200: z.object({
            endpoints: z.array(endpointView),
            defaultMapping: z.record(z.string(), z.array(z.string())),
          }),
          ...errorResponses(401),
        },
      },
    },
    async () => ({ endpoints: await rt.endpoints.list(), defaultMapping: DEFAULT_MAPPING }),
  );
  r.put(
    '/admin/calls/endpoints/:locationId',
    {
      schema: {
        tags,
        summary: "Create or configure a location's workflow webhook endpoint (integration type, field mapping)",
        params: z.object({ locationId: idString }),
        body: z.strictObject({
          integrationType: z.enum(['internal', 'client']).optional(),
          mapping: fieldMappingSchema.nullable().optional().describe('null: back to the default mapping'),
        }),
        response: { 200: endpointView, ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const { locationId } = req.params;
      await rt.endpoints.url(locationId);
      await rt.endpoints.configure(locationId, {
        ...(req.body.integrationType ? { integrationType: req.body.integrationType } : {}),
        ...(req.body.mapping !== undefined ? { mapping: req.body.mapping } : {}),
      });
      return (await rt.endpoints.list()).find((e) => e.locationId === locationId)!;
    },
  );
  r.get(
    '/admin/calls/rejected',
    {
      schema: {
        tags,
        summary: 'Workflow payloads and call events that made no call: unmappable, forged (not confirmed), failed',
        description: 'Newest first, for the console. The payload excerpt has secrets and personal data masked.',
        querystring: z.object({
          state: z.enum(['unmappable', 'forged', 'failed']).optional(),
          locationId: idString.optional(),
          before: z.coerce.number().int().min(1).optional().describe('page: entries with a smaller id (nextBefore)'),
          limit: z.coerce.number().int().min(1).max(200).default(50),
        }),
        response: {
          200: z.object({
            entries: z.array(
              z.object({
                id: z.number().int(),
                receivedAt: timestamp,
                locationId: z.string(),
                source: z.enum(['workflow', 'app']),
                state: z.enum(['unmappable', 'forged', 'failed']),
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
      const { state, locationId, before, limit } = req.query;
      let q = rt.db
        .selectFrom('calls_inbox')
        .selectAll()
        .where('state', 'in', state ? [state] : ['unmappable', 'forged', 'failed']);
      if (locationId) q = q.where('location_id', '=', locationId);
      if (before) q = q.where('id', '<', before);
      const rows = await q.orderBy('id', 'desc').limit(limit).execute();
      return {
        entries: rows.map((x) => ({
          id: Number(x.id),
          receivedAt: x.received_at,
          locationId: x.location_id,
          source: x.source,
          state: x.state as 'unmappable' | 'forged' | 'failed',
          reason: x.reason,
          excerpt: payloadExcerpt(x.payload),
        })),
        nextBefore: rows.length === limit ? Number(rows.at(-1)!.id) : null,
      };
    },
  );
  r.get(
    '/admin/calls/inbox',
    {
      schema: {
        tags,
        summary: 'Workflow payloads and call events as received; unmappable and forged ones with the reason',
        querystring: z.object({
          state: z.enum(['received', 'done', 'unmappable', 'forged', 'failed']).optional(),
          locationId: idString.optional(),
          limit: z.coerce.number().int().min(1).max(500).default(100),
        }),
        response: {
          200: z.object({
            entries: z.array(
              z.object({
                id: z.number().int(),
                locationId: z.string(),
                source: z.string(),
                state: z.string(),
                reason: z.string().nullable(),
                callId: z.number().int().nullable(),
                payload: z.unknown(),
                receivedAt: timestamp,
              }),
            ),
          }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (req) => {
      let q = rt.db.selectFrom('calls_inbox').selectAll();
      if (req.query.state) q = q.where('state', '=', req.query.state);
      if (req.query.locationId) q = q.where('location_id', '=', req.query.locationId);
      const rows = await q.orderBy('id', 'desc').limit(req.query.limit).execute();
      return {
        entries: rows.map((x) => ({
          id: Number(x.id),
          locationId: x.location_id,
          source: x.source,
          state: x.state,
          reason: x.reason,
          callId: x.call_id === null ? null : Number(x.call_id),
          payload: x.payload,
          receivedAt: x.received_at,
        })),
      };
    },
  );
}
