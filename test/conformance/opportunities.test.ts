import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeWorld, tokenFor, world, type World } from '../emulator/helpers.js';
import { call } from './spec.js';

let w: World;
let t: string;
let pipelineId = '';
let stages: Array<{ id: string; name: string }> = [];
let contactId = '';
beforeAll(async () => {
  w = await world();
  t = String((await tokenFor(w, { locationId: w.locationId })).access_token);
  w.emu.opportunities.createPipeline({ locationId: w.locationId, name: 'Sales', stages: ['New', 'Won'] });
  contactId = w.emu.control.createContact({ locationId: w.locationId, email: 'opp@example.com' }).id;
});
afterAll(async () => closeWorld(w));

describe('opportunities.json', () => {
  let id = '';
  it('get-pipelines', async () => {
    const r = await call(w.base, 'get-pipelines', { token: t, query: { locationId: w.locationId } });
    const p = (r.body.pipelines as Array<{ id: string; name: string; stages: typeof stages }>)[0]!;
    expect(p.name).toBe('Sales');
    pipelineId = p.id;
    stages = p.stages;
    expect(stages.map((s) => s.name)).toEqual(['New', 'Won']);
    await call(w.base, 'get-pipelines', { token: t, query: {} }, 'invalid');
  });

  it('create-opportunity', async () => {
    const r = await call(w.base, 'create-opportunity', {
      token: t,
      body: {
        locationId: w.locationId,
        pipelineId,
        pipelineStageId: stages[0]!.id,
        name: 'Deal',
        status: 'open',
        contactId,
        monetaryValue: 10,
      },
    });
    expect(r.status).toBe(201);
    id = (r.body.opportunity as { id: string }).id;
    await call(w.base, 'create-opportunity', { token: t, body: { locationId: w.locationId, name: 'x' } }, 'invalid');
    const badStage = await call(
      w.base,
      'create-opportunity',
      {
        token: t,
        body: { locationId: w.locationId, pipelineId, pipelineStageId: 'nope', name: 'x', status: 'open', contactId },
      },
      'invalid',
    );
    expect(badStage.status).toBe(400);
  });

  it('get-opportunity', async () => {
    const r = await call(w.base, 'get-opportunity', { token: t, pathParams: { id } });
    expect(r.body.opportunity).toMatchObject({ id, pipelineStageId: stages[0]!.id, monetaryValue: 10 });
    await call(w.base, 'get-opportunity', { token: t, pathParams: { id: 'doesnotexist0000' } }, 'invalid');
  });

  it('update-opportunity', async () => {
    const r = await call(w.base, 'update-opportunity', {
      token: t,
      pathParams: { id },
      body: { pipelineStageId: stages[1]!.id, monetaryValue: 20 },
    });
    expect(r.body.opportunity).toMatchObject({ pipelineStageId: stages[1]!.id, monetaryValue: 20 });
    await call(w.base, 'update-opportunity', { token: t, pathParams: { id }, body: { monetaryValue: 'x' } }, 'invalid');
  });

  it('update-opportunity-status', async () => {
    await call(w.base, 'update-opportunity-status', { token: t, pathParams: { id }, body: { status: 'won' } });
    expect(w.emu.opportunities.getOpportunity(id)).toMatchObject({ status: 'won' });
    await call(
      w.base,
      'update-opportunity-status',
      { token: t, pathParams: { id }, body: { status: 'maybe' } },
      'invalid',
    );
  });

  it('search-opportunity', async () => {
    const r = await call(w.base, 'search-opportunity', {
      token: t,
      query: { location_id: w.locationId, contact_id: contactId, status: 'all' },
    });
    expect((r.body.opportunities as Array<{ id: string }>).map((o) => o.id)).toEqual([id]);
    await call(w.base, 'search-opportunity', { token: t, query: {} }, 'invalid');
  });

  it('delete-opportunity', async () => {
    await call(w.base, 'delete-opportunity', { token: t, pathParams: { id } });
    await call(w.base, 'get-opportunity', { token: t, pathParams: { id } }, 'invalid');
    // Every change fired its webhook to the app.
    await w.emu.idle();
    const types = w.emu.control.listDeliveries().map((d) => d.eventType);
    expect(types).toEqual(
      expect.arrayContaining([
        'OpportunityCreate',
        'OpportunityStageUpdate',
        'OpportunityMonetaryValueUpdate',
        'OpportunityStatusUpdate',
        'OpportunityDelete',
      ]),
    );
  });
});
