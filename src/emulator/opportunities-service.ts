import type { Ctx } from './context.js';
import { emitLocationEvent } from './events.js';
import type { State } from './state.js';

/**
 * Pipelines, opportunities and workflow inbound-webhook hooks of the emulator (issue 16). Kept beside the shared
 * State (one per State, so `reset()` clears them too) instead of inside it.
 */
export interface PipelineStage {
  id: string;
  name: string;
  position: number;
  showInFunnel: boolean;
  showInPieChart: boolean;
}

export interface Pipeline {
  id: string;
  name: string;
  locationId: string;
  stages: PipelineStage[];
  showInFunnel: boolean;
  showInPieChart: boolean;
}

export type OpportunityStatus = 'open' | 'won' | 'lost' | 'abandoned';
export const OPPORTUNITY_STATUSES: readonly OpportunityStatus[] = ['open', 'won', 'lost', 'abandoned'];

export interface Opportunity {
  id: string;
  locationId: string;
  name: string;
  contactId: string;
  pipelineId: string;
  pipelineStageId: string;
  status: OpportunityStatus;
  monetaryValue: number;
  assignedTo?: string | undefined;
  source?: string | undefined;
  lostReasonId?: string | undefined;
  createdAt: number;
  updatedAt: number;
  lastStatusChangeAt: number;
  lastStageChangeAt: number;
}

/** One call received by a workflow "inbound webhook" trigger URL. */
export interface HookCall {
  at: number;
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

export interface Hook {
  /** `/hooks/<locationId>/webhook-trigger/<triggerId>` */
  locationId: string;
  triggerId: string;
  received: HookCall[];
  /** Answer this status instead of 200 for the next `failTimes` calls (Infinity = until cleared). */
  failStatus: number;
  failTimes: number;
}

export interface OppState {
  pipelines: Map<string, Pipeline>;
  opportunities: Map<string, Opportunity>;
  hooks: Map<string, Hook>;
}

const byState = new WeakMap<State, OppState>();

export function oppState(ctx: Ctx): OppState {
  let s = byState.get(ctx.state);
  if (!s) {
    s = { pipelines: new Map(), opportunities: new Map(), hooks: new Map() };
    byState.set(ctx.state, s);
  }
  return s;
}

export function pipelineToApi(p: Pipeline) {
  return {
    id: p.id,
    name: p.name,
    locationId: p.locationId,
    stages: p.stages.map((s) => ({ ...s })),
    showInFunnel: p.showInFunnel,
    showInPieChart: p.showInPieChart,
  };
}

export function opportunityToApi(ctx: Ctx, o: Opportunity) {
  const c = ctx.state.contacts.get(o.contactId);
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    id: o.id,
    name: o.name,
    monetaryValue: o.monetaryValue,
    pipelineId: o.pipelineId,
    pipelineStageId: o.pipelineStageId,
    status: o.status,
    contactId: o.contactId,
    locationId: o.locationId,
    ...(o.assignedTo ? { assignedTo: o.assignedTo } : {}),
    ...(o.source ? { source: o.source } : {}),
    ...(o.lostReasonId ? { lostReasonId: o.lostReasonId } : {}),
    lastStatusChangeAt: iso(o.lastStatusChangeAt),
    lastStageChangeAt: iso(o.lastStageChangeAt),
    createdAt: iso(o.createdAt),
    updatedAt: iso(o.updatedAt),
    customFields: [],
    followers: [],
    ...(c
      ? {
          contact: {
            id: c.id,
            name: [c.firstName, c.lastName].filter(Boolean).join(' ') || (c.name ?? ''),
            ...(c.email ? { email: c.email } : {}),
            ...(c.phone ? { phone: c.phone } : {}),
            tags: [...c.tags],
          },
        }
      : {}),
  };
}

/** The flat webhook payload of an opportunity event (webhook-events/Opportunity*.md). */
function eventPayload(o: Opportunity, type: string) {
  return {
    type,
    locationId: o.locationId,
    id: o.id,
    ...(o.assignedTo ? { assignedTo: o.assignedTo } : {}),
    contactId: o.contactId,
    monetaryValue: o.monetaryValue,
    name: o.name,
    pipelineId: o.pipelineId,
    pipelineStageId: o.pipelineStageId,
    source: o.source ?? '',
    status: o.status,
    dateAdded: new Date(o.createdAt).toISOString(),
  };
}

export function createPipeline(
  ctx: Ctx,
  input: { locationId: string; name: string; stages: string[] },
): ReturnType<typeof pipelineToApi> {
  const p: Pipeline = {
    id: ctx.ids.id(),
    name: input.name,
    locationId: input.locationId,
    stages: input.stages.map((name, position) => ({
      id: ctx.ids.uuid(),
      name,
      position,
      showInFunnel: true,
      showInPieChart: true,
    })),
    showInFunnel: true,
    showInPieChart: true,
  };
  oppState(ctx).pipelines.set(p.id, p);
  return pipelineToApi(p);
}

