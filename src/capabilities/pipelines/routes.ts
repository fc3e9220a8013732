import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { httpError } from '../../infra/http/errors.js';
import { errorResponses, idString, timestamp } from '../../infra/http/schemas.js';
import type { ApiKeyService } from '../../platform/apikeys/index.js';
import type { LocationLookup } from '../../platform/webhooks/index.js';
import {
  acceptOperation,
  cachedPipelines,
  currentPipelineId,
  DEAL_STATUSES,
  getMapping,
  getOperation,
  knownDeal,
  refreshPipelines,
  resolveNames,
  UnknownNameError,
  type PipelineRuntime,
} from './opportunities.js';
import type { PipelineMetrics } from './metrics.js';
import { acceptTrigger, getTriggerRequest, TRIGGER_NAME, triggerExists } from './triggers.js';

export interface PublicRoutesDeps {
  pipelines: PipelineRuntime;
  keys: ApiKeyService;
  locations: LocationLookup | undefined;
  triggerMaxAttempts: number;
  metrics?: PipelineMetrics | undefined;
}

const locationParams = z.object({ locationId: idString.describe('GHL location id') });
const triggerParams = locationParams.extend({
  name: z.string().regex(TRIGGER_NAME, 'expected 1–64 of A-Z a-z 0-9 . _ -').describe('trigger name'),
});
const externalIdString = z
  .string()
  .regex(/^[A-Za-z0-9._:@-]{1,128}$/, 'expected 1–128 of A-Z a-z 0-9 . _ : @ -')
  .describe('your system’s deal id');
const dealParams = locationParams.extend({ externalId: externalIdString });

const triggerRequestView = z
  .object({
    id: z.number().int(),
    locationId: z.string(),
    name: z.string(),
    idempotencyKey: z.string(),
    state: z.enum(['pending', 'delivered', 'dead']),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable().describe('HTTP status of the last forwarding attempt'),
    lastError: z.string().nullable().describe('why the last attempt failed (for dead: why it gave up)'),
    receivedAt: timestamp,
    deliveredAt: timestamp.nullable(),
    statusUrl: z.string(),
    duplicate: z.boolean().describe('true when this idempotency key was already accepted with the same body'),
  })
  .meta({ id: 'TriggerRequest' });

const dealStatus = z.enum(DEAL_STATUSES);
const upsertBody = z
  .object({
    contact: z
      .object({
        id: idString.optional().describe('GHL contact id'),
        email: z.email().optional(),
        phone: z.string().min(3).max(32).optional(),
      })
      .refine((c) => c.id || c.email || c.phone, { message: 'give id, email or phone' })
      .optional()
      .describe('required when the deal is new: the GHL contact, by id or found by email/phone (duplicate search)'),
    name: z.string().min(1).max(500).optional().describe('default on create: the external id'),
    pipeline: z.string().min(1).max(200).optional().describe('pipeline name (required when the deal is new)'),
    stage: z.string().min(1).max(200).optional().describe('stage name; moves the deal'),
    status: dealStatus.optional(),
    monetaryValue: z.number().finite().nonnegative().optional(),
    assignedTo: idString.nullable().optional().describe('GHL user id of the owner'),
  })
  .meta({ id: 'OpportunityUpsert' });

const operationView = z
  .object({
    id: z.number().int(),
    locationId: z.string(),
    externalId: z.string(),
    kind: z.enum(['upsert', 'status']),
    state: z.enum(['pending', 'done', 'failed']),
    opportunityId: z.string().nullable(),
    error: z.string().nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
    statusUrl: z.string(),
  })
  .meta({ id: 'OpportunityOperation' });

/** A map row as both APIs answer it (the public /v1 and the operator's admin list). */
export const mappingView = z
  .object({
    locationId: z.string(),
    externalId: z.string(),
    opportunityId: z.string(),
    contactId: z.string().nullable(),
    name: z.string().nullable(),
    pipelineId: z.string().nullable(),
    pipelineName: z.string().nullable(),
    stageId: z.string().nullable(),
    stageName: z.string().nullable(),
    status: z.string().nullable(),
    monetaryValue: z.number().nullable(),
    assignedTo: z.string().nullable(),
    updatedAt: timestamp,
  })
  .meta({ id: 'OpportunityMapping' });

const pipelinesView = z.object({
  locationId: z.string(),
  fetchedAt: timestamp,
  pipelines: z.array(
    z.object({ id: z.string(), name: z.string(), stages: z.array(z.object({ id: z.string(), name: z.string() })) }),
  ),
});

const triggerTags = ['workflow triggers'];
const dealTags = ['pipeline bridging'];

