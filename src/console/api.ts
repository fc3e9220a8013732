import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { sql } from 'kysely';
import { z } from 'zod';
import type { AppContext } from '../app.js';
import type { InstallationView } from '../platform/installations/index.js';
import { getEvent } from '../platform/webhooks/index.js';
import { eventsForMessage, listLocationEvents } from '../platform/webhooks/trace.js';
import { rateBudgets } from '../platform/ghl/budget.js';
import { locationActivity, outboundTrace, recentFailures, searchMessages } from '../capabilities/provider/trace.js';
import { getJob, listJobs, retryJobs } from '../infra/queue/index.js';
import { httpError } from '../infra/http/errors.js';
import { errorResponses, idString, locationIdParams } from '../infra/http/schemas.js';
import type { History } from './history.js';
import { maskSecrets } from './mask.js';

const tags = ['admin: console'];
const anyObject = z.record(z.string(), z.unknown());
const JOB_STATES = ['ready', 'blocked', 'running', 'dead', 'paused', 'cancelled'] as const;

const idParams = z.object({
  id: z.coerce.number().int('expected a positive integer').positive('expected a positive integer'),
});

const installationOut = (i: InstallationView, needed: string[]) => ({
  id: i.id,
  kind: i.kind,
  companyId: i.companyId,
  locationId: i.locationId,
  tokenSource: i.tokenSource,
  status: i.status,
  statusReason: i.statusReason,
  expiresAt: i.expiresAt,
  refreshedAt: i.refreshedAt,
  installedAt: i.installedAt,
  isBulk: i.isBulk,
  scopes: { granted: i.scopes, needed, missing: needed.filter((s) => !i.scopes.includes(s)) },
});

function jobOut(j: Awaited<ReturnType<typeof listJobs>>[number]) {
  return {
    id: j.id,
    kind: j.kind,
    state: j.state,
    attempts: j.attempts,
    maxAttempts: j.max_attempts,
    lastError: j.last_error,
    scope: j.scope,
    createdAt: j.created_at,
    updatedAt: j.updated_at,
  };
}

const jobSchema = z.object({
  id: z.number().int(),
  kind: z.string(),
  state: z.string(),
  attempts: z.number().int(),
  maxAttempts: z.number().int(),
  lastError: z.string().nullable(),
  scope: z.string().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
});

