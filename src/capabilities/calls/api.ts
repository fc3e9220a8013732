import { pipeline, Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBody, httpError } from '../../infra/http/errors.js';
import { errorResponses, idString, timestamp } from '../../infra/http/schemas.js';
import { normalizeE164 } from '../channels/index.js';
import type { ApiKeyService } from '../../platform/apikeys/index.js';
import { GhlApiError } from '../../platform/ghl/errors.js';
import type { GhlClient } from '../../platform/ghl/client.js';
import { WORKFLOW_PATH, type WorkflowEndpoints } from './endpoints.js';
import { CALL_STATUSES, mapPayload } from './mapping.js';
import type { InboxBatcher } from './batcher.js';
import { storeProviderLog, type ProviderLogInput } from './provider.js';
import { callView, getCall, listCalls, type CallRow, type LinkSigner } from './records.js';
import type { Db } from '../../infra/db/index.js';

export interface ApiRuntime {
  db: Db;
  /** Group commit of workflow payloads, on the store's handle for latency-critical writes. */
  inbox: InboxBatcher;
  endpoints: WorkflowEndpoints;
  signer: LinkSigner;
  publicUrl: string;
  keys: ApiKeyService;
  ghl: () => GhlClient;
  notify: () => void;
  isKnownLocation: (locationId: string) => Promise<boolean>;
  countCall: (op: string) => void;
}

const tags = ['calls'];
/** A recording download from GHL that sends nothing for this long is cut (the caller sees a truncated body). */
const RECORDING_IDLE_MS = 30_000;
const sentence = z.object({
  index: z.number(),
  speaker: z.number().nullable().describe("GHL's mediaChannel: 1 and 2 are the two sides of the call"),
  startMs: z.number().nullable(),
  endMs: z.number().nullable(),
  text: z.string(),
  confidence: z.number().nullable(),
});
const callSchema = z
  .object({
    id: z.number().int(),
    locationId: z.string(),
    contactId: z.string(),
    messageId: z.string().nullable().describe("GHL's call message id"),
    conversationId: z.string().nullable(),
    integrationType: z.enum(['internal', 'client']).describe("the location's integration type, for routing"),
    direction: z.string().nullable(),
    from: z.string().nullable(),
    to: z.string().nullable(),
    status: z
      .string()
      .nullable()
      .describe(`GHL's call status: ${CALL_STATUSES.join(', ')}`),
    disposition: z.string().nullable(),
    durationSec: z.number().int().nullable(),
    userId: z.string().nullable(),
    startedAt: timestamp.nullable(),
    endedAt: timestamp.nullable(),
    recording: z
      .object({
        url: z.string().describe('streams the recording from GHL; needs an API key (or the admin key)'),
        signedUrl: z.string().describe('the same without a key, until signedUrlExpiresAt (CALLS_LINK_TTL_SEC)'),
        signedUrlExpiresAt: timestamp,
      })
      .nullable(),
    transcript: z.object({
      state: z.enum(['pending', 'ready', 'unavailable', 'not_expected']),
      reason: z.string().nullable(),
      sentences: z.array(sentence),
      text: z.string().nullable(),
    }),
    sources: z.array(z.string()).describe('what the record was built from: workflow, app, provider'),
    completedAt: timestamp.nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Call' });
const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.coerce.number().int().min(1).optional().describe('page: calls with a smaller id (nextBefore)'),
});
const listAnswer = z.object({ calls: z.array(callSchema), nextBefore: z.number().int().nullable() });
const callParams = z.object({ locationId: idString, callId: z.coerce.number().int().min(1) });

const providerBody = z.object({
  callId: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[\x21-\x7e]+$/, 'expected printable characters without spaces')
    .describe("the telephony system's id of the call: posting it again changes nothing"),
  direction: z.enum(['inbound', 'outbound']),
  from: z.string().min(3).max(32).describe('the calling number (E.164, or national with the location region US)'),
  to: z.string().min(3).max(32).describe('the called number'),
  status: z.enum(CALL_STATUSES),
  durationSec: z.number().int().min(0).max(86_400).optional(),
  recordingUrl: z
    .url({ protocol: /^https?$/ })
    .max(2000)
    .optional(),
  voicemailUrl: z
    .url({ protocol: /^https?$/ })
    .max(2000)
    .optional(),
  startedAt: z.iso.datetime({ offset: true }).optional(),
  userId: idString.optional(),
});

