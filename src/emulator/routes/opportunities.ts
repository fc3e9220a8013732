import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { assertLocationAccess } from '../auth.js';
import type { Ctx } from '../context.js';
import { badRequest, notFound, unprocessable } from '../errors.js';
import {
  checkPipelineRefs,
  createHook,
  createOpportunity,
  createPipeline,
  deleteOpportunity,
  editStage,
  hookPath,
  oppState,
  opportunityToApi,
  pipelineToApi,
  updateOpportunity,
  type Opportunity,
} from '../opportunities-service.js';
import { parseBody } from '../validate.js';
import { mustLocation, op, params, query } from './util.js';

const V = '2021-07-28';
const RD = { version: V, scopes: ['opportunities.readonly'], access: 'location' } as const;
const WR = { version: V, scopes: ['opportunities.write'], access: 'location' } as const;

// GHL's enum includes 'all' (a search filter); storing it is refused.
const status = z.enum(['open', 'won', 'lost', 'abandoned', 'all']);
const CreateBody = z.object({
  pipelineId: z.string().min(1),
  locationId: z.string().min(1),
  name: z.string().min(1),
  pipelineStageId: z.string().optional(),
  status,
  contactId: z.string().min(1),
  monetaryValue: z.number().optional(),
  assignedTo: z.string().optional(),
  customFields: z.array(z.unknown()).optional(),
});
const UpdateBody = z.object({
  pipelineId: z.string().min(1).optional(),
  name: z.string().min(1).optional(),
  pipelineStageId: z.string().optional(),
  status: status.optional(),
  monetaryValue: z.number().optional(),
  assignedTo: z.string().optional(),
  customFields: z.array(z.unknown()).optional(),
});
const StatusBody = z.object({ status, lostReasonId: z.string().optional() });

function stored(s: z.infer<typeof status>): Exclude<z.infer<typeof status>, 'all'> {
  if (s === 'all') throw unprocessable(['status must be one of the following values: open, won, lost, abandoned']);
  return s;
}