/** The /v1 routes of workflow triggers and pipeline bridging, each behind an API key scoped to its location. */
export async function registerPublicRoutes(app: FastifyInstance, d: PublicRoutesDeps): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const guard = d.keys.requireLocation((req: FastifyRequest) => (req.params as { locationId?: string }).locationId);
  const installed = async (locationId: string) => {
    if (d.locations && !(await d.locations.isKnownLocation(locationId, null)))
      throw httpError(404, `location ${locationId} is not installed`, undefined, 'location_not_installed');
  };
  const opUrl = (loc: string, id: number) => `/v1/locations/${loc}/opportunity-operations/${id}`;
  const reqUrl = (loc: string, name: string, id: number) => `/v1/locations/${loc}/triggers/${name}/requests/${id}`;

  r.post(
    '/v1/locations/:locationId/triggers/:name',
    {
      preValidation: guard,
      schema: {
        tags: triggerTags,
        summary: "Fire a GHL workflow: stores the payload, then forwards it to the trigger's inbound-webhook URL",
        description:
          'Answers 202 once the payload is stored; a job POSTs it to the configured GHL workflow inbound-webhook URL, ' +
          'retrying 5xx/429/timeouts with backoff (TRIGGER_MAX_ATTEMPTS). Idempotent on `Idempotency-Key` (header) or ' +
          '`idempotencyKey` (body field): the same key with the same body answers the stored request again; with another ' +
          'body, 409.',
        params: triggerParams,
        headers: z.object({ 'idempotency-key': z.string().min(1).max(200).optional() }),
        body: z.record(z.string(), z.unknown()).describe('any JSON object; forwarded as it is'),
        response: { 202: triggerRequestView, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      const { locationId, name } = req.params;
      const header = req.headers['idempotency-key'];
      const field = req.body.idempotencyKey;
      if (field !== undefined && (typeof field !== 'string' || !field || field.length > 200))
        throw httpError(400, 'body.idempotencyKey: expected a string of 1–200 characters', [
          { path: 'body.idempotencyKey', message: 'expected a string of 1–200 characters' },
        ]);
      if (header !== undefined && field !== undefined && header !== field)
        throw httpError(400, 'Idempotency-Key header and body.idempotencyKey differ: send one, or the same in both', [
          { path: 'headers.idempotency-key', message: 'differs from body.idempotencyKey' },
        ]);
      if (!(await triggerExists(d.pipelines.db, locationId, name)))
        throw httpError(
          404,
          `no trigger named ${name} is configured for location ${locationId} (ghl-bridge triggers set)`,
        );
      const key = header ?? (field as string | undefined) ?? randomUUID();
      const res = await acceptTrigger(d.pipelines.db, {
        locationId,
        name,
        idempotencyKey: key,
        payload: req.body,
        maxAttempts: d.triggerMaxAttempts,
      });
      if (res.kind === 'conflict')
        throw httpError(
          409,
          `idempotency key "${key}" was already used for trigger ${name} with a different body (request ${res.request.id})`,
          [
            {
              path: header !== undefined ? 'headers.idempotency-key' : 'body.idempotencyKey',
              message: 'reused with a different body',
            },
          ],
        );
      if (res.kind === 'accepted') d.metrics?.triggers.inc({ name, outcome: 'accepted' });
      const v = res.request;
      return reply
        .code(202)
        .send({ ...v, statusUrl: reqUrl(locationId, name, v.id), duplicate: res.kind === 'duplicate' });
    },
  );

  r.get(
    '/v1/locations/:locationId/triggers/:name/requests/:id',
    {
      preValidation: guard,
      schema: {
        tags: triggerTags,
        summary: 'State of a forwarded trigger call (pending, delivered, dead with its reason)',
        params: triggerParams.extend({ id: z.coerce.number().int().positive() }),
        response: { 200: triggerRequestView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const { locationId, name, id } = req.params;
      const v = await getTriggerRequest(d.pipelines.db, locationId, id);
      if (!v || v.name !== name) throw httpError(404, `no trigger request ${id} for ${name} in location ${locationId}`);
      return { ...v, statusUrl: reqUrl(locationId, name, v.id), duplicate: false };
    },
  );

  r.get(
    '/v1/locations/:locationId/pipelines',
    {
      preValidation: guard,
      schema: {
        tags: dealTags,
        summary: "The location's pipelines and stages (cached; refresh=true reads them from GHL now)",
        params: locationParams,
        querystring: z.object({ refresh: z.enum(['true', 'false']).optional() }),
        response: { 200: pipelinesView, ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (req) => {
      const { locationId } = req.params;
      await installed(locationId);
      let c = req.query.refresh === 'true' ? undefined : await cachedPipelines(d.pipelines.db, locationId);
      c ??= await ghlRead(() => refreshPipelines(d.pipelines, locationId));
      return { locationId, ...c };
    },
  );

  r.put(
    '/v1/locations/:locationId/opportunities/:externalId',
    {
      preValidation: guard,
      schema: {
        tags: dealTags,
        summary: 'Create or update the GHL opportunity of an external deal id (pipeline and stage by name)',
        description:
          'Names are checked against the cached pipelines (refreshed from GHL when a name is unknown); an unknown ' +
          'pipeline or stage is a 422 naming the field and listing the valid names, and nothing is stored. Otherwise ' +
          'answers 202 with an operation whose state a job moves to done (the mapping is then readable) or failed.',
        params: dealParams,
        body: upsertBody,
        response: { 202: operationView, ...errorResponses(400, 401, 403, 404, 422, 503) },
      },
    },
    async (req, reply) => {
      const { locationId, externalId } = req.params;
      const b = req.body;
      await installed(locationId);
      const known = await knownDeal(d.pipelines.db, locationId, externalId);
      if (!known) {
        const missing = [
          ...(b.contact
            ? []
            : [{ path: 'body.contact', message: 'required for a new deal: {id} or {email} or {phone}' }]),
          ...(b.pipeline ? [] : [{ path: 'body.pipeline', message: 'required for a new deal: a pipeline name' }]),
        ];
        if (missing.length)
          throw httpError(
            422,
            `deal ${externalId} is not in GHL yet: ${missing.map((m) => m.path).join(' and ')} required`,
            missing,
            'Unprocessable Entity',
          );
      }
      const ids = await resolveOrExplain(d.pipelines, locationId, {
        pipeline: b.pipeline,
        stage: b.stage,
        pipelineId:
          b.pipeline === undefined ? await currentPipelineId(d.pipelines.db, locationId, externalId) : undefined,
      });
      const op = await acceptOperation(d.pipelines.db, locationId, externalId, 'upsert', {
        contact: { id: b.contact?.id, email: b.contact?.email, phone: b.contact?.phone },
        name: b.name,
        pipelineId: ids.pipelineId,
        pipelineStageId: ids.pipelineStageId,
        status: b.status,
        monetaryValue: b.monetaryValue,
        assignedTo: b.assignedTo ?? undefined,
      });
      return reply.code(202).send({ ...op, statusUrl: opUrl(locationId, op.id) });
    },
  );

  r.post(
    '/v1/locations/:locationId/opportunities/:externalId/status',
    {
      preValidation: guard,
      schema: {
        tags: dealTags,
        summary: 'Set the deal won, lost, abandoned or open again',
        params: dealParams,
        body: z.object({ status: dealStatus, lostReasonId: idString.optional() }),
        response: { 202: operationView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      const { locationId, externalId } = req.params;
      await installed(locationId);
      if (!(await knownDeal(d.pipelines.db, locationId, externalId)))
        throw httpError(404, `no deal ${externalId} in location ${locationId}: create it with PUT first`);
      const op = await acceptOperation(d.pipelines.db, locationId, externalId, 'status', {
        status: req.body.status,
        lostReasonId: req.body.lostReasonId,
      });
      return reply.code(202).send({ ...op, statusUrl: opUrl(locationId, op.id) });
    },
  );

  r.get(
    '/v1/locations/:locationId/opportunities/:externalId',
    {
      preValidation: guard,
      schema: {
        tags: dealTags,
        summary: 'The mapping of an external deal id to its GHL opportunity, with what GHL last reported',
        params: dealParams,
        response: { 200: mappingView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const { locationId, externalId } = req.params;
      const m = await getMapping(d.pipelines.db, locationId, { externalId });
      if (!m) throw httpError(404, `no GHL opportunity is mapped to deal ${externalId}`);
      return m;
    },
  );

  r.get(
    '/v1/locations/:locationId/opportunities',
    {
      preValidation: guard,
      schema: {
        tags: dealTags,
        summary: 'The mapping of a GHL opportunity id to its external deal id',
        params: locationParams,
        querystring: z.object({ opportunityId: idString }),
        response: { 200: mappingView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const { locationId } = req.params;
      const m = await getMapping(d.pipelines.db, locationId, { opportunityId: req.query.opportunityId });
      if (!m) throw httpError(404, `GHL opportunity ${req.query.opportunityId} is not mapped to a deal`);
      return m;
    },
  );

  r.get(
    '/v1/locations/:locationId/opportunity-operations/:id',
    {
      preValidation: guard,
      schema: {
        tags: dealTags,
        summary: 'Result of an accepted opportunity change (pending, done with the opportunity id, failed with why)',
        params: locationParams.extend({ id: z.coerce.number().int().positive() }),
        response: { 200: operationView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const { locationId, id } = req.params;
      const op = await getOperation(d.pipelines.db, locationId, id);
      if (!op) throw httpError(404, `no opportunity operation ${id} in location ${locationId}`);
      return { ...op, statusUrl: opUrl(locationId, op.id) };
    },
  );
}

/** A GHL read made inside a request: failures are a 503 the caller may retry, never a 500. */
async function ghlRead<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw httpError(
      503,
      `could not read pipelines from GHL: ${e instanceof Error ? e.message : String(e)}`,
      undefined,
      'try_again_later',
    );
  }
}

/** Names → ids; an unknown name is a 422 naming the field with the valid names, a GHL failure a 503. */
async function resolveOrExplain(
  rt: PipelineRuntime,
  locationId: string,
  want: Parameters<typeof resolveNames>[2],
): Promise<{ pipelineId?: string; pipelineStageId?: string }> {
  try {
    return await resolveNames(rt, locationId, want);
  } catch (e) {
    if (e instanceof UnknownNameError)
      throw httpError(422, e.message, [{ path: `body.${e.field}`, message: e.message }], 'Unprocessable Entity');
    return ghlRead(() => Promise.reject(e));
  }
}