/** Adds or renames a stage (a user editing the pipeline in GHL). */
export function editStage(
  ctx: Ctx,
  input: { pipelineId: string; name: string; stageId?: string },
): ReturnType<typeof pipelineToApi> {
  const p = oppState(ctx).pipelines.get(input.pipelineId);
  if (!p) throw new Error(`pipeline ${input.pipelineId} not found`);
  if (input.stageId) {
    const s = p.stages.find((x) => x.id === input.stageId);
    if (!s) throw new Error(`stage ${input.stageId} not found`);
    s.name = input.name;
  } else
    p.stages.push({
      id: ctx.ids.uuid(),
      name: input.name,
      position: p.stages.length,
      showInFunnel: true,
      showInPieChart: true,
    });
  return pipelineToApi(p);
}

export interface OpportunityInput {
  locationId: string;
  name: string;
  contactId: string;
  pipelineId: string;
  pipelineStageId?: string | undefined;
  status: OpportunityStatus;
  monetaryValue?: number | undefined;
  assignedTo?: string | undefined;
  source?: string | undefined;
}

/** Validation problems of a create/update against the location's pipelines (GHL answers them as 400/422). */
export function checkPipelineRefs(
  ctx: Ctx,
  locationId: string,
  pipelineId: string,
  stageId: string | undefined,
): string | undefined {
  const p = oppState(ctx).pipelines.get(pipelineId);
  if (!p || p.locationId !== locationId) return 'Pipeline not found';
  if (stageId !== undefined && !p.stages.some((s) => s.id === stageId)) return 'Pipeline stage not found';
  return undefined;
}

export function createOpportunity(ctx: Ctx, input: OpportunityInput): Opportunity {
  const p = oppState(ctx).pipelines.get(input.pipelineId)!;
  const now = ctx.clock.now();
  const o: Opportunity = {
    id: ctx.ids.id(),
    locationId: input.locationId,
    name: input.name,
    contactId: input.contactId,
    pipelineId: input.pipelineId,
    pipelineStageId: input.pipelineStageId ?? p.stages[0]?.id ?? '',
    status: input.status,
    monetaryValue: input.monetaryValue ?? 0,
    assignedTo: input.assignedTo,
    source: input.source,
    createdAt: now,
    updatedAt: now,
    lastStatusChangeAt: now,
    lastStageChangeAt: now,
  };
  oppState(ctx).opportunities.set(o.id, o);
  emitLocationEvent(ctx, o.locationId, eventPayload(o, 'OpportunityCreate'));
  return o;
}

export type OpportunityPatch = Partial<
  Pick<Opportunity, 'name' | 'pipelineId' | 'pipelineStageId' | 'status' | 'monetaryValue' | 'assignedTo'>
> & { lostReasonId?: string | undefined };

/** Applies a change and fires the matching events (stage, status, value, assignee; OpportunityUpdate for the rest). */
export function updateOpportunity(ctx: Ctx, o: Opportunity, patch: OpportunityPatch): Opportunity {
  const now = ctx.clock.now();
  const events: string[] = [];
  if (patch.pipelineId !== undefined && patch.pipelineId !== o.pipelineId) {
    o.pipelineId = patch.pipelineId;
    const p = oppState(ctx).pipelines.get(patch.pipelineId);
    if (patch.pipelineStageId === undefined) o.pipelineStageId = p?.stages[0]?.id ?? '';
    o.lastStageChangeAt = now;
    events.push('OpportunityStageUpdate');
  }
  if (patch.pipelineStageId !== undefined && patch.pipelineStageId !== o.pipelineStageId) {
    o.pipelineStageId = patch.pipelineStageId;
    o.lastStageChangeAt = now;
    if (!events.includes('OpportunityStageUpdate')) events.push('OpportunityStageUpdate');
  }
  if (patch.status !== undefined && patch.status !== o.status) {
    o.status = patch.status;
    o.lastStatusChangeAt = now;
    events.push('OpportunityStatusUpdate');
  }
  if (patch.lostReasonId !== undefined) o.lostReasonId = patch.lostReasonId;
  if (patch.monetaryValue !== undefined && patch.monetaryValue !== o.monetaryValue) {
    o.monetaryValue = patch.monetaryValue;
    events.push('OpportunityMonetaryValueUpdate');
  }
  if (patch.assignedTo !== undefined && patch.assignedTo !== o.assignedTo) {
    o.assignedTo = patch.assignedTo;
    events.push('OpportunityAssignedToUpdate');
  }
  if (patch.name !== undefined && patch.name !== o.name) {
    o.name = patch.name;
    events.push('OpportunityUpdate');
  }
  if (events.length) o.updatedAt = now;
  for (const t of events) emitLocationEvent(ctx, o.locationId, eventPayload(o, t));
  return o;
}

export function deleteOpportunity(ctx: Ctx, o: Opportunity): void {
  oppState(ctx).opportunities.delete(o.id);
  emitLocationEvent(ctx, o.locationId, eventPayload(o, 'OpportunityDelete'));
}

/** Creates a workflow "Inbound Webhook" trigger of a location; its URL is what a GHL user copies from the workflow. */
export function createHook(ctx: Ctx, locationId: string): Hook {
  const h: Hook = { locationId, triggerId: ctx.ids.uuid(), received: [], failStatus: 200, failTimes: 0 };
  oppState(ctx).hooks.set(h.triggerId, h);
  return h;
}

export const hookPath = (h: Pick<Hook, 'locationId' | 'triggerId'>) =>
  `/hooks/${h.locationId}/webhook-trigger/${h.triggerId}`;