/** GHL opportunities and pipelines (spec apps/opportunities.json) plus the workflow inbound-webhook hooks. */
export function registerOpportunityRoutes(app: FastifyInstance, ctx: Ctx): void {
  const mine = (id: string, locationId: string): Opportunity => {
    const o = oppState(ctx).opportunities.get(id);
    if (!o || o.locationId !== locationId) throw badRequest('Opportunity not found');
    return o;
  };

  op(app, ctx, 'GET', '/opportunities/pipelines', RD, (req, _r, auth) => {
    const q = query(req);
    if (!q.locationId) throw unprocessable(['locationId should not be empty']);
    assertLocationAccess(ctx, auth, q.locationId);
    mustLocation(ctx, q.locationId);
    const pipelines = [...oppState(ctx).pipelines.values()].filter((p) => p.locationId === q.locationId);
    return { pipelines: pipelines.map(pipelineToApi) };
  });

  op(app, ctx, 'POST', '/opportunities/', WR, (req, reply, auth) => {
    const b = parseBody(CreateBody, req.body);
    assertLocationAccess(ctx, auth, b.locationId);
    mustLocation(ctx, b.locationId);
    const bad = checkPipelineRefs(ctx, b.locationId, b.pipelineId, b.pipelineStageId);
    if (bad) throw badRequest(bad);
    const c = ctx.state.contacts.get(b.contactId);
    if (!c || c.locationId !== b.locationId) throw badRequest('Contact not found');
    const o = createOpportunity(ctx, {
      locationId: b.locationId,
      name: b.name,
      contactId: b.contactId,
      pipelineId: b.pipelineId,
      pipelineStageId: b.pipelineStageId,
      status: stored(b.status),
      monetaryValue: b.monetaryValue,
      assignedTo: b.assignedTo,
      source: 'api',
    });
    return reply.code(201).send({ opportunity: opportunityToApi(ctx, o) });
  });

  op(app, ctx, 'GET', '/opportunities/search', RD, (req, _r, auth) => {
    const q = query(req);
    if (!q.location_id) throw unprocessable(['location_id should not be empty']);
    assertLocationAccess(ctx, auth, q.location_id);
    let rows = [...oppState(ctx).opportunities.values()]
      .filter((o) => o.locationId === q.location_id)
      .filter((o) => !q.pipeline_id || o.pipelineId === q.pipeline_id)
      .filter((o) => !q.pipeline_stage_id || o.pipelineStageId === q.pipeline_stage_id)
      .filter((o) => !q.contact_id || o.contactId === q.contact_id)
      .filter((o) => !q.assigned_to || o.assignedTo === q.assigned_to)
      .filter((o) => !q.id || o.id === q.id)
      .filter((o) => !q.status || q.status === 'all' || o.status === q.status)
      .filter((o) => !q.q || o.name.toLowerCase().includes(q.q.toLowerCase()))
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    const total = rows.length;
    const limit = Math.min(100, Math.max(1, Number(q.limit ?? 20) || 20));
    const page = Math.max(1, Number(q.page ?? 1) || 1);
    if (q.startAfterId) {
      const i = rows.findIndex((o) => o.id === q.startAfterId);
      rows = i >= 0 ? rows.slice(i + 1) : rows;
    } else rows = rows.slice((page - 1) * limit);
    const slice = rows.slice(0, limit);
    const last = slice.at(-1);
    return {
      opportunities: slice.map((o) => opportunityToApi(ctx, o)),
      meta: {
        total,
        currentPage: page,
        ...(last && rows.length > limit
          ? { startAfterId: last.id, startAfter: last.createdAt, nextPage: page + 1 }
          : {}),
      },
    };
  });

  op(app, ctx, 'GET', '/opportunities/:id', RD, (req, _r, auth) => {
    const o = oppState(ctx).opportunities.get(params(req).id ?? '');
    if (!o) throw badRequest('Opportunity not found');
    assertLocationAccess(ctx, auth, o.locationId);
    return { opportunity: opportunityToApi(ctx, o) };
  });

  op(app, ctx, 'PUT', '/opportunities/:id', WR, (req, _r, auth) => {
    const b = parseBody(UpdateBody, req.body);
    const id = params(req).id ?? '';
    const found = oppState(ctx).opportunities.get(id);
    if (!found) throw badRequest('Opportunity not found');
    assertLocationAccess(ctx, auth, found.locationId);
    const o = mine(id, found.locationId);
    const bad = checkPipelineRefs(ctx, o.locationId, b.pipelineId ?? o.pipelineId, b.pipelineStageId);
    if (bad) throw badRequest(bad);
    updateOpportunity(ctx, o, {
      ...(b.pipelineId !== undefined ? { pipelineId: b.pipelineId } : {}),
      ...(b.pipelineStageId !== undefined ? { pipelineStageId: b.pipelineStageId } : {}),
      ...(b.status !== undefined ? { status: stored(b.status) } : {}),
      ...(b.monetaryValue !== undefined ? { monetaryValue: b.monetaryValue } : {}),
      ...(b.assignedTo !== undefined ? { assignedTo: b.assignedTo } : {}),
      ...(b.name !== undefined ? { name: b.name } : {}),
    });
    return { opportunity: opportunityToApi(ctx, o) };
  });

  op(app, ctx, 'PUT', '/opportunities/:id/status', WR, (req, _r, auth) => {
    const b = parseBody(StatusBody, req.body);
    const o = oppState(ctx).opportunities.get(params(req).id ?? '');
    if (!o) throw badRequest('Opportunity not found');
    assertLocationAccess(ctx, auth, o.locationId);
    updateOpportunity(ctx, o, {
      status: stored(b.status),
      ...(b.lostReasonId !== undefined ? { lostReasonId: b.lostReasonId } : {}),
    });
    return { succeded: true };
  });

  op(app, ctx, 'DELETE', '/opportunities/:id', WR, (req, _r, auth) => {
    const o = oppState(ctx).opportunities.get(params(req).id ?? '');
    if (!o) throw badRequest('Opportunity not found');
    assertLocationAccess(ctx, auth, o.locationId);
    deleteOpportunity(ctx, o);
    return { succeded: true };
  });

  // Workflow "Inbound Webhook" trigger URLs: no token (the URL is the capability); records every call.
  app.post('/hooks/:locationId/webhook-trigger/:triggerId', async (req: FastifyRequest, reply: FastifyReply) => {
    const p = params(req);
    const h = oppState(ctx).hooks.get(p.triggerId ?? '');
    if (!h || h.locationId !== p.locationId) throw notFound('Webhook trigger not found');
    const failing = h.failTimes > 0;
    const code = failing ? h.failStatus : 200;
    if (failing) h.failTimes--;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    h.received.push({ at: ctx.clock.now(), status: code, body: req.body, headers });
    if (failing)
      return reply.code(code).send({ statusCode: code, message: code === 429 ? 'Too Many Requests' : 'Failed' });
    return reply.code(200).send({ status: 'Success: request sent to trigger execution server', id: ctx.ids.id() });
  });

  // Control actions (not GHL): seed pipelines, act as a GHL user on opportunities, create/inspect/break hooks.
  const c = '/_emulator';
  const wrap =
    (fn: (body: Record<string, unknown>, req: FastifyRequest) => unknown, code = 200) =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        return reply.code(code).send((await fn((req.body ?? {}) as Record<string, unknown>, req)) ?? { ok: true });
      } catch (e) {
        return reply.code(400).send({ statusCode: 400, message: e instanceof Error ? e.message : String(e) });
      }
    };
  const control = opportunityControl(ctx);
  app.post(
    `${c}/pipelines`,
    wrap((b) => control.createPipeline(b as Parameters<typeof control.createPipeline>[0]), 201),
  );
  app.post(
    `${c}/pipelines/:id/stages`,
    wrap((b, r) => control.editStage({ pipelineId: params(r).id ?? '', ...(b as { name: string; stageId?: string }) })),
  );
  app.get(
    `${c}/opportunities`,
    wrap((_b, r) => control.listOpportunities(query(r).locationId)),
  );
  app.patch(
    `${c}/opportunities/:id`,
    wrap((b, r) => control.updateOpportunity(params(r).id ?? '', b)),
  );
  app.delete(
    `${c}/opportunities/:id`,
    wrap((_b, r) => control.deleteOpportunity(params(r).id ?? '')),
  );
  app.post(
    `${c}/hooks`,
    wrap((b, r) => control.createHook(String(b.locationId ?? ''), baseOf(r)), 201),
  );
  app.get(
    `${c}/hooks/:triggerId`,
    wrap((_b, r) => control.hook(params(r).triggerId ?? '')),
  );
  app.post(
    `${c}/hooks/:triggerId/fail`,
    wrap((b, r) =>
      control.failHook(params(r).triggerId ?? '', {
        status: Number(b.status ?? 500),
        times: b.times === undefined ? Infinity : Number(b.times),
      }),
    ),
  );
}