/** The console's read API (and its few safe actions), in the guarded admin scope. */
export function registerConsoleApi(app: FastifyInstance, ctx: AppContext, history: History): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const needed = ctx.config.GHL_SCOPES.split(' ').filter(Boolean);
  const installations = () => ctx.services.find('installations');
  const provider = () => ctx.services.find('provider');

  r.get(
    '/admin/api/session',
    {
      schema: {
        tags,
        summary: 'The console session: its CSRF token (send it as X-CSRF-Token on every mutation) and expiry',
        response: {
          200: z.object({
            authenticatedBy: z.enum(['session', 'bearer']),
            csrfToken: z.string().nullable(),
            expiresAt: z.number().nullable(),
          }),
          ...errorResponses(401),
        },
      },
    },
    async (req) => ({
      authenticatedBy: req.consoleSession ? ('session' as const) : ('bearer' as const),
      csrfToken: req.consoleSession?.csrf ?? null,
      expiresAt: req.consoleSession?.expiresAt ?? null,
    }),
  );

  const sampleSchema = z.object({
    t: z.number(),
    relayedPerMin: z.number(),
    p50Ms: z.number().nullable(),
    p99Ms: z.number().nullable(),
    failures: z.number(),
    webhooksPerMin: z.number(),
    queue: z.record(z.string(), z.number()),
  });
  r.get(
    '/admin/api/history',
    {
      schema: {
        tags,
        summary: 'The console’s time series (this replica; one sample every intervalMs) and the rate-limit budgets',
        response: {
          200: z.object({
            intervalMs: z.number(),
            samples: z.array(sampleSchema),
            rateBudgets: z.array(anyObject),
          }),
          ...errorResponses(401),
        },
      },
    },
    async () => ({
      intervalMs: history.everyMs,
      samples: history.points(),
      rateBudgets: (await rateBudgets(ctx.db)) as unknown as Record<string, unknown>[],
    }),
  );

  // Server-sent events: one `sample` event per new sample (the page appends it to its charts).
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const s of streams) s.end();
  });
  r.get(
    '/admin/api/stream',
    {
      schema: {
        tags,
        summary: 'Live samples as server-sent events (event: sample, data: one history sample)',
        response: {
          200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: z.string() } } },
        },
      },
    },
    async (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': req.id,
      });
      res.write(`retry: 3000\n\n`);
      const send = (s: unknown) => res.write(`event: sample\ndata: ${JSON.stringify(s)}\n\n`);
      streams.add(res);
      history.on('sample', send);
      const ping = setInterval(() => res.write(': ping\n\n'), 25_000);
      ping.unref();
      res.on('close', () => {
        clearInterval(ping);
        history.off('sample', send);
        streams.delete(res);
      });
    },
  );

  r.get(
    '/admin/api/locations',
    {
      schema: {
        tags,
        summary: 'Every installed location: installation, scopes, channel, last success and failure',
        response: { 200: z.object({ locations: z.array(anyObject) }), ...errorResponses(401) },
      },
    },
    async () => {
      const inst = (await installations()?.list()) ?? [];
      const channels = (await provider()?.listChannels()) ?? [];
      const activity = provider() ? await locationActivity(ctx.db) : [];
      const ids = new Set<string>([
        ...inst.flatMap((i) => (i.locationId ? [i.locationId] : [])),
        ...channels.map((c) => c.locationId),
      ]);
      const locations = [...ids].sort().map((id) => {
        const i = inst.find((x) => x.locationId === id && x.kind === 'location');
        const c = channels.find((x) => x.locationId === id);
        const a = activity.find((x) => x.locationId === id);
        return {
          locationId: id,
          installation: i ? installationOut(i, needed) : null,
          channel: c ? { kind: c.kind, enabled: c.enabled, conversationProviderId: c.conversationProviderId } : null,
          activity: a ?? null,
        };
      });
      return { locations };
    },
  );

  r.get(
    '/admin/api/locations/:locationId',
    {
      schema: {
        tags,
        summary: 'One location: installation (expiry, last refresh, scopes granted vs needed), channel, sync, errors',
        params: locationIdParams,
        response: { 200: anyObject, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      const id = req.params.locationId;
      const inst = ((await installations()?.list()) ?? []).filter((i) => i.locationId === id);
      const p = provider();
      const channel = p ? await p.getChannel(id) : undefined;
      if (!inst.length && !channel) throw httpError(404, `location ${id} is neither installed nor has a channel`);
      const scope = `loc:${id}`;
      return {
        locationId: id,
        installations: inst.map((i) => installationOut(i, needed)),
        conversationProvider: {
          configured: ctx.config.GHL_CONVERSATION_PROVIDER_ID ?? null,
          channelOverride: channel?.conversationProviderId ?? null,
        },
        channel: channel ? { ...channel, inboundUrl: p!.inboundUrl(id) } : null,
        activity: p ? ((await locationActivity(ctx.db, id))[0] ?? null) : null,
        sync: p ? await p.catchupOverview(id) : [],
        recentErrors: p ? await recentFailures(ctx.db, id, 20) : [],
        deadJobs: (await listJobs(ctx.db, { state: 'dead', scope, limit: 20 })).map(jobOut),
        deadWebhooks: await listLocationEvents(ctx.db, { locationId: id, status: 'dead', limit: 20 }),
        rateBudget: (await rateBudgets(ctx.db)).filter((b) => b.resourceId === id),
      };
    },
  );

  r.get(
    '/admin/api/trace',
    {
      schema: {
        tags,
        summary: 'Find messages by GHL message id, contact id, phone number or e-mail address',
        querystring: z.object({
          q: z.string().trim().min(1, 'expected a message id, contact id, phone or e-mail').max(320),
        }),
        response: { 200: z.object({ matches: z.array(anyObject) }), ...errorResponses(400, 401) },
      },
    },
    async (req) => ({
      matches: (provider() ? await searchMessages(ctx.db, req.query.q) : []) as unknown as Record<string, unknown>[],
    }),
  );

  r.get(
    '/admin/api/trace/:messageId',
    {
      schema: {
        tags,
        summary:
          'The timeline of one outbound message: webhooks, confirmation, jobs, channel send, receipts, GHL status',
        params: z.object({ messageId: idString.describe('GHL message id') }),
        response: { 200: anyObject, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      const id = req.params.messageId;
      const t = provider() ? await outboundTrace(ctx.db, id) : undefined;
      const events = await eventsForMessage(ctx.db, id);
      const jobs = await ctx.db
        .selectFrom('bridge_jobs')
        .selectAll()
        .where(sql<string>`payload->>'messageId'`, '=', id)
        .orderBy('id', 'asc')
        .limit(50)
        .execute();
      if (!t && !events.length && !jobs.length) throw httpError(404, `no message ${id}`);
      const webhookSteps = events.map((e) => ({
        step: 'webhook',
        at: e.received_at,
        detail: `${e.type ?? 'unparsed'} webhook (${e.source}) received ${
          e.signature === 'none' || e.signature.startsWith('url')
            ? 'unsigned (Delivery-URL token)'
            : `signed ${e.signature}`
        }, ${e.status}`,
        error: e.reason,
        eventId: e.id,
        replayable: e.status === 'dead',
      }));
      const steps = [...webhookSteps, ...(t?.steps ?? [])].sort(
        (a, b) => (a.at ? a.at.getTime() : Infinity) - (b.at ? b.at.getTime() : Infinity),
      );
      return {
        messageId: id,
        message: t ? { ...t, steps: undefined } : null,
        steps,
        jobs: jobs.map((j) => jobOut(j as never)),
        webhooks: events,
      };
    },
  );

  r.get(
    '/admin/api/jobs',
    {
      schema: {
        tags,
        summary: 'Jobs by state (default dead) and kind, newest first',
        querystring: z.object({
          state: z.enum(JOB_STATES).optional(),
          kind: z.string().min(1).max(200).optional(),
          scope: z.string().min(1).max(200).optional(),
          limit: z.coerce.number().int().min(1).max(500).optional(),
        }),
        response: {
          200: z.object({ jobs: z.array(jobSchema), kinds: z.array(z.string()) }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (req) => {
      const q = req.query;
      const state = q.state ?? 'dead';
      const rows = await listJobs(ctx.db, {
        state: state as never,
        ...(q.kind ? { kind: q.kind } : {}),
        ...(q.scope ? { scope: q.scope } : {}),
        limit: q.limit ?? 100,
      });
      const kinds = await ctx.db
        .selectFrom('bridge_jobs')
        .select('kind')
        .distinct()
        .where('state', '=', state as never)
        .execute();
      return { jobs: rows.map(jobOut), kinds: kinds.map((k) => k.kind).sort() };
    },
  );

  r.get(
    '/admin/api/jobs/:id',
    {
      schema: {
        tags,
        summary: 'One job with its payload (secrets masked)',
        params: idParams,
        response: { 200: jobSchema.extend({ payload: z.unknown() }), ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      const j = await getJob(ctx.db, req.params.id);
      if (!j) throw httpError(404, `no job ${req.params.id} (finished jobs are not kept)`);
      return { ...jobOut(j), payload: maskSecrets(j.payload) };
    },
  );

  r.post(
    '/admin/api/jobs/retry',
    {
      schema: {
        tags,
        summary: 'Retry dead jobs: the ones named, or every dead job (optionally of one kind)',
        body: z
          .object({
            ids: z.array(z.number().int().positive('expected positive whole numbers')).max(10_000).optional(),
            allDead: z.literal(true).optional(),
            kind: z.string().min(1).max(200).optional(),
          })
          .refine((b) => b.ids !== undefined || b.allDead, { message: 'send {"ids":[…]} or {"allDead":true}' }),
        response: { 200: z.object({ retried: z.number().int() }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const b = req.body;
      const retried = await retryJobs(ctx.db, {
        ...(b.ids ? { ids: b.ids } : { allDead: true }),
        ...(b.kind ? { kind: b.kind } : {}),
      });
      ctx.queue.notify();
      return { retried };
    },
  );

  r.get(
    '/admin/api/webhooks',
    {
      schema: {
        tags,
        summary: 'Stored webhook events, newest first, by status, type and location',
        querystring: z.object({
          status: z.enum(['received', 'dispatched', 'skipped', 'dead', 'unknown_type']).optional(),
          type: z.string().min(1).max(200).optional(),
          locationId: idString.optional(),
          limit: z.coerce.number().int().min(1).max(500).optional(),
        }),
        response: { 200: z.object({ events: z.array(anyObject) }), ...errorResponses(400, 401) },
      },
    },
    async (req) => ({
      events: (await listLocationEvents(ctx.db, { ...req.query, limit: req.query.limit ?? 100 })) as unknown as Record<
        string,
        unknown
      >[],
    }),
  );

  r.get(
    '/admin/api/webhooks/:id',
    {
      schema: {
        tags,
        summary: 'One stored webhook event with its payload (secrets masked)',
        params: idParams,
        response: { 200: anyObject, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      const e = await getEvent(ctx.db, req.params.id);
      if (!e) throw httpError(404, `no webhook event ${req.params.id}`);
      const { raw, payload, ...rest } = e;
      return { ...rest, payload: maskSecrets(payload), raw: raw ? `(${raw.length} bytes, not JSON)` : null };
    },
  );

  r.get(
    '/admin/api/settings',
    {
      schema: {
        tags,
        summary: 'Delivery URL and tokens (masked), channels (secrets masked), encryption keys in use',
        response: { 200: anyObject, ...errorResponses(401) },
      },
    },
    async () => {
      const p = provider();
      const tokens = p ? await p.tokens.list() : null;
      return {
        deliveryUrl: p ? await p.maskedDeliveryUrl() : null,
        deliveryTokens: tokens,
        channels: p ? (await p.listChannels()).map((c) => ({ ...c, inboundUrl: p.inboundUrl(c.locationId) })) : [],
        encryption: await encryptionStatus(ctx),
        publicUrl: ctx.config.publicUrl,
        mode: ctx.config.sandbox ? 'sandbox' : 'live',
      };
    },
  );

  r.post(
    '/admin/api/settings/delivery-token/rotate',
    {
      schema: {
        tags,
        summary:
          'Rotate the Delivery URL token: a new current token; the previous one stays accepted for overlapHours. ' +
          'The answer shows it masked: read the full URL with `ghl-bridge provider delivery-url`.',
        body: z.object({
          overlapHours: z
            .number()
            .min(0)
            .max(24 * 30)
            .default(24),
        }),
        response: {
          200: z.object({ deliveryUrl: z.string(), tokens: anyObject }),
          ...errorResponses(400, 401, 403, 409),
        },
      },
    },
    async (req) => {
      const p = provider();
      if (!p) throw httpError(409, 'the conversation-provider module is not loaded');
      try {
        await p.tokens.rotate({ overlapHours: req.body.overlapHours });
      } catch (e) {
        throw httpError(409, (e as Error).message);
      }
      return {
        deliveryUrl: await p.maskedDeliveryUrl(),
        tokens: (await p.tokens.list()) as unknown as Record<string, unknown>,
      };
    },
  );
}

/** Which encryption keys exist and how many stored secrets each one protects (rows on an old key need `keys rotate`). */
async function encryptionStatus(ctx: AppContext) {
  const count = async (table: 'ghl_installations' | 'provider_channels' | 'provider_delivery_tokens') => {
    try {
      const rows = await ctx.db
        .selectFrom(table)
        .select(['key_id', (eb) => eb.fn.countAll<string>().as('n')])
        .where('key_id', 'is not', null)
        .groupBy('key_id')
        .execute();
      return Object.fromEntries(rows.map((r) => [String(r.key_id), Number(r.n)]));
    } catch {
      return {};
    }
  };
  const byTable = {
    installations: await count('ghl_installations'),
    channels: await count('provider_channels'),
    deliveryTokens: await count('provider_delivery_tokens'),
  };
  const used = new Map<string, number>();
  for (const t of Object.values(byTable)) for (const [k, n] of Object.entries(t)) used.set(k, (used.get(k) ?? 0) + n);
  const source = ctx.config.TOKEN_ENCRYPTION_KEYS ? 'TOKEN_ENCRYPTION_KEYS' : 'sandbox key (generated)';
  const configured = (ctx.config.TOKEN_ENCRYPTION_KEYS ?? '')
    .split(',')
    .map((p) => p.split(':')[0]!.trim())
    .filter(Boolean);
  const primary = configured[0] ?? (ctx.config.sandbox ? 'sandbox' : null);
  return {
    source,
    primaryKeyId: primary,
    keyIds: configured,
    rowsByKey: Object.fromEntries(used),
    rowsOnOlderKeys: primary ? [...used].filter(([k]) => k !== primary).reduce((s, [, n]) => s + n, 0) : 0,
    byTable,
  };
}
