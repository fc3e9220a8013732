import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../../app.js';
import '../../platform/apikeys/index.js';
import { httpError } from '../../infra/http/errors.js';
import { errorResponses, idString } from '../../infra/http/schemas.js';
import { GhlApiError } from '../../platform/ghl/errors.js';
import {
  declareField,
  getMapping,
  LOGICAL_NAME,
  MappingInputError,
  PUSHABLE_TYPES,
  refreshMapping,
  removeField,
  setLocationSettings,
} from './fields.js';
import { batchStatus, checkRecords, MAX_BATCH, storeBatch, type ContactsRuntime } from './push.js';
import { syncStatus } from './status.js';

const ROUTE_BODY_LIMIT = 16 * 1024 * 1024;
const params = z.object({ locationId: idString.describe('GHL location id') });
const outcome = z.enum(['created', 'updated', 'unchanged', 'conflict', 'failed']);
const counts = z.object({
  created: z.number().int(),
  updated: z.number().int(),
  unchanged: z.number().int(),
  conflict: z.number().int(),
  failed: z.number().int(),
});

const pushBody = z.object({
  records: z
    .array(z.record(z.string(), z.unknown()))
    .min(1, 'expected at least one record')
    .max(MAX_BATCH, `expected at most ${MAX_BATCH} records per batch`)
    .describe(
      'Contact records (schema ContactPushRecord): externalId (required), firstName, lastName, name, email, phone ' +
        '(national numbers read with the location’s region), companyName, source, tags, customFields ' +
        '(logical name → value). A record that does not validate is `failed` with a reason naming its field; the rest goes on.',
    ),
});
const accepted = z.object({
  batchId: z.string(),
  total: z.number().int(),
  queued: z.number().int().describe('records queued for GHL'),
  failed: z.number().int().describe('records refused at once (see the batch for the reasons)'),
  errors: z
    .array(z.string())
    .describe('the refused records’ reasons, e.g. `records[3].email: expected an email address`'),
});
const recordResult = z.object({
  index: z.number().int(),
  externalId: z.string(),
  outcome: outcome.nullable().describe('null while pending'),
  contactId: z.string().nullable(),
  reason: z.string().nullable(),
});
const batchAnswer = z.object({
  batchId: z.string(),
  locationId: z.string(),
  state: z.enum(['running', 'completed']),
  status: z.enum(['success', 'partial', 'failed']).nullable().describe('when completed'),
  total: z.number().int(),
  done: z.number().int(),
  counts,
  createdAt: z.string(),
  completedAt: z.string().nullable(),
  records: z.array(recordResult),
});
const mappedField = z.object({
  logical: z.string(),
  dataType: z.string(),
  fieldKey: z.string(),
  name: z.string(),
  options: z.array(z.string()).nullable(),
  pinned: z.boolean(),
  ghl: z
    .object({
      id: z.string(),
      fieldKey: z.string().nullable(),
      name: z.string().nullable(),
      dataType: z.string().nullable(),
      options: z.array(z.string()).nullable(),
    })
    .nullable()
    .describe('the GHL custom field; null = not found in GHL (yet)'),
  refreshedAt: z.string().nullable(),
});
const mappingAnswer = z
  .object({
    locationId: z.string(),
    region: z.string(),
    regionSource: z.enum(['setting', 'location', 'default']),
    allowDuplicates: z.boolean().nullable(),
    createMissing: z.boolean(),
    refreshedAt: z.string().nullable(),
    error: z.string().nullable(),
    fields: z.array(mappedField),
  })
  .meta({ id: 'ContactFieldMapping' });
