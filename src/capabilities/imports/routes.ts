import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../../app.js';
import '../../platform/apikeys/index.js';
import { httpError } from '../../infra/http/errors.js';
import { errorResponses, idString, timestamp } from '../../infra/http/schemas.js';
import {
  cancelImport,
  deleteImport,
  getImport,
  ImportStateError,
  listImports,
  MAX_PAGE_SIZE,
  progressOf,
  resumeImport,
  startImport,
  type ImportRuntime,
} from './core.js';
import { countRows, decide, exportText, listGroups, listRows } from './review.js';

const tags = ['imports'];
const MAX_DECISIONS = 1000;

const progressSchema = z
  .object({
    id: z.string(),
    locationId: z.string(),
    status: z
      .enum(['running', 'deduplicating', 'enriching', 'completed', 'failed', 'cancelled'])
      .describe('running: walking the pages; deduplicating; enriching: reading call histories (enrichCalls)'),
    enrichCalls: z.boolean(),
    rowsEnriched: z.number().int().describe('staged contacts whose call history was read (enrichCalls)'),
    pageSize: z.number().int(),
    pagesDone: z.number().int(),
    rowsDone: z.number().int().describe('contacts staged'),
    total: z.number().int().nullable().describe('contacts GHL reported (`total` of the search)'),
    percent: z.number().nullable(),
    rowsPerSecond: z.number().describe('over the current run (since the start or the last resume)'),
    etaSeconds: z.number().nullable(),
    duplicateGroups: z.number().int(),
    error: z.string().nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
    finishedAt: timestamp.nullable(),
  })
  .meta({ id: 'ContactImport' });
const withCounts = progressSchema.extend({
  decisions: z.object({
    pending: z.number().int(),
    approved: z.number().int(),
    rejected: z.number().int(),
    merged: z.number().int(),
  }),
});
const locParams = z.object({ locationId: idString.describe('GHL location id') });
const impParams = locParams.extend({ importId: idString });
const decisionEnum = z.enum(['pending', 'approved', 'rejected', 'merged']);
const rowSchema = z.object({
  contactId: z.string(),
  page: z.number().int(),
  decision: decisionEnum,
  mergeInto: z.string().nullable(),
  decidedAt: timestamp.nullable(),
  mappedExternalId: z.string().nullable(),
  email: z.string().nullable().describe('normalised'),
  phone: z.string().nullable().describe('E.164'),
  logical: z.record(z.string(), z.unknown()).describe('mapped logical fields ({} without the contacts mapping)'),
  original: z.record(z.string(), z.unknown()).describe('the GHL record as read'),
  calls: z
    .array(
      z.object({
        messageId: z.string(),
        at: z.string().nullable(),
        direction: z.enum(['inbound', 'outbound']).nullable(),
        status: z.string().nullable(),
        durationSeconds: z.number().nullable(),
        recordingExpected: z
          .boolean()
          .describe('answered (or voicemail) or longer than 0 s: GHL can hold a recording and a transcript'),
      }),
    )
    .nullable()
    .describe("the contact's calls, newest first (imports started with enrichCalls); null when not read"),
});
const memberSchema = z.object({
  contactId: z.string(),
  name: z.string().nullable(),
  email: z.string().nullable(),
  phone: z.string().nullable(),
  company: z.string().nullable(),
  decision: decisionEnum,
  mergeInto: z.string().nullable(),
  mappedExternalId: z.string().nullable(),
});
const groupSchema = z
  .object({
    id: z.number().int(),
    rule: z.enum(['email', 'phone', 'name_company']),
    key: z.string(),
    score: z.number().describe('1 for email/phone; the weakest name+company similarity in the group'),
    size: z.number().int(),
    againstMapped: z.boolean(),
    members: z.array(memberSchema),
  })
  .meta({ id: 'ContactImportDuplicateGroup' });