export function registerCallRoutes(app: FastifyInstance, rt: ApiRuntime): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const guard = rt.keys.requireLocation((req) => (req.params as { locationId?: string }).locationId);
  const view = (row: CallRow) => callView(row, rt.publicUrl, rt.signer);
  const page = (rows: CallRow[], limit: number) => ({
    calls: rows.map(view),
    nextBefore: rows.length === limit ? Number(rows.at(-1)!.id) : null,
  });

  // Workflow webhooks: the raw JSON a GHL user composed. Unsigned; the token in the path is the credential.
  r.post(
    WORKFLOW_PATH,
    {
      schema: {
        tags,
        summary:
          "A GHL workflow's webhook action (call completed, disposition): stored, then confirmed through the API",
        description:
          'The path token (`ghl-bridge calls workflow-url --location L`) names the location. The payload is stored ' +
          'before the answer; one that cannot be mapped is kept with the reason (GET /admin/calls/inbox).',
        params: z.object({ token: z.string().max(200) }),
        body: z.unknown().describe('any JSON object (mapped with the endpoint’s JSON pointers)'),
        response: {
          202: z.object({
            ok: z.literal(true),
            id: z.number().int(),
            state: z.enum(['received', 'unmappable', 'forged']),
            reason: z.string().nullable(),
          }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (req, reply) => {
      const ep = await rt.endpoints.resolve(req.params.token);
      if (!ep) {
        reply.header('www-authenticate', 'Bearer');
        return reply.code(401).send(errorBody(req.id, 401, 'unknown or retired workflow webhook token'));
      }
      const payload = req.body;
      if (payload === null || typeof payload !== 'object' || Array.isArray(payload))
        throw httpError(400, 'expected a JSON object', [{ path: 'body', message: 'expected a JSON object' }]);
      const m = mapPayload(payload, ep.mapping);
      let state: 'received' | 'unmappable' | 'forged' = m.ok ? 'received' : 'unmappable';
      let reason = m.ok ? null : m.reason;
      if (m.ok && m.call.locationId && m.call.locationId !== ep.locationId) {
        state = 'forged';
        reason = `other_location: the payload names location ${m.call.locationId}, this endpoint is for another`;
      }
      const id = await rt.inbox.store({
        locationId: ep.locationId,
        payload: payload as Record<string, unknown>,
        mapped: m.ok ? m.call : null,
        state,
        reason,
      });
      rt.notify();
      return reply.code(202).send({ ok: true as const, id, state, reason });
    },
  );

  r.get(
    '/v1/locations/:locationId/calls',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Calls of a location, newest first',
        params: z.object({ locationId: idString }),
        querystring: listQuery.extend({ contactId: idString.optional() }),
        response: { 200: listAnswer, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => page(await listCalls(rt.db, { locationId: req.params.locationId, ...req.query }), req.query.limit),
  );
  r.get(
    '/v1/locations/:locationId/contacts/:contactId/calls',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Calls of a contact, newest first',
        params: z.object({ locationId: idString, contactId: idString }),
        querystring: listQuery,
        response: { 200: listAnswer, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => page(await listCalls(rt.db, { ...req.params, ...req.query }), req.query.limit),
  );
  r.get(
    '/v1/locations/:locationId/calls/:callId',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'One call',
        params: callParams,
        response: { 200: callSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const row = await getCall(rt.db, req.params.locationId, req.params.callId);
      if (!row) throw httpError(404, `no call ${req.params.callId} in location ${req.params.locationId}`);
      return view(row);
    },
  );

  // Recording: an API key for the location, or a signed link (expires, sig) from the call record.
  const recordingGuard = async (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.query as { expires?: string; sig?: string };
    const p = req.params as { locationId: string; callId: number };
    if (q.sig !== undefined || q.expires !== undefined) {
      if (rt.signer.verify(p.locationId, p.callId, q.expires, q.sig)) return;
      return reply.code(401).send(errorBody(req.id, 401, 'the signed recording link is invalid or has expired'));
    }
    return guard(req, reply);
  };
  r.get(
    '/v1/locations/:locationId/calls/:callId/recording',
    {
      preHandler: recordingGuard,
      schema: {
        tags,
        summary: 'Streams the call recording from GHL (audio/x-wav); never stored by the bridge',
        description: 'Authorization: Bearer <API key>, or the signed link (`expires`, `sig`) from the call record.',
        params: callParams,
        querystring: z.object({ expires: z.string().max(20).optional(), sig: z.string().max(100).optional() }),
        response: {
          200: z.unknown().describe('the audio bytes'),
          ...errorResponses(400, 401, 403, 404, 502),
        },
      },
    },
    async (req, reply) => {
      const row = await getCall(rt.db, req.params.locationId, req.params.callId);
      if (!row) throw httpError(404, `no call ${req.params.callId} in location ${req.params.locationId}`);
      if (!row.message_id) throw httpError(404, 'this call has no GHL call message, so no recording');
      let rec;
      try {
        rt.countCall('messages.recording');
        rec = await rt
          .ghl()
          .messages.recordingStream(row.location_id, row.message_id, { installation: { locationId: row.location_id } });
      } catch (e) {
        if (e instanceof GhlApiError && (e.status === 400 || e.status === 404))
          throw httpError(404, 'GHL has no recording for this call');
        if (e instanceof GhlApiError) throw httpError(502, `GHL answered ${e.status} for the recording`);
        throw e;
      }
      // Piped through, never held: the socket's backpressure reaches GHL's download (pipe pauses the reader), a
      // caller that goes away cancels it, and a download that stalls for RECORDING_IDLE_MS is cut.
      let idle: NodeJS.Timeout | undefined;
      const tap = new Transform({
        transform(chunk, _enc, done) {
          arm();
          done(null, chunk);
        },
      });
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => tap.destroy(new Error('the recording download from GHL stalled')), RECORDING_IDLE_MS);
        idle.unref();
      };
      arm();
      pipeline(Readable.fromWeb(rec.body as WebReadableStream<Uint8Array>), tap, () => clearTimeout(idle));
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) tap.destroy();
      });
      reply
        .header('content-type', rec.contentType)
        .header('content-disposition', `attachment; filename="call-${Number(row.id)}.wav"`)
        .header('cache-control', 'private, no-store');
      if (rec.contentLength !== null) reply.header('content-length', String(rec.contentLength));
      return reply.send(tap);
    },
  );

  r.get(
    '/v1/locations/:locationId/call-events',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Events the bridge emitted for calls (call.completed, call.disposition), oldest first',
        params: z.object({ locationId: idString }),
        querystring: z.object({
          after: z.coerce.number().int().min(0).default(0).describe('events with a larger id (the last id you saw)'),
          limit: z.coerce.number().int().min(1).max(500).default(100),
          type: z.enum(['call.completed', 'call.disposition']).optional(),
        }),
        response: {
          200: z.object({
            events: z.array(
              z.object({
                id: z.number().int(),
                type: z.string(),
                callId: z.number().int(),
                integrationType: z.enum(['internal', 'client']),
                payload: z.record(z.string(), z.unknown()),
                createdAt: timestamp,
              }),
            ),
          }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (req) => {
      let q = rt.db
        .selectFrom('calls_events')
        .selectAll()
        .where('location_id', '=', req.params.locationId)
        .where('id', '>', req.query.after);
      if (req.query.type) q = q.where('type', '=', req.query.type);
      const rows = await q.orderBy('id').limit(req.query.limit).execute();
      return {
        events: rows.map((e) => ({
          id: Number(e.id),
          type: e.type,
          callId: Number(e.call_id),
          integrationType: e.integration_type,
          payload: e.payload,
          createdAt: e.created_at,
        })),
      };
    },
  );

  // Call provider: an external telephony system posts call logs, which the bridge adds to GHL.
  r.post(
    '/v1/locations/:locationId/calls',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Post a call log from your telephony system into GHL (Call conversation provider)',
        description:
          'Idempotent on callId. The contact is found or created by phone (the remote party), then the call is added ' +
          'to its conversation: inbound with Add Inbound Message (type Call), outbound with Add External Outbound Call.',
        params: z.object({ locationId: idString }),
        body: providerBody,
        response: {
          202: z.object({
            id: z.number().int(),
            callId: z.string(),
            state: z.enum(['received', 'posted', 'failed']),
            duplicate: z.boolean().describe('this callId was posted before; nothing new was done'),
            ghlMessageId: z.string().nullable(),
          }),
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (req, reply) => {
      const { locationId } = req.params;
      if (!(await rt.isKnownLocation(locationId))) {
        reply.header('retry-after', '300');
        return reply.code(503).send(
          errorBody(req.id, 503, `ghl-bridge is not installed on location ${locationId}; nothing was stored`, {
            errorCode: 'location_not_installed',
          }),
        );
      }
      const body = { ...req.body } as ProviderLogInput;
      for (const f of ['from', 'to'] as const) {
        const n = normalizeE164(body[f], 'US');
        if (!n.ok)
          throw httpError(400, `${f}: ${n.error.message}`, [
            { path: `body.${f}`, message: `expected a phone number (E.164, or US national): ${n.error.message}` },
          ]);
        body[f] = n.e164;
      }
      const out = await rt.db.transaction().execute((trx) => storeProviderLog(trx, locationId, body));
      rt.notify();
      return reply.code(202).send(out);
    },
  );
}