function baseOf(req: FastifyRequest): string {
  return `${req.protocol}://${req.headers.host ?? 'localhost'}`;
}

/** Control actions on pipelines, opportunities and hooks, for tests (also over HTTP under /_emulator). */
export function opportunityControl(ctx: Ctx) {
  return {
    createPipeline: (input: { locationId: string; name: string; stages: string[] }) => {
      if (!ctx.state.locations.has(input.locationId)) throw new Error(`location ${input.locationId} not found`);
      return createPipeline(ctx, input);
    },
    editStage: (input: { pipelineId: string; name: string; stageId?: string }) => editStage(ctx, input),
    listOpportunities: (locationId?: string) =>
      [...oppState(ctx).opportunities.values()]
        .filter((o) => !locationId || o.locationId === locationId)
        .map((o) => opportunityToApi(ctx, o)),
    getOpportunity: (id: string) => {
      const o = oppState(ctx).opportunities.get(id);
      return o ? opportunityToApi(ctx, o) : undefined;
    },
    /** A GHL user changing an opportunity in the UI: the same events fire as for an API change. */
    updateOpportunity: (id: string, patch: Record<string, unknown>) => {
      const o = oppState(ctx).opportunities.get(id);
      if (!o) throw new Error(`opportunity ${id} not found`);
      const s = (k: string) => (typeof patch[k] === 'string' ? (patch[k] as string) : undefined);
      const status = s('status');
      if (status !== undefined && !['open', 'won', 'lost', 'abandoned'].includes(status))
        throw new Error(`status ${status} is not one of open, won, lost, abandoned`);
      const bad = checkPipelineRefs(ctx, o.locationId, s('pipelineId') ?? o.pipelineId, s('pipelineStageId'));
      if (bad) throw new Error(bad);
      updateOpportunity(ctx, o, {
        ...(s('pipelineId') !== undefined ? { pipelineId: s('pipelineId')! } : {}),
        ...(s('pipelineStageId') !== undefined ? { pipelineStageId: s('pipelineStageId')! } : {}),
        ...(status !== undefined ? { status: status as Opportunity['status'] } : {}),
        ...(typeof patch.monetaryValue === 'number' ? { monetaryValue: patch.monetaryValue } : {}),
        ...(s('assignedTo') !== undefined ? { assignedTo: s('assignedTo')! } : {}),
        ...(s('name') !== undefined ? { name: s('name')! } : {}),
      });
      return opportunityToApi(ctx, o);
    },
    deleteOpportunity: (id: string) => {
      const o = oppState(ctx).opportunities.get(id);
      if (!o) throw new Error(`opportunity ${id} not found`);
      deleteOpportunity(ctx, o);
      return { deleted: true };
    },
    createHook: (locationId: string, baseUrl: string) => {
      if (!ctx.state.locations.has(locationId)) throw new Error(`location ${locationId} not found`);
      const h = createHook(ctx, locationId);
      return { triggerId: h.triggerId, locationId, url: `${baseUrl}${hookPath(h)}` };
    },
    hook: (triggerId: string) => {
      const h = oppState(ctx).hooks.get(triggerId);
      if (!h) throw new Error(`hook ${triggerId} not found`);
      return {
        triggerId,
        locationId: h.locationId,
        received: h.received,
        failStatus: h.failStatus,
        failTimes: h.failTimes === Infinity ? -1 : h.failTimes,
      };
    },
    /** The next `times` calls (Infinity: until cleared with times 0) are answered `status`. */
    failHook: (triggerId: string, o: { status: number; times: number }) => {
      const h = oppState(ctx).hooks.get(triggerId);
      if (!h) throw new Error(`hook ${triggerId} not found`);
      h.failStatus = o.status;
      h.failTimes = o.times;
      return { ok: true };
    },
  };
}

export type OpportunityControl = ReturnType<typeof opportunityControl>;
