import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { applyOpportunityEvent, opportunityJob } from '../../src/capabilities/pipelines/opportunities.js';
import { waitFor } from '../helpers/store.js';
import { metricValue, startPipelinesWorld, type PipelinesWorld } from './harness.js';

let w: PipelinesWorld;
let pipeline: { id: string; stages: Array<{ id: string; name: string }> };
let contactId: string;
beforeAll(async () => {
  w = await startPipelinesWorld();
  pipeline = w.emu.opportunities.createPipeline({
    locationId: w.locationId,
    name: 'Sales',
    stages: ['New', 'Qualified', 'Proposal'],
  });
  w.emu.opportunities.createPipeline({ locationId: w.locationId, name: 'Renewals', stages: ['Due'] });
  contactId = w.emu.control.createContact({
    locationId: w.locationId,
    email: 'buyer@example.com',
    firstName: 'Bea',
  }).id;
});
afterAll(async () => w?.close());

type Op = { id: number; state: string; opportunityId: string | null; error: string | null; statusUrl: string };
type Mapping = {
  opportunityId: string;
  stageId: string | null;
  stageName: string | null;
  status: string | null;
  monetaryValue: number | null;
  pipelineName: string | null;
};

const base = () => `/v1/locations/${w.locationId}/opportunities`;
async function done(r: Response): Promise<Op> {
  expect(r.status).toBe(202);
  const op = (await r.json()) as Op;
  return waitFor(
    async () => {
      const v = (await (await w.api(op.statusUrl)).json()) as Op;
      return v.state !== 'pending' ? v : undefined;
    },
    { what: `operation ${op.id}` },
  );
}
const mapping = async (externalId: string) => (await (await w.api(`${base()}/${externalId}`)).json()) as Mapping;
const ops = (kind: string, outcome: string) =>
  metricValue(w.bridge.url, 'ghl_bridge_opportunity_operations_total', { kind, outcome });
const stageId = (name: string) => pipeline.stages.find((s) => s.name === name)!.id;