const declareBody = z.object({
  dataType: z.string().refine((t) => PUSHABLE_TYPES.includes(t), `expected one of ${PUSHABLE_TYPES.join(', ')}`),
  fieldKey: z
    .string()
    .regex(/^(contact\.)?[a-z0-9_]{1,100}$/, 'expected a GHL field key such as contact.job_title')
    .optional(),
  name: z.string().trim().min(1).max(100).optional(),
  options: z.array(z.string().min(1).max(200)).max(500).optional(),
  fieldId: idString.optional().describe('pin to this GHL custom field id'),
});
const logicalParams = params.extend({
  logical: z.string().regex(LOGICAL_NAME, 'expected a logical name: a lower-case letter, then up to 63 of a-z 0-9 _'),
});
const statusAnswer = z
  .object({
    locationId: z.string(),
    lastSyncAt: z.string().nullable(),
    status: z.enum(['success', 'partial', 'failed']).nullable(),
    lastError: z.string().nullable(),
    lastBatchId: z.string().nullable(),
    counts: counts.nullable(),
    totals: counts,
    pendingBatches: z.number().int(),
    pendingRecords: z.number().int(),
    mappedContacts: z.number().int(),
  })
  .meta({ id: 'ContactSyncStatus' });

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function registerContactRoutes(app: FastifyInstance, ctx: AppContext, rt: ContactsRuntime): void {
  const guard = ctx.services
    .get('apiKeys')
    .requireLocation((req) => (req.params as { locationId?: string } | undefined)?.locationId);
  const db = ctx.db;
  const known = async (locationId: string) => {
    const k = ctx.services.find('knownLocations');
    if (!k || !(await k.isKnownLocation(locationId, null)))
      throw httpError(
        404,
        `ghl-bridge is not installed on location ${locationId}; nothing was stored`,
        [{ path: 'params.locationId', message: 'expected a location the bridge is installed on' }],
        'location_not_installed',
      );
  };
  const mappingOut = async (loc: string) => {
    const m = await getMapping(db, loc, rt.defaultRegion);
    return {
      ...m,
      refreshedAt: iso(m.refreshedAt),
      fields: m.fields.map((f) => ({ ...f, refreshedAt: iso(f.refreshedAt) })),
    };
  };
  const z4 = app.withTypeProvider<ZodTypeProvider>();
  const base = '/v1/locations/:locationId/contacts';
  const tags = ['contacts'];

  z4.post(
    `${base}/batches`,
    {
      bodyLimit: ROUTE_BODY_LIMIT,
      preValidation: guard,
      schema: {
        tags,
        params,
        summary: `Push up to ${MAX_BATCH} contact records into GHL (create, update by the mapped id, or upsert)`,
        description:
          'Answers 202 with the batch id once the batch and its jobs are committed; the records are written on the ' +
          'bulk lane of the GHL rate limiter. Each record ends created, updated, unchanged (same content as its last ' +
          'push: no GHL call), conflict (GHL matched a contact mapped to another external id, or dropped the phone) ' +
          'or failed, with the GHL contact id and the reason: GET the batch.',
        body: pushBody,
        response: { 202: accepted, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      const loc = req.params.locationId;
      await known(loc);
      const mapping = await getMapping(db, loc, rt.defaultRegion);
      const raw = req.body.records as unknown[];
      const results = checkRecords(raw, mapping);
      const batchId = await db.transaction().execute((trx) => storeBatch(trx, rt, loc, results, raw));
      const errors = results.flatMap((r) => (r.error ? [r.error] : []));
      for (let i = 0; i < errors.length; i++) rt.metrics.outcomes.inc({ outcome: 'failed' });
      rt.notify();
      if (errors.length) rt.bus()?.wake();
      return reply.code(202).send({
        batchId,
        total: results.length,
        queued: results.length - errors.length,
        failed: errors.length,
        errors: errors.slice(0, 100),
      });
    },
  );

  z4.get(
    `${base}/batches/:batchId`,
    {
      preValidation: guard,
      schema: {
        tags,
        params: params.extend({ batchId: idString }),
        summary: 'Progress and per-record results of a push batch',
        response: { 200: batchAnswer, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const { locationId, batchId } = req.params;
      const b = await db
        .selectFrom('contacts_batches')
        .selectAll()
        .where('id', '=', batchId)
        .where('location_id', '=', locationId)
        .executeTakeFirst();
      if (!b)
        throw httpError(404, `no push batch ${batchId} for this location`, [
          { path: 'params.batchId', message: 'expected a batch id returned by POST …/contacts/batches' },
        ]);
      const recs = await db
        .selectFrom('contacts_batch_records')
        .select(['idx', 'external_id', 'outcome', 'contact_id', 'reason'])
        .where('batch_id', '=', batchId)
        .orderBy('idx')
        .execute();
      const c = {
        created: b.created,
        updated: b.updated,
        unchanged: b.unchanged,
        conflict: b.conflict,
        failed: b.failed,
      };
      return {
        batchId: b.id,
        locationId: b.location_id,
        state: b.completed_at ? ('completed' as const) : ('running' as const),
        status: b.completed_at ? batchStatus(c) : null,
        total: b.total,
        done: b.done,
        counts: c,
        createdAt: b.created_at.toISOString(),
        completedAt: iso(b.completed_at),
        records: recs.map((r) => ({
          index: r.idx,
          externalId: r.external_id,
          outcome: r.outcome,
          contactId: r.contact_id,
          reason: r.reason,
        })),
      };
    },
  );

  z4.get(
    `${base}/map/:externalId`,
    {
      preValidation: guard,
      schema: {
        tags,
        params: params.extend({ externalId: z.string().min(1).max(256) }),
        summary: 'The GHL contact an external id is mapped to',
        response: {
          200: z.object({
            locationId: z.string(),
            externalId: z.string(),
            contactId: z.string(),
            tags: z.array(z.string()).describe('tags the bridge last pushed'),
            updatedAt: z.string(),
          }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (req) => {
      const { locationId, externalId } = req.params;
      const m = await db
        .selectFrom('contacts_map')
        .selectAll()
        .where('location_id', '=', locationId)
        .where('external_id', '=', externalId)
        .executeTakeFirst();
      if (!m)
        throw httpError(404, `external id ${externalId} is not mapped to a GHL contact of this location`, [
          { path: 'params.externalId', message: 'expected an external id pushed to this location' },
        ]);
      return {
        locationId,
        externalId,
        contactId: m.contact_id,
        tags: m.tags,
        updatedAt: m.updated_at.toISOString(),
      };
    },
  );

  z4.get(
    `${base}/sync-status`,
    {
      preValidation: guard,
      schema: {
        tags,
        params,
        summary: 'The location’s contact sync status: last sync time, status, last error and counts',
        response: { 200: statusAnswer, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const loc = req.params.locationId;
      const [s] = await syncStatus(db, loc);
      if (!s)
        return {
          locationId: loc,
          lastSyncAt: null,
          status: null,
          lastError: null,
          lastBatchId: null,
          counts: null,
          totals: { created: 0, updated: 0, unchanged: 0, conflict: 0, failed: 0 },
          pendingBatches: 0,
          pendingRecords: 0,
          mappedContacts: 0,
        };
      return { ...s, lastSyncAt: iso(s.lastSyncAt) };
    },
  );

  z4.get(
    `${base}/mapping`,
    {
      preValidation: guard,
      schema: {
        tags,
        params,
        summary: 'The location’s logical fields and the GHL custom fields they map to (cached)',
        response: { 200: mappingAnswer, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => mappingOut(req.params.locationId),
  );

  z4.put(
    `${base}/mapping/:logical`,
    {
      preValidation: guard,
      schema: {
        tags,
        params: logicalParams,
        summary: 'Declare a logical field (its GHL type, key, name, options) or pin it to a GHL field id',
        description:
          'Discovery (refresh) matches it by field key, then by name; a pinned id is kept while the field exists.',
        body: declareBody,
        response: { 200: mappingAnswer, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const { locationId, logical } = req.params;
      await known(locationId);
      try {
        await declareField(db, locationId, { logical, ...req.body });
      } catch (e) {
        if (e instanceof MappingInputError)
          throw httpError(400, `body.${e.field}: ${e.message}`, [{ path: `body.${e.field}`, message: e.message }]);
        throw e;
      }
      return mappingOut(locationId);
    },
  );

  z4.delete(
    `${base}/mapping/:logical`,
    {
      preValidation: guard,
      schema: {
        tags,
        params: logicalParams,
        summary: 'Remove a logical field from the location’s mapping (the GHL field stays)',
        response: { 200: mappingAnswer, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const { locationId, logical } = req.params;
      if (!(await removeField(db, locationId, logical)))
        throw httpError(404, `no logical field ${logical} is declared for this location`, [
          { path: 'params.logical', message: 'expected a declared logical field' },
        ]);
      return mappingOut(locationId);
    },
  );

  z4.post(
    `${base}/mapping/refresh`,
    {
      preValidation: guard,
      schema: {
        tags,
        params,
        summary: 'Read the location’s custom fields from GHL now and map the declared logical fields',
        description:
          'With create: true (or the createMissing setting), missing fields are created with their declared type.',
        body: z.object({ create: z.boolean().optional() }).optional(),
        response: { 200: mappingAnswer, ...errorResponses(400, 401, 403, 404, 502) },
      },
    },
    async (req) => {
      const loc = req.params.locationId;
      await known(loc);
      try {
        await refreshMapping(db, rt.ghl(), loc, { create: req.body?.create, opts: { lane: 'live' } });
      } catch (e) {
        if (e instanceof GhlApiError)
          throw httpError(502, `GHL refused the refresh: ${e.message}`, [
            { path: 'params.locationId', message: e.message },
          ]);
        throw e;
      }
      return mappingOut(loc);
    },
  );

  z4.put(
    `${base}/settings`,
    {
      preValidation: guard,
      schema: {
        tags,
        params,
        summary: 'Contact push settings of the location: phone region, create missing fields on refresh',
        body: z.object({
          region: z
            .string()
            .regex(/^[A-Za-z]{2}$/, 'expected a two-letter ISO country code, e.g. US or PH')
            .nullable()
            .optional()
            .describe(
              'region for national phone numbers; null = the location’s GHL country, else CONTACTS_DEFAULT_REGION',
            ),
          createMissing: z.boolean().optional(),
        }),
        response: { 200: mappingAnswer, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const loc = req.params.locationId;
      await known(loc);
      await setLocationSettings(db, loc, req.body);
      return mappingOut(loc);
    },
  );
}
