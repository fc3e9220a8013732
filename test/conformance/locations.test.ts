import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeWorld, tokenFor, world, type World } from '../emulator/helpers.js';
import { call } from './spec.js';

let w: World;
let t: string;
beforeAll(async () => {
  w = await world();
  t = String((await tokenFor(w, { locationId: w.locationId })).access_token);
});
afterAll(async () => closeWorld(w));

describe('locations.json', () => {
  let fieldId = '';
  it('get-location', async () => {
    await call(w.base, 'get-location', { token: t, pathParams: { locationId: w.locationId } });
    await call(w.base, 'get-location', { token: t, pathParams: { locationId: 'otherlocation0000000' } }, 'invalid');
  });

  it('get-location returns the country of the sub-account when it has one', async () => {
    w.emu.control.updateLocation(w.locationId, { country: 'PH' });
    const r = await call(w.base, 'get-location', { token: t, pathParams: { locationId: w.locationId } });
    expect((r.body.location as { country?: string }).country).toBe('PH');
  });

  it('create-custom-field', async () => {
    const r = await call(w.base, 'create-custom-field', {
      token: t,
      pathParams: { locationId: w.locationId },
      body: { name: 'External ID', dataType: 'TEXT', model: 'contact' },
    });
    fieldId = (r.body.customField as { id: string }).id;
    await call(
      w.base,
      'create-custom-field',
      { token: t, pathParams: { locationId: w.locationId }, body: { name: 'No type' } },
      'invalid',
    );
  });

  it('get-custom-fields', async () => {
    await call(w.base, 'get-custom-fields', {
      token: t,
      pathParams: { locationId: w.locationId },
      query: { model: 'contact' },
    });
    await call(w.base, 'get-custom-fields', { token: 'bad', pathParams: { locationId: w.locationId } }, 'invalid');
  });

  it('get-custom-field / update-custom-field / delete-custom-field', async () => {
    await call(w.base, 'get-custom-field', { token: t, pathParams: { locationId: w.locationId, id: fieldId } });
    await call(
      w.base,
      'get-custom-field',
      { token: t, pathParams: { locationId: w.locationId, id: 'missing' } },
      'invalid',
    );
    await call(w.base, 'update-custom-field', {
      token: t,
      pathParams: { locationId: w.locationId, id: fieldId },
      body: { name: 'Ext ID' },
    });
    await call(
      w.base,
      'update-custom-field',
      { token: t, pathParams: { locationId: w.locationId, id: fieldId }, body: { name: '' } },
      'invalid',
    );
    await call(w.base, 'delete-custom-field', { token: t, pathParams: { locationId: w.locationId, id: fieldId } });
    await call(
      w.base,
      'delete-custom-field',
      { token: t, pathParams: { locationId: w.locationId, id: fieldId } },
      'invalid',
    );
  });
});