describe('pipeline bridging', () => {
  it('upserts by external deal id: create (contact found by email), move by stage name, value, won', async () => {
    const created = await done(
      await w.api(`${base()}/deal-1`, {
        method: 'PUT',
        json: {
          contact: { email: 'buyer@example.com' },
          name: 'Deal 1',
          pipeline: 'Sales',
          stage: 'New',
          monetaryValue: 100,
        },
      }),
    );
    expect(created).toMatchObject({ state: 'done', error: null });
    const oppId = created.opportunityId!;
    expect(w.emu.opportunities.getOpportunity(oppId)).toMatchObject({
      contactId,
      pipelineId: pipeline.id,
      pipelineStageId: stageId('New'),
      monetaryValue: 100,
      status: 'open',
      name: 'Deal 1',
    });
    expect(await mapping('deal-1')).toMatchObject({ opportunityId: oppId, stageName: 'New', pipelineName: 'Sales' });
    const reverse = await w.api(`${base()}?opportunityId=${oppId}`);
    expect(await reverse.json()).toMatchObject({ externalId: 'deal-1' });

    // Second upsert of the same deal: an update of the same opportunity (stage by name, case-insensitive).
    const moved = await done(
      await w.api(`${base()}/deal-1`, { method: 'PUT', json: { stage: 'qualified', monetaryValue: 250 } }),
    );
    expect(moved).toMatchObject({ state: 'done', opportunityId: oppId });
    expect(w.emu.opportunities.listOpportunities(w.locationId)).toHaveLength(1);
    expect(w.emu.opportunities.getOpportunity(oppId)).toMatchObject({
      pipelineStageId: stageId('Qualified'),
      monetaryValue: 250,
    });
    expect(await mapping('deal-1')).toMatchObject({ stageName: 'Qualified', monetaryValue: 250 });

    const won = await done(await w.api(`${base()}/deal-1/status`, { method: 'POST', json: { status: 'won' } }));
    expect(won.state).toBe('done');
    expect(w.emu.opportunities.getOpportunity(oppId)).toMatchObject({ status: 'won' });
    expect(await mapping('deal-1')).toMatchObject({ status: 'won' });
    // Metrics by outcome: one create, one stage move, one won.
    expect(await ops('upsert', 'created')).toBe(1);
    expect(await ops('upsert', 'moved')).toBe(1);
    expect(await ops('upsert', 'updated')).toBe(0);
    expect(await ops('status', 'won')).toBe(1);
  });

  it('an unknown stage or pipeline is a 422 naming the field and the valid names; nothing is stored', async () => {
    const count = async () => (await w.bridge.ctx.db.selectFrom('opportunity_ops').select('id').execute()).length;
    const before = await count();
    const r = await w.api(`${base()}/deal-2`, {
      method: 'PUT',
      json: { contact: { id: contactId }, pipeline: 'Sales', stage: 'Negotiation' },
    });
    expect(r.status).toBe(422);
    const body = (await r.json()) as { message: string; details: Array<{ path: string }> };
    expect(body.details[0]!.path).toBe('body.stage');
    expect(body.message).toMatch(/"Negotiation"/);
    expect(body.message).toMatch(/"New", "Qualified", "Proposal"/);
    const p = await w.api(`${base()}/deal-2`, {
      method: 'PUT',
      json: { contact: { id: contactId }, pipeline: 'Nope' },
    });
    expect(p.status).toBe(422);
    const pb = (await p.json()) as { message: string; details: Array<{ path: string }> };
    expect(pb.details[0]!.path).toBe('body.pipeline');
    expect(pb.message).toMatch(/"Sales", "Renewals"/);
    // A new deal without contact / pipeline: named too.
    const n = await w.api(`${base()}/deal-3`, { method: 'PUT', json: { stage: 'New' } });
    expect(n.status).toBe(422);
    expect(((await n.json()) as { details: Array<{ path: string }> }).details.map((d) => d.path)).toEqual([
      'body.contact',
      'body.pipeline',
    ]);
    expect(await count()).toBe(before);
    expect((await w.api(`${base()}/deal-2`)).status).toBe(404);
    expect(w.emu.opportunities.listOpportunities(w.locationId)).toHaveLength(1);
  });

  it('a stage added in GHL is found by refreshing the cache; changes made in GHL reach the map; delete removes it', async () => {
    const created = await done(
      await w.api(`${base()}/deal-4`, { method: 'PUT', json: { contact: { id: contactId }, pipeline: 'Sales' } }),
    );
    const oppId = created.opportunityId!;
    const edited = w.emu.opportunities.editStage({ pipelineId: pipeline.id, name: 'Contract' });
    const contract = edited.stages.find((s) => s.name === 'Contract')!.id;
    await done(await w.api(`${base()}/deal-4`, { method: 'PUT', json: { stage: 'Contract' } }));
    expect(w.emu.opportunities.getOpportunity(oppId)).toMatchObject({ pipelineStageId: contract });

    // A GHL user moves the deal and changes its value: the webhooks update the map.
    w.emu.opportunities.updateOpportunity(oppId, {
      pipelineStageId: stageId('Proposal'),
      monetaryValue: 999,
      status: 'lost',
    });
    await waitFor(
      async () => {
        const m = await mapping('deal-4');
        return m.stageName === 'Proposal' && m.monetaryValue === 999 && m.status === 'lost';
      },
      { what: 'map updated from OpportunityStageUpdate/MonetaryValueUpdate/StatusUpdate' },
    );

    w.emu.opportunities.deleteOpportunity(oppId);
    await waitFor(async () => (await w.api(`${base()}/deal-4`)).status === 404, {
      what: 'map row removed by OpportunityDelete',
    });
    expect((await w.api(`${base()}/deal-1`)).status).toBe(200); // other deals untouched
    const mapUpdates = (event: string, outcome: string) =>
      metricValue(w.bridge.url, 'ghl_bridge_opportunity_map_updates_total', { event, outcome });
    expect(await mapUpdates('OpportunityDelete', 'deleted')).toBe(1);
    expect(await mapUpdates('OpportunityStageUpdate', 'updated')).toBeGreaterThanOrEqual(1);
    // The next upsert of that deal creates a new opportunity.
    const again = await done(
      await w.api(`${base()}/deal-4`, {
        method: 'PUT',
        json: { contact: { id: contactId }, pipeline: 'Renewals', stage: 'Due' },
      }),
    );
    expect(again.opportunityId).not.toBe(oppId);
    expect(await mapping('deal-4')).toMatchObject({
      opportunityId: again.opportunityId,
      pipelineName: 'Renewals',
      stageName: 'Due',
    });
  });

  it('lists pipelines from the cache, refreshing on demand; a contact that matches nothing fails the operation clearly', async () => {
    const r = await w.api(`/v1/locations/${w.locationId}/pipelines?refresh=true`);
    expect(r.status).toBe(200);
    const b = (await r.json()) as { pipelines: Array<{ name: string; stages: Array<{ name: string }> }> };
    expect(b.pipelines.map((p) => p.name).sort()).toEqual(['Renewals', 'Sales']);
    const failed = await done(
      await w.api(`${base()}/deal-5`, {
        method: 'PUT',
        json: { contact: { email: 'nobody@example.com' }, pipeline: 'Sales' },
      }),
    );
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/contact: no GHL contact matches email nobody@example.com/);
  });

  it('a create whose worker died after GHL applied it finds that opportunity instead of creating a second', async () => {
    const ghl = w.bridge.ctx.services.get('ghl');
    // GHL got the create, the worker died before storing the answer: the operation says the create had started.
    const landed = await ghl.opportunities.create(
      { locationId: w.locationId, pipelineId: pipeline.id, name: 'deal-crash', status: 'open', contactId },
      { installation: { locationId: w.locationId } },
    );
    const db = w.bridge.ctx.db;
    const opId = await db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('opportunity_ops')
        .values({
          location_id: w.locationId,
          external_id: 'deal-crash',
          kind: 'upsert',
          request: JSON.stringify({ contact: { id: contactId }, pipelineId: pipeline.id }),
          create_started_at: sql<Date>`now() - interval '1 second'`,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await opportunityJob.enqueue(trx, { opId: row.id, locationId: w.locationId, externalId: 'deal-crash' });
      return row.id;
    });
    w.bridge.ctx.queue.notify();
    const op = await waitFor(async () => {
      const v = (await (await w.api(`/v1/locations/${w.locationId}/opportunity-operations/${opId}`)).json()) as Op;
      return v.state !== 'pending' ? v : undefined;
    });
    expect(op).toMatchObject({ state: 'done', opportunityId: landed.opportunity!.id });
    expect(w.emu.opportunities.listOpportunities(w.locationId).filter((o) => o.name === 'deal-crash')).toHaveLength(1);
    expect(await mapping('deal-crash')).toMatchObject({ opportunityId: landed.opportunity!.id });
  });
  it('an event received before the deal was last written is stale and changes nothing; a later one applies', async () => {
    const created = await done(
      await w.api(`${base()}/deal-stale`, {
        method: 'PUT',
        json: { contact: { id: contactId }, pipeline: 'Sales', stage: 'New' },
      }),
    );
    const won = await done(await w.api(`${base()}/deal-stale/status`, { method: 'POST', json: { status: 'won' } }));
    expect(won.state).toBe('done');
    const oppId = created.opportunityId!;
    const db = w.bridge.ctx.db;
    const row = await db
      .selectFrom('opportunity_map')
      .select('updated_at')
      .where('opportunity_id', '=', oppId)
      .executeTakeFirstOrThrow();
    const event = { type: 'OpportunityStatusUpdate', locationId: w.locationId, id: oppId, status: 'open' };
    // In flight while the bridge set it won (received a second before that write): the map keeps "won".
    expect(await applyOpportunityEvent(db, event, new Date(row.updated_at.getTime() - 1000))).toBe('stale');
    expect(await mapping('deal-stale')).toMatchObject({ status: 'won' });
    // A change made in GHL afterwards applies, and an older event handled after it does not undo it.
    expect(await applyOpportunityEvent(db, event, new Date(row.updated_at.getTime() + 1000))).toBe('updated');
    expect(await mapping('deal-stale')).toMatchObject({ status: 'open' });
    const older = { ...event, status: 'lost' };
    expect(await applyOpportunityEvent(db, older, new Date(row.updated_at.getTime() + 500))).toBe('stale');
    expect(await mapping('deal-stale')).toMatchObject({ status: 'open' });
  });
});