const decisionsBody = z.object({
  decisions: z
    .array(
      z.object({
        contactId: idString,
        decision: z.enum(['approve', 'reject', 'merge', 'reset']),
        into: idString.optional().describe('merge: the staged contact this one is merged into'),
      }),
    )
    .min(1)
    .max(MAX_DECISIONS, `expected at most ${MAX_DECISIONS} decisions per request`),
});
const decisionResult = z.object({
  contactId: z.string(),
  ok: z.boolean(),
  decision: decisionEnum.optional(),
  mergeInto: z.string().nullable().optional(),
  error: z.object({ path: z.string(), message: z.string() }).optional(),
});
const limit = (max: number, def: number) => z.coerce.number().int().min(1).max(max).default(def);

export function registerImportRoutes(app: FastifyInstance, ctx: AppContext, rt: ImportRuntime): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const guard = ctx.services
    .get('apiKeys')
    .requireLocation((req) => (req.params as { locationId?: string } | undefined)?.locationId);
  const known = async (locationId: string) => {
    const k = ctx.services.find('knownLocations');
    if (!k || !(await k.isKnownLocation(locationId, null)))
      throw httpError(
        404,
        `ghl-bridge is not installed on location ${locationId}; nothing was started`,
        [{ path: 'params.locationId', message: 'expected a location the bridge is installed on' }],
        'location_not_installed',
      );
  };
  const mapErrors = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ImportStateError) throw httpError(e.status, e.message, [{ path: e.path, message: e.message }]);
      throw e;
    }
  };
  const view = async (row: Awaited<ReturnType<typeof getImport>>) => ({
    ...progressOf(row),
    decisions: await countRows(rt.db, row.id),
  });

  r.post(
    '/v1/locations/:locationId/imports',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: "Start importing the location's contacts from GHL into staging",
        description:
          'Walks every contact with POST /contacts/search (searchAfter cursor, bulk lane), one job and one checkpoint ' +
          'per page; duplicates are detected when the walk is over. One import per location at a time (409).',
        params: locParams,
        body: z
          .object({
            pageSize: z
              .number()
              .int()
              .min(1)
              .max(MAX_PAGE_SIZE, `expected at most ${MAX_PAGE_SIZE} (GHL's largest search page)`)
              .optional()
              .describe(`contacts per page; default IMPORT_PAGE_SIZE (${MAX_PAGE_SIZE})`),
            enrichCalls: z
              .boolean()
              .optional()
              .describe(
                "also read each contact's call history (its conversation's call messages: direction, status, " +
                  'duration, whether a recording can exist) after duplicate detection; two GHL calls per contact',
              ),
          })
          .default({}),
        response: { 202: progressSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      await known(req.params.locationId);
      const row = await mapErrors(() =>
        startImport(rt, req.params.locationId, {
          ...(req.body.pageSize ? { pageSize: req.body.pageSize } : {}),
          ...(req.body.enrichCalls ? { enrichCalls: true } : {}),
        }),
      );
      return reply.code(202).send(progressOf(row));
    },
  );
  r.get(
    '/v1/locations/:locationId/imports',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Imports of the location, newest first',
        params: locParams,
        querystring: z.object({ limit: limit(100, 20) }),
        response: { 200: z.object({ imports: z.array(progressSchema) }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => ({
      imports: (await listImports(rt, req.params.locationId, req.query.limit)).map((x) => progressOf(x)),
    }),
  );
  r.get(
    '/v1/locations/:locationId/imports/:importId',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Progress of an import: pages and rows done, total, rate, ETA, decisions',
        params: impParams,
        response: { 200: withCounts, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => mapErrors(async () => view(await getImport(rt, req.params.locationId, req.params.importId))),
  );
  r.post(
    '/v1/locations/:locationId/imports/:importId/cancel',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Cancel an import in progress (staged rows stay; resume continues from the checkpoint)',
        params: impParams,
        response: { 200: progressSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req) => progressOf(await mapErrors(() => cancelImport(rt, req.params.locationId, req.params.importId))),
  );
  r.post(
    '/v1/locations/:locationId/imports/:importId/resume',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Resume a cancelled or failed import from its last checkpoint',
        params: impParams,
        response: { 202: progressSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) =>
      reply
        .code(202)
        .send(progressOf(await mapErrors(() => resumeImport(rt, req.params.locationId, req.params.importId)))),
  );
  r.delete(
    '/v1/locations/:locationId/imports/:importId',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Delete an import that is not in progress, with its staged rows and duplicate groups',
        params: impParams,
        response: { 204: z.null().describe('deleted'), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      await mapErrors(() => deleteImport(rt, req.params.locationId, req.params.importId));
      return reply.code(204).send(null);
    },
  );
  r.get(
    '/v1/locations/:locationId/imports/:importId/rows',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Staged rows, in contact id order',
        params: impParams,
        querystring: z.object({
          decision: decisionEnum.optional(),
          after: idString.optional().describe('nextAfter of the previous page'),
          limit: limit(500, 100),
        }),
        response: {
          200: z.object({ rows: z.array(rowSchema), nextAfter: z.string().nullable() }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (req) => {
      const imp = await mapErrors(() => getImport(rt, req.params.locationId, req.params.importId));
      return listRows(rt.db, imp.id, req.query);
    },
  );
  r.get(
    '/v1/locations/:locationId/imports/:importId/duplicates',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Duplicate groups (rule and score) with their members',
        params: impParams,
        querystring: z.object({
          rule: z.enum(['email', 'phone', 'name_company']).optional(),
          after: z.coerce.number().int().nonnegative().optional().describe('nextAfter of the previous page'),
          limit: limit(200, 50),
        }),
        response: {
          200: z.object({ groups: z.array(groupSchema), nextAfter: z.number().int().nullable() }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (req) => {
      const imp = await mapErrors(() => getImport(rt, req.params.locationId, req.params.importId));
      return listGroups(rt.db, imp.id, req.query);
    },
  );
  r.post(
    '/v1/locations/:locationId/imports/:importId/decisions',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'Review decisions: approve, reject, merge into another staged contact, or reset',
        description: 'Each decision has its own outcome; a refused one (naming the field) does not stop the others.',
        params: impParams,
        body: decisionsBody,
        response: {
          200: z.object({ results: z.array(decisionResult), applied: z.number().int(), refused: z.number().int() }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (req) => {
      const imp = await mapErrors(() => getImport(rt, req.params.locationId, req.params.importId));
      const results = await decide(rt.db, imp.id, req.body.decisions);
      const applied = results.filter((x) => x.ok).length;
      return { results, applied, refused: results.length - applied };
    },
  );
  r.get(
    '/v1/locations/:locationId/imports/:importId/export',
    {
      preValidation: guard,
      schema: {
        tags,
        summary: 'The approved rows as a JSONL or CSV stream (merged contacts listed in mergedFrom)',
        description:
          'Streamed in contact id order, read from the store a chunk at a time. JSONL: one ' +
          '{contactId, mergedFrom, mappedExternalId, logical, original} per line. CSV: contactId, firstName, ' +
          'lastName, email, phone, companyName, tags, mergedFrom, mappedExternalId, logical (JSON).',
        params: impParams,
        querystring: z.object({ format: z.enum(['jsonl', 'csv']).default('jsonl') }),
        response: errorResponses(400, 401, 403, 404),
      },
    },
    async (req, reply) => {
      const imp = await mapErrors(() => getImport(rt, req.params.locationId, req.params.importId));
      const fmt = req.query.format;
      reply
        .type(fmt === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
        .header('content-disposition', `attachment; filename="${imp.id}.${fmt}"`);
      // A stream is piped as it is (no response serialisation); the declared answers are the errors.
      const raw: FastifyReply = reply;
      return raw.send(Readable.from(exportText(rt.db, imp.id, fmt)));
    },
  );
}
